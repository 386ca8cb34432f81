"""qframe's MQTT client under MicroPython (run by test_qframe_umqtt_broker.py):

    micropython tests/host/qframe_umqtt_mp.py BOARD_ROOT PORT FINGERPRINT

Connects over TLS with the pin, subscribes, publishes QoS 1 messages of 0..5700 octets (several
TLS records) to itself and prints `ok <count> <sizes>` once all came back whole."""
import usys

_root, _port, _pin = usys.argv[1], int(usys.argv[2]), usys.argv[3]
for _path in ("tools/shim/micropython", "tools/shim", _root):
    usys.path.insert(0, _path)
import shimctl  # noqa: E402,F401  (installs the shim's firmware line)
from usr.qframe.umqtt import MQTTClient  # noqa: E402

COUNT = 20
got = []
client = MQTTClient("mp-tls", "127.0.0.1", _port, user="module", keepalive=30, ssl=True,
                    ssl_params={"fingerprint": _pin}, response_ms=10000)
client.set_callback(lambda topic, msg: got.append(msg))
client.connect()
client.subscribe("mp/tls/#", 1)
for index in range(COUNT):
    client.publish("mp/tls/%d" % index, b"m" * (index * 300), qos=1)
while len(got) < COUNT:
    client.wait_msg()
client.disconnect()
assert sorted(len(m) for m in got) == [i * 300 for i in range(COUNT)]
assert all(m == b"m" * len(m) for m in got)
print("ok %d" % len(got))
