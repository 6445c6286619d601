"""Header layouts (include/uapi/linux/*.h)."""
