"""robnas.trainables."""
