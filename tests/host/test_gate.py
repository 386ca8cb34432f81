"""The portability gate rejects what the module cannot run, naming file and line."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATE = [sys.executable, "-m", "tools.gate.gate"]
GATE_ENV = dict(os.environ, PYTHONPATH=REPO)     # the gate runs from other folders too
from tools.gate import lint  # noqa: E402  (the repo root is on sys.path via conftest)


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
    assert "qframe/bad.py:2: import of 'time' is not available on the module (use utime)" in out
    assert "qframe/bad.py:3: import of 'os' is not available on the module (use uos)" in out
    assert "bad.py:1:" not in out


def test_bytes_hex_is_rejected(tmp_path):
    code, out = _gate(tmp_path, "data = b'ab'\n\nprint(data.hex())\n")
    assert code == 1
    assert "qframe/bad.py:3: bytes.hex() does not exist on 1.13" in out


@pytest.mark.parametrize("source, message", [
    ("def f(): pass\nprint(f.__name__)\n", "func.__name__"),
    ("it = iter([])\nnext(it, None)\n", "next(it, default)"),
    ("for x in reversed([1]): pass\n", "reversed()"),
    ("'a:b'.partition(':')\n", "str.partition"),
    ("'a'.startswith(('a', 'b'))\n", "str.startswith(tuple)"),
    ("d = dict.fromkeys([1])\n", "dict.fromkeys"),
    ("import usys\nusys.exc_info()\n", "sys.exc_info"),
    ("print('x', flush=True)\n", "print(flush=...)"),
    ("import ujson\nujson.dumps({}, separators=(',', ':'))\n", "separators"),
    ("import typing\n", "import of 'typing'"),
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
