# Two commands: `make demo` and `make test`. Both build the virtual
# environment first, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench soak clean sysdeps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m emu demo topologies/veth-bridge.yaml

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -n auto -q

# The TAP interop tests compare against the real iputils ping; install it
# when we can (root with apt), otherwise those tests say why they skip.
sysdeps:
	@command -v ping >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q iputils-ping >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iputils-ping >/dev/null 2>&1; }; }; } || \
	  echo "note: iputils ping is not installed; the test that runs it will be skipped"

soak: $(STAMP)
	$(BIN)/python -m pytest -n auto -q -m soak -o addopts=''

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) *.egg-info
