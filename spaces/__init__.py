"""robnas.spaces."""
