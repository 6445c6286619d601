# Two commands: `make demo` and `make test`. Both build the virtual
# environment first, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-virtual test-cluster bench soak fuzz lint clean sysdeps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BYTECODE)
	touch $(STAMP)

# An editable install writes no bytecode, and with PYTHONDONTWRITEBYTECODE set
# (as in CI) nothing ever does: every lab's fork server then compiled the
# kernel from source, 0.25 s of its start instead of 0.1 (README,
# Benchmarks). compileall writes what is missing or stale; it is quick.
BYTECODE = @$(BIN)/python -m compileall -q emu >/dev/null

demo: $(STAMP)
	$(BYTECODE)
	$(BIN)/python -m emu demo topologies/veth-bridge.yaml

test: $(STAMP) sysdeps lint
	$(BYTECODE)
	$(BIN)/python -m pytest -n auto -q

# The integration suite again, every lab on virtual time (README: deterministic
# labs); tests marked real_time (the real network, frames from outside) skip.
test-virtual: $(STAMP) sysdeps
	$(BIN)/python -m pytest -n auto -q tests/integration --emu-clock virtual

# Labs over a Ray cluster (emu up --cluster): Ray is an optional extra, so
# these tests skip in `make test`; here a local two-node Ray cluster runs them.
test-cluster: $(STAMP)
	$(BIN)/pip install -q -e '.[test,cluster]'
	$(BIN)/python -m pytest -q tests/integration/test_cluster.py

# Static checks that find bugs: ruff (pyflakes, bugbear, pylint warnings) and
# mypy --check-untyped-defs on the kernel core, the node runtime and the
# orchestrator (both configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check emu tests bench
	$(BIN)/mypy

# The TAP interop tests compare against the real iputils ping, and emu graph
# renders SVG/PNG with graphviz: install both when we can (root with apt),
# otherwise the tests that need them say why they skip.
sysdeps:
	@{ command -v ping >/dev/null 2>&1 && command -v dot >/dev/null 2>&1; } || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q iputils-ping graphviz >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iputils-ping graphviz >/dev/null 2>&1; }; }; } || \
	  echo "note: iputils ping or graphviz is not installed; the tests that use them will be skipped"

soak: $(STAMP)
	$(BIN)/python -m pytest -n auto -q -m soak -o addopts=''

# A bounded, seeded frame fuzzer into a host, a bridge and a router
# (make test runs a small one: tests/integration/test_fuzz.py).
fuzz: $(STAMP)
	$(BIN)/python -m emu.fuzz --frames $${FRAMES:-100000} --seed $${SEED:-1}

bench: $(STAMP)
	$(BYTECODE)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) *.egg-info
