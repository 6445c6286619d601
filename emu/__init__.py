"""emu: a network of processes, each running an emulated Linux network stack."""

__version__ = "0.1.0"


def launch(topology, **kwargs):
    """Start a lab from a topology file; use as a context manager (see emu.client.lab)."""
    from emu.client.lab import launch as _launch
    return _launch(topology, **kwargs)
