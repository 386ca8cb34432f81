"""The simulated module's dev.json: `app_config` (small timeouts so faults recover in seconds),
an app folder's own config wired to the simulators (`app_folder_config`, `wire`) and the switch
to the MQTT uplink (`mqtt_config`). Used by system.py (make sim), tools/ota/demo.py and the
virtual board's simulated links."""
import json
import os


HEAP_TRACE_CONFIG = {"APP": {"heap_trace": True}, "HEALTH": {"interval_s": 1.0}}
# DLMS-lite on the meter link, reading only when the HES asks (`--dlms`): the app loads it.
DLMS_CONFIG = {"DLMS": {"transport": "meter_link", "read_period_s": 0}}


def app_config(hes_port, meter_path=None, dialect="legacy", protocol="usr.hes_protocol",
               log_level="INFO"):
    """The dev.json of the simulated module: small timeouts so faults recover in seconds."""
    config = {
        "APP": {"log_level": log_level, "stop_timeout": 3.0, "log_file": ""},
        "HEALTH": {"interval_s": 30},
        "TCP_SERVER": {"host": "127.0.0.1", "port": hes_port, "protocol": protocol,
                       "connect_timeout": 2.0, "backoff_base_s": 0.2, "backoff_cap_s": 2.0,
                       "stable_s": 1.0, "heartbeat_s": 5.0, "ack_timeout_s": 3.0,
                       "send_timeout_s": 2.0, "idle_timeout_s": 15.0, "poll_s": 0.1,
                       "device_id": "sim-module-1", "queue_max_bytes": 262144,
                       "queue_retry_s": 0.5},
        "NETWORK": {"boot_timeout_s": 10, "check_s": 0.5, "radio_after_s": 20,
                    "radio_off_s": 0.5, "radio_cycles": 2, "restart_after_s": 0},
        "WATCHDOG": {"period_s": 0},
    }
    if meter_path:
        config["UART"] = {"port": meter_path, "dialect": dialect, "poll_ms": 2,
                          "reopen_delay_s": 0.2}
    return config


WIRING = (("UART", "port"), ("TCP_SERVER", "host"), ("TCP_SERVER", "port"))


def wire(config, hes_port, meter_path):
    """A copy of config (a dev.json dict) whose links point at the simulators: UART.port at
    the meter's pty (a host path: the shim opens it as the module opens UART n), TCP_SERVER at
    the HES on loopback. Everything else is the app's own."""
    config = json.loads(json.dumps(config))
    if meter_path:
        config.setdefault("UART", {})["port"] = meter_path
    config.setdefault("TCP_SERVER", {}).update({"host": "127.0.0.1", "port": hes_port})
    return config


def app_folder_config(app):
    """The dev.json of an app folder (a dict); SystemExit with one line when it cannot be
    used by the simulation."""
    path = os.path.join(app, "dev.json")
    if not os.path.isfile(os.path.join(app, "main.py")):
        raise SystemExit("%s: no main.py (an app folder holds main.py, dev.json and its "
                         "modules)" % app)
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        raise SystemExit("%s: cannot read it as JSON (%s)" % (path, exc))
    protocol = config.get("TCP_SERVER", {}).get("protocol", "raw")
    if protocol == "raw":
        raise SystemExit("%s: TCP_SERVER.protocol is \"raw\": the simulated HES counts "
                         "framed records; set \"ack\" (docs/FIRST_APP.md)" % path)
    return config


def mqtt_config(config, broker_port):
    """app_config's dev.json switched to the MQTT uplink (APP.uplink) on broker_port: its
    TCP_SERVER section becomes MQTT (the app warns about a section it does not use)."""
    tcp = config.pop("TCP_SERVER")
    config["APP"]["uplink"] = "mqtt"
    config["MQTT"] = {"host": "127.0.0.1", "port": broker_port, "device_id": tcp["device_id"],
                      "user": "module", "keepalive_s": 10, "response_ms": 3000, "poll_s": 0.05}
    for key in ("backoff_base_s", "backoff_cap_s", "stable_s", "heartbeat_s",
                "queue_max_bytes", "queue_retry_s"):
        config["MQTT"][key] = tcp[key]
    return config


def sim_device(config, default_imei="866000000000001"):
    """The identity the simulated module registers with (and its key is derived from): the
    uplink section's device_id, else the shim's IMEI."""
    for section in ("MQTT", "TCP_SERVER"):
        dev = (config.get(section) or {}).get("device_id")
        if dev:
            return dev
    return default_imei


def provision(root, config):
    """Install the simulated module's command key (derived from the simulator-only master,
    tools/simulators/hes_auth.SIM_MASTER) in the board root, where AUTH.keys_path points."""
    from tools.simulators.hes_auth import provision_sim
    keys_path = (config.get("AUTH") or {}).get("keys_path") or "/usr/.auth"
    return provision_sim(os.path.join(root, keys_path.lstrip("/")), sim_device(config))

