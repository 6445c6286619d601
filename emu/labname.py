"""Lab names: `emu up --name`, which lab `--lab` means, and `down --all`'s question.

An exact run-directory or name match wins over a prefix (see
orchestrator.match_labs); a name given with `emu up --name` must not be
running already, so `--lab NAME` always means one lab.
"""
from __future__ import annotations

import dataclasses
import os

from .orchestrator import list_labs, match_labs, run_base
from .topology import _LAB_NAME


def rename(topo, name: str):
    """The topology under another lab name (checked as a topology's `name:` is)."""
    if not _LAB_NAME.fullmatch(name):
        raise ValueError("up: --name must match %s, got %r" % (_LAB_NAME.pattern, name))
    return dataclasses.replace(topo, name=name)


def check_new_name(name: str, explicit: bool) -> str | None:
    """An error line if a lab called name is running and the name was asked for."""
    if not explicit:
        return None                  # two labs of one file may run: their run dirs tell them apart
    running = [l for l in list_labs() if l["name"] == name and l.get("alive")]
    if running:
        return ("a lab called %r is already running (run dir %s): choose another --name, or "
                "stop it with: emu down --lab %s" % (name, running[0]["run_dir"], name))
    return None


def confirm_down_all(labs, ask=input) -> bool:
    """Ask on the terminal before stopping every lab under the run base."""
    names = ", ".join("%s (%s)" % (l["name"], os.path.basename(l["run_dir"])) for l in labs)
    try:
        answer = ask("stop %d lab%s under %s: %s? [y/N] " % (
            len(labs), "" if len(labs) == 1 else "s", run_base(), names))
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


__all__ = ["rename", "check_new_name", "confirm_down_all", "match_labs"]
