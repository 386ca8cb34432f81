"""`make provision` against the virtual board (a real MicroPython REPL on a pty): the key it
derives from the fleet master and the module's IMEI lands in AUTH.keys_path, never in dev.json,
and the app's own Auth extension, on the board's interpreter, then admits a command signed with
that key and refuses one signed with another master's."""
import os
import re
import subprocess

from device_helpers import REPO, TIMEOUT, board, board_files, deploy_to, source  # noqa: F401
from tools.device.repl_session import Device
from tools.simulators.hes_auth import command_body, derive_key

ADMIT = """
from usr.qframe import Application
from usr.qframe.builtins.auth import Auth
app = Application("provision-test")
auth = Auth(app=app)
app.load()
for body in (%r, %r, %r):
    verdict = auth.admit(body)
    _qd_say("verdict", verdict.ok, verdict.reason)
"""


def _make(*args):
    return subprocess.run(["make", "-s", "-o", ".venv/.installed"] + list(args), cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_make_provision_installs_the_key_the_app_verifies_commands_with(tmp_path, board, source):
    deploy_to(board, source)                             # the app's code on the board
    master = os.urandom(32)
    master_file = tmp_path / "master.hex"
    master_file.write_text(master.hex())
    made = _make("provision", "PORT=%s" % board.port, "MASTER=%s" % master_file)
    assert made.returncode == 0, made.stdout + made.stderr
    dev = re.search(r"provision: (\S+) has command key k1", made.stdout).group(1)
    files = board_files(board)
    key = derive_key(master, dev)
    assert key.hex() in files["/usr/.auth/keys.0"].decode()
    assert all(master.hex().encode() not in data and key.hex().encode() not in data
               for path, data in files.items() if path != "/usr/.auth/keys.0")

    ping = '{"id": 1, "cmd": "ping"}'
    good = command_body(key, dev, "k1", 5, ping).decode()
    other = command_body(derive_key(os.urandom(32), dev), dev, "k1", 6, ping).decode()
    with Device(board.port) as device:
        out = device.exec(ADMIT % (good, other, good))
    assert re.findall(r"verdict (\w+) (\w+)", out) == [
        ("True", "None"), ("False", "bad_mac"), ("False", "replay")], out


def test_make_provision_refuses_a_weak_or_published_master(tmp_path, board):
    weak = tmp_path / "weak.hex"
    weak.write_text("00" * 8)
    made = _make("provision", "PORT=%s" % board.port, "MASTER=%s" % weak)
    assert made.returncode != 0 and "bytes: at least 16" in made.stderr, made.stderr
    assert "/usr/.auth/keys.0" not in board_files(board)
