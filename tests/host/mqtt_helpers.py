"""Host-test rig for the MQTT uplink: an in-process app with MqttClient (qframe's own MQTT)
against a real broker; its small timeouts and the budget the tests wait within."""
import shutil
import threading

from tools.hostrun import board_root
from tools.simulators.hes_auth import provision_sim
from usr.qframe import Application
from usr.qframe.builtins.auth import Auth
from usr.qframe.builtins.mqtt import MqttClient

MQTT = {"host": "127.0.0.1", "user": "module", "keepalive_s": 10, "backoff_base_s": 0.05,
        "backoff_cap_s": 0.4, "stable_s": 0.2, "heartbeat_s": 0, "response_ms": 1000,
        "poll_s": 0.02, "queue_retry_s": 0.05}
BUDGET_S = 10.0     # generous: the machine is shared; every wait ends as soon as it can


class Rig(object):
    def __init__(self, name, broker, provision=True, **config):
        self.device = "dev-" + name
        queue = "/usr/test_mqtt/" + name
        shutil.rmtree(board_root.DEFAULT_ROOT + queue, ignore_errors=True)
        self.app = Application(name)
        settings = dict(MQTT, port=broker.port, device_id=self.device, queue_path=queue)
        settings.update(config)
        auth = queue + "-auth"
        shutil.rmtree(board_root.DEFAULT_ROOT + auth, ignore_errors=True)
        if provision:                     # the simulator-only key MqttHes signs with
            provision_sim(board_root.DEFAULT_ROOT + auth, self.device)
        self.app.config.merge({"APP": {"stop_timeout": 3.0, "log_level": "WARNING"},
                               "MQTT": settings, "AUTH": {"keys_path": auth,
                                                                  "sign_data": True}})
        Auth(app=self.app)
        self.mqtt = MqttClient(app=self.app)
        self.downlink = []
        self.sent = []
        self._got = threading.Event()
        self.app.bus.subscribe("hes.data", self._on_downlink)

    def _on_downlink(self, topic, data):
        self.downlink.append(data)
        self._got.set()

    def start(self):
        self.app.load()
        assert self.mqtt._up.wait(BUDGET_S), "never connected: %s" % self.mqtt.last_error
        return self

    def publish(self, count):
        for _ in range(count):
            payload = ("%s-%04d" % (self.device, len(self.sent))).encode()
            self.sent.append(payload)
            self.app.bus.publish("meter.transparent", payload)

    def mine(self, hes):
        return [p for p in hes.received if p.startswith(self.device.encode())]
