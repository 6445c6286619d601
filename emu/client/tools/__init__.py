"""User-space tools run against a node (`emu exec NODE -- TOOL ...`)."""
import argparse


class ToolUsage(Exception):
    """A command line the tool's parser refused (the message says why)."""


class ToolParser(argparse.ArgumentParser):
    """argparse that prints nothing on a bad command line and raises ToolUsage
    instead: the tool then says it in its own words, once (argparse's usage
    and error lines went to stderr before the tool's own)."""

    def error(self, message):
        raise ToolUsage(message)
