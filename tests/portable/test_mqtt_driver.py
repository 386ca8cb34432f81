"""The MQTT uplink driver (qframe/builtins/mqtt.py: qframe's own MQTT over a socket) against a
broker made here with the codec, on both interpreters: several records in flight, each
confirmed by its own PUBACK; a command redelivered (DUP) or retained runs once; a slow command
holds up neither records nor their acks; a MemoryError, even one raised while another error is
handled, never ends the link thread."""
import _thread

from checks import EVENT_MS, fresh_folder, wait_until
from test_qframe_umqtt import _Broker
from usr.qframe import Application
from usr.qframe.builtins.auth import Auth
from usr.qframe.builtins.mqtt import MqttClient
from usr.qframe.codecs import mqtt as codec
from auth_keys import KEY, KID, Signer, provision
from usr.qframe.codecs.cmdauth import record_mac

BUDGET_MS = EVENT_MS
DEVICE = "drv1"
CMD = "qframe/%s/down/cmd" % DEVICE
SIGN = Signer(DEVICE)


def _app(name, broker, driver=MqttClient, app_config=None, keep_keys=False, **config):
    app = Application(name)
    settings = {"host": "127.0.0.1", "port": broker.port, "device_id": DEVICE,
                "keepalive_s": 0, "heartbeat_s": 0, "window": 3, "poll_s": 0.02,
                "response_ms": 2000, "backoff_base_s": 0.05, "backoff_cap_s": 0.2,
                "queue_path": fresh_folder("/usr/test_mqtt_driver", name),
                "queue_retry_s": 0.05}
    settings.update(config)
    app_settings = {"stop_timeout": 2.0, "log_level": "WARNING", "memory_backoff_s": 0.01}
    app_settings.update(app_config or {})
    auth = {"keys_path": "/usr/test_mqtt_driver/%s-auth" % name}
    if not keep_keys:
        auth = provision(fresh_folder("/usr/test_mqtt_driver", name + "-auth"), DEVICE)
    app.config.merge({"APP": app_settings, "MQTT": settings, "AUTH": auth})
    Auth(app=app)
    driver(app=app)
    app.load()
    assert app.mqtt._up.wait(BUDGET_MS / 1000.0), app.mqtt.last_error
    return app


def _records(broker):
    return [p for p in broker.of(codec.PUBLISH) if "/up/meter/" in p.topic]


def _replies(broker):
    return [p.payload for p in broker.of(codec.PUBLISH) if p.topic.endswith("/up/resp")]


def test_several_records_in_flight_each_confirmed_by_its_puback():
    broker = _Broker(ack=False)
    app = _app("window", broker)
    try:
        for index in range(5):
            app.mqtt.send(b"r%d" % index)
        assert wait_until(lambda: len(_records(broker)) == 3, BUDGET_MS)
        first = _records(broker)
        assert len(set(p.pid for p in first)) == 3          # three packets in flight at once
        assert [p.topic.split("/")[-1] for p in first] == ["1", "2", "3"]
        assert len(app.mqtt.queue) == 5                      # nothing confirmed yet
        broker.send(codec.puback(first[0].pid))
        assert wait_until(lambda: len(app.mqtt.queue) == 4, BUDGET_MS)
        assert wait_until(lambda: len(_records(broker)) == 4, BUDGET_MS)   # the window moved
        for packet in first[1:]:
            broker.send(codec.puback(packet.pid))
        assert wait_until(lambda: len(_records(broker)) == 5, BUDGET_MS)
        for packet in _records(broker)[3:]:
            broker.send(codec.puback(packet.pid))
        assert wait_until(lambda: len(app.mqtt.queue) == 0, BUDGET_MS)
        # each record carries its MAC (issue 20) after the payload, over the epoch and its seq
        records = _records(broker)
        assert [p.payload[:-16] for p in records] == [b"r0", b"r1", b"r2", b"r3", b"r4"]
        epoch = app.mqtt.queue.epoch
        for packet in records:
            seq = int(packet.topic.split("/")[-1])
            assert packet.payload[-16:] == record_mac(KEY, DEVICE, KID, epoch, seq,
                                                      packet.payload[:-16])
    finally:
        assert app.stop()
        broker.close()


