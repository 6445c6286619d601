"""The emulated kernel: sans-I/O, deterministic given its inputs and its clock."""
