"""A forked node's log lines carry its own name (emu/nodes/node.py)."""
import logging
import os
import subprocess
import sys
import textwrap


def test_a_forked_node_names_its_log_lines(tmp_path):
    # In a fresh interpreter: the fork server's logging setup is process-wide.
    code = textwrap.dedent("""
        import logging, os, sys
        from emu.nodes import node
        node.preload_logging("forkserver")
        pid = os.fork()
        if pid == 0:
            node._preloaded["name"] = "h9"          # what run_node does in a forked node
            node.boot_line("h9", "booted: kind=host")
            logging.getLogger("emu.node").info("shutting down")
            sys.stderr.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        logging.getLogger("emu.node").info("server again")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 0, r.stderr
    assert lines[0].endswith(" forkserver INFO preloaded"), lines
    assert lines[1].endswith(" h9 INFO booted: kind=host"), lines
    assert lines[2].endswith(" h9 INFO shutting down"), lines
    assert lines[3].endswith(" forkserver INFO server again"), lines
    # the boot line has the handler's own time format
    fmt = logging.Formatter("%(asctime)s")
    assert len(lines[1].split(" ")[0] + " " + lines[1].split(" ")[1]) == \
        len(fmt.format(logging.makeLogRecord({})))
