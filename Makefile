# Two commands: `make demo` and `make test`. Both build the virtual
# environment first, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m emu demo topologies/veth-bridge.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q

soak: $(STAMP)
	$(BIN)/python -m pytest -n auto -q -m soak -o addopts=''

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) *.egg-info
