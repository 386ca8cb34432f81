"""tools/simulators/meter.py on its own: a plain pty peer speaks to it as the module would."""
import os
import select
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tools.simulators.meter import MeterSim, meter, raw_frame, rfc1662  # noqa: E402


class _Module(object):
    """The module's end of the pty, raw."""

    def __init__(self, path, dialect):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        self.decoder = rfc1662.Decoder(dialect)
        self.dialect = dialect

    def send(self, message):
        os.write(self.fd, rfc1662.encode(*message, dialect=self.dialect))

    def receive(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.05)[0]:
                frames = self.decoder.feed(os.read(self.fd, 4096))
                if frames:
                    return frames
        return []

    def close(self):
        os.close(self.fd)


@pytest.mark.parametrize("dialect", rfc1662.DIALECTS)
def test_sim_answers_gets_and_sets_of_its_own_parameters(dialect):
    with MeterSim(dialect) as sim:
        module = _Module(sim.path, dialect)
        try:
            module.send(meter.get_request(0x2801))
            [answer] = module.receive()
            assert answer.message() == meter.get_response(0x2801, sim.params[0x2801])
            module.send(meter.set_request(0x3001, b"NEW"))
            assert module.receive()[0].message() == meter.set_response(0x3001, 0)
            assert sim.params[0x3001] == b"NEW"
            module.send(meter.get_request(0x2999))
            assert module.receive()[0].message() == meter.get_error(0x2999)
            module.send(meter.transparent(b"from HES"))
            assert sim.wait_for(lambda: sim.transparent == [b"from HES"], 3)
            assert len(sim.requests) == 3
        finally:
            module.close()


def test_wire_vectors_of_the_spec():
    sim = MeterSim(rfc1662.LEGACY)
    assert sim.frame(meter.get_request(0x8003)).hex() == "7eff0300220003c003808b077e"
    assert sim.frame(meter.transparent(b"hello")).hex() == "7eff0300210006bf68656c6c6f37e97e"
    assert MeterSim(rfc1662.STANDARD).frame(meter.transparent(b"hello")).hex().endswith(
        "6c6fe9377e")


@pytest.mark.parametrize("dialect", rfc1662.DIALECTS)
def test_damaged_frames_are_what_they_claim(dialect):
    message = meter.transparent(b"payload")
    for kind, counter in (("fcs", "bad_fcs"), ("length", "bad_length"),
                          ("truncate", "bad_length")):
        decoder = rfc1662.Decoder(dialect)
        damaged = {"fcs": raw_frame(message, dialect, fcs_xor=1),
                   "length": raw_frame(message, dialect, length=60),
                   "truncate": raw_frame(message, dialect, close=False, with_fcs=False)}[kind]
        assert decoder.feed(damaged + rfc1662.encode(*message, dialect=dialect)) == \
            [rfc1662.Frame(*message)]
        assert decoder.stats[counter] == 1, kind
    decoder = rfc1662.Decoder(dialect)
    assert decoder.feed(raw_frame(message, dialect, close=False)) == []
    assert decoder.flush() == [rfc1662.Frame(*message)]


def test_unplug_and_replug_move_the_link(tmp_path):
    link = str(tmp_path / "meter.tty")
    with MeterSim(link=link) as sim:
        first = sim.tty_path
        assert os.path.realpath(link) == first
        sim.unplug()
        assert not os.path.lexists(link)
        with pytest.raises(OSError):
            sim.send_transparent(b"nobody")
        sim.replug()
        assert os.path.realpath(link) == sim.tty_path
        module = _Module(link, rfc1662.LEGACY)
        try:
            sim.send_transparent(b"again")
            assert module.receive()[0].payload == b"again"
        finally:
            module.close()


def test_cli_prints_the_pty_and_serves_commands(tmp_path):
    link = str(tmp_path / "m.tty")
    proc = subprocess.Popen([sys.executable, "-m", "tools.simulators.meter", "--link", link],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "PTY %s" % link
        module = _Module(link, rfc1662.LEGACY)
        proc.stdin.write("send 6869\n")
        proc.stdin.flush()
        assert module.receive()[0].payload == b"hi"
        module.send(meter.transparent(b"\x01\x02"))
        assert proc.stdout.readline().strip() == "rx transparent 0102"
        module.close()
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
