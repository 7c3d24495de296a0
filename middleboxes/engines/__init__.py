"""Engines host a middlebox model on a real path (I/O lives here, never in the models)."""
