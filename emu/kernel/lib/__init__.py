"""Kernel library code (Linux: lib/)."""
