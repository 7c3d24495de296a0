"""packets package."""
