"""middleboxes package."""