def test_a_redelivered_or_retained_command_runs_once():
    broker = _Broker()
    app = _app("dedupe", broker)
    runs = []
    app.commands.register("count", lambda args: runs.append(args) or len(runs))
    try:
        body = SIGN.sign(b'{"id": 1, "cmd": "count", "args": "a"}')
        broker.send(codec.publish(CMD, body, 1, False, 7))
        assert wait_until(lambda: len(_replies(broker)) == 1, BUDGET_MS)
        broker.send(codec.publish(CMD, body, 1, False, 7, dup=True))   # its PUBACK was lost
        retained = SIGN.sign(b'{"id": 2, "cmd": "count", "args": "r"}')
        broker.send(codec.publish(CMD, retained, 1, True, 8))
        assert wait_until(lambda: len(_replies(broker)) == 2, BUDGET_MS)
        broker.send(codec.publish(CMD, retained, 1, True, 9))          # again on a resubscribe
        broker.send(codec.publish(CMD, SIGN.sign(b'{"id": 3, "cmd": "count", "args": "b"}'), 1,
                                  False, 7))
        assert wait_until(lambda: len(_replies(broker)) == 3, BUDGET_MS)
        assert wait_until(lambda: app.mqtt.stats["duplicate_commands"] == 2, BUDGET_MS)
        assert runs == ["a", "r", "b"]          # a new command may reuse a free packet id
        acked = [p.pid for p in broker.of(codec.PUBACK)]
        assert wait_until(lambda: len(broker.of(codec.PUBACK)) == 5, BUDGET_MS), acked
    finally:
        assert app.stop()
        broker.close()


def test_a_retained_command_does_not_run_again_after_a_restart():
    """Issue 20: a retained command ran again at every reconnect and restart (the in-memory
    dedupe forgets). Its counter is on flash: the restarted module refuses it as a replay."""
    runs = []
    retained = SIGN.sign(b'{"id": "r", "cmd": "count", "args": "once"}')
    for keep_keys in (False, True):
        broker = _Broker()
        app = _app("restart", broker, keep_keys=keep_keys)
        app.commands.register("count", lambda args: runs.append(args) or len(runs))
        try:
            broker.send(codec.publish(CMD, retained, 1, True, 4))
            assert wait_until(lambda: len(_replies(broker)) == 1, BUDGET_MS)
        finally:
            assert app.stop()
            broker.close()
    assert runs == ["once"]
    assert app.auth.stats["refused_replay"] == 1
    assert b"not above" in _replies(broker)[0]


def test_a_slow_command_holds_up_neither_records_nor_acks():
    broker = _Broker()
    app = _app("slow", broker)
    release = _thread.allocate_lock()
    release.acquire()
    started = []

    def slow(args):
        started.append(1)
        release.acquire()       # as a DLMS read waits for a meter that never answers
        return "late"
    app.commands.register("slow", slow)
    try:
        broker.send(codec.publish(CMD, SIGN.sign(b'{"id": "s", "cmd": "slow"}'), 1, False, 3))
        assert wait_until(lambda: started, BUDGET_MS)
        for index in range(10):
            app.mqtt.send(b"d%d" % index)
        assert wait_until(lambda: len(app.mqtt.queue) == 0, BUDGET_MS)
        assert _replies(broker) == []
        release.release()
        assert wait_until(lambda: len(_replies(broker)) == 1, BUDGET_MS)
        assert SIGN.open(_replies(broker)[0])["result"] == "late"
    finally:
        assert app.stop()
        broker.close()


