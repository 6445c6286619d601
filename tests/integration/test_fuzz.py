"""make fuzz, small: every node survives seeded random frames and still forwards."""
import pytest

from emu.fuzz import make_frame, run, wire_message

pytestmark = pytest.mark.real_time("frames pushed into wires from outside the lab")


def test_fuzzed_frames_leave_every_node_alive_and_forwarding():
    lines = []
    assert run(frames=3000, seed=3, out=lines.append), "\n".join(lines)
    assert any("alive" in l for l in lines) and not any("DEAD" in l for l in lines)
    assert lines[-1].split(": ")[1].startswith(("2/3", "3/3"))


def test_the_same_seed_makes_the_same_frames():
    import random
    a, b = random.Random(5), random.Random(5)
    args = (b"\x02" * 6, b"\x04" * 6, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
    fa = [wire_message(a, [make_frame(a, *args)]) for _ in range(200)]
    fb = [wire_message(b, [make_frame(b, *args)]) for _ in range(200)]
    assert fa == fb and len(set(fa)) > 150
