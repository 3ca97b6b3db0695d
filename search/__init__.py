"""robnas.search."""