def test_commands_beyond_the_worker_pool_are_refused_at_once_as_busy():
    broker = _Broker()
    app = _app("busy", broker, app_config={"workers": 1, "backlog": 1})
    release = _thread.allocate_lock()
    release.acquire()
    started = []

    def hold(args):
        started.append(args)
        return release.acquire() and "held"
    app.commands.register("hold", hold)
    try:
        for index in range(3):      # one runs, one waits in the backlog, one is refused
            body = SIGN.sign(b'{"id": %d, "cmd": "hold"}' % index)
            broker.send(codec.publish(CMD, body, 1, False, 10 + index))
            if index == 0:
                assert wait_until(lambda: started, BUDGET_MS)
        assert wait_until(lambda: len(_replies(broker)) == 1, BUDGET_MS)
        assert b'"busy' in _replies(broker)[0] and b'"id": 2' in _replies(broker)[0]  # unsigned
        assert app.mqtt.stats["commands_refused"] == 1
        release.release()
        assert wait_until(lambda: len(started) == 2, BUDGET_MS)     # the backlog's turn
        release.release()
        assert wait_until(lambda: len(_replies(broker)) == 3, BUDGET_MS)
    finally:
        assert app.stop()
        broker.close()


class _Faulty(MqttClient):
    """The first connect attempt hits a bug, and cleaning up after it runs out of memory; the
    next attempt runs out of memory itself."""

    def __init__(self, name=None, app=None):
        self.faults = ["bug", "memory"]
        MqttClient.__init__(self, name, app)

    def _open_link(self):
        if self.faults:
            fault = self.faults.pop(0)
            raise RuntimeError("a bug") if fault == "bug" else MemoryError("open")
        return MqttClient._open_link(self)

    def _end(self, reason):
        if self.stats["link_exceptions"] == 1 and self.stats["memory_errors"] == 0:
            raise MemoryError("while handling the bug")
        return MqttClient._end(self, reason)


def test_a_memory_error_anywhere_backs_off_and_never_ends_the_link_thread():
    broker = _Broker()
    app = _app("memory", broker, driver=_Faulty)
    try:
        stats = app.mqtt.status()
        assert stats["link_exceptions"] == 1 and stats["memory_errors"] == 2
        assert app.mqtt.healthy() and stats["connects"] == 1
        app.mqtt.send(b"after")
        assert wait_until(lambda: len(app.mqtt.queue) == 0, BUDGET_MS)
    finally:
        assert app.stop()
        broker.close()


class _ShortAtClose(MqttClient):
    """The first connection's end runs out of memory just as it takes the session lock (the
    lock's owner lookup allocates on the module)."""

    def __init__(self, name=None, app=None):
        self.proxy = None
        MqttClient.__init__(self, name, app)

    def _end(self, reason):
        if self.proxy is not None and self.stats["connects"] == 1 and self._up.is_set():
            self._up.clear()
            self.proxy.failures = 1     # the next owner lookup here: the session lock's
        return MqttClient._end(self, reason)


def test_a_memory_error_taking_the_session_lock_backs_off_and_reconnects():
    from test_threads import restore_ident, short_ident
    broker = _Broker()
    app = _app("lock", broker, driver=_ShortAtClose)
    second = _Broker()                  # a _Broker takes one client: the reconnect goes here
    app.mqtt.config["port"] = second.port
    proxy = app.mqtt.proxy = short_ident()
    try:
        app.mqtt._interrupt(app.mqtt._conn, "dropped by the test")
        assert wait_until(lambda: app.mqtt.stats["connects"] == 2, BUDGET_MS), \
            app.mqtt.status()
        assert proxy.failures == 0 and app.mqtt.stats["memory_errors"] == 1
        app.mqtt.send(b"after")
        assert wait_until(lambda: len(app.mqtt.queue) == 0, BUDGET_MS)
    finally:
        restore_ident(proxy)
        assert app.stop()
        broker.close()
        second.close()
