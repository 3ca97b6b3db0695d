"""robnas.analysis."""
