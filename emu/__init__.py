"""emu: a network of processes, each running an emulated Linux network stack."""

__version__ = "0.1.0"

# Code that runs on nodes (emu.client.run), imported on first use: `import emu`
# stays light for node processes and the CLI.
_RUN_API = ("wait_all", "ready", "current_node", "RemoteError", "Stopped", "NodeProcess")


def launch(topology, **kwargs):
    """Start a lab from a topology file; use as a context manager (see emu.client.lab)."""
    from emu.client.lab import launch as _launch
    return _launch(topology, **kwargs)


def __getattr__(name):
    if name in _RUN_API:
        from emu.client import run
        return getattr(run, name)
    raise AttributeError("module 'emu' has no attribute %r" % name)
