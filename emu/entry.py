"""The `emu` command's entry point (the console script and `python -m emu`).

Kept apart from emu.cli so that Ctrl-C is handled from the first moment:
importing the CLI loads the kernel modules (about 0.3 s), and a Ctrl-C typed
then, outside any handler, printed a KeyboardInterrupt traceback.
"""


def main(argv=None):
    try:
        from .cli import main as cli_main
        return cli_main(argv)
    except KeyboardInterrupt:
        return 130                   # as cli.main does for a Ctrl-C in a command
