# qframe developer commands. `make test` and `make sim` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MICROPYTHON := $(VENV)/bin/micropython
BOARD := build/board
SHIM_MP := tools/shim:tools/shim/micropython
ARGS ?=

.PHONY: help venv gate test test-py test-mp sim bench clean

help:
	@echo "make test    gate + CPython tests + MicroPython tests (sets up .venv)"
	@echo "make sim     run the app on the host against the simulated meter and HES (ARGS=...)"
	@echo "make gate    portability gate only (mpy-cross 1.13 + lint)"
	@echo "make bench   benchmarks (prints figures, ends with a JSON line)"

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

gate: venv
	$(PY) tools/gate.py

test-py: venv
	$(PY) -m pytest -q tests

test-mp: venv
	$(PY) tools/board.py stage $(BOARD) >/dev/null
	$(MICROPYTHON) tools/mprun.py $(BOARD) $(SHIM_MP) tests/portable

test: gate test-py test-mp

sim: venv
	$(PY) tools/sim.py $(ARGS)

bench: venv
	$(PY) tools/bench.py $(ARGS)

clean:
	rm -rf build .pytest_cache .hypothesis
