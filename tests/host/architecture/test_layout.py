"""The layout is the architecture: these tests fail when a layer leaks or the core grows."""
import ast
import os
import subprocess

import pytest

from tools.hostrun import board_root

QFRAME = os.path.join(board_root.REPO, "qframe")
# I/O, threads and clocks: what only extensions (qframe/builtins) may touch.
IO_MODULES = {"usocket", "uselect", "ussl", "machine", "_thread", "osTimer", "checkNet",
              "dataCall", "net", "sim", "misc", "modem", "fota", "app_fota", "ql_fs"}
# Entropy: a protocol takes its randomness as an input (a seed), as it takes the time.
ENTROPY_MODULES = {"uos", "os", "urandom", "random", "time"}
RULES = {
    # folder: (modules it must not import, qframe folders it must not import)
    "codecs": (IO_MODULES | {"utime", "uos"}, {"builtins", "store", "protocols", "core"}),
    "protocols": (IO_MODULES | ENTROPY_MODULES, {"builtins", "store"}),
    "store": (IO_MODULES - {"ql_fs"}, {"builtins", "protocols"}),
    "core": (IO_MODULES - {"_thread"}, {"builtins", "codecs", "protocols", "store"}),
}


def _imports(path):
    """(absolute module names, qframe folders) a file imports, at any depth."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    here = os.path.relpath(os.path.dirname(path), QFRAME).split(os.sep)
    modules, folders = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                target = [p for p in base if p != "."] + (node.module or "").split(".")
                target = [p for p in target if p]
                if not target:
                    target = [alias.name for alias in node.names][:1]
                folders.add(target[0])
            elif node.module.startswith("usr.qframe."):
                folders.add(node.module.split(".")[2])
            else:
                modules.add(node.module.split(".")[0])
    return modules, folders


def _files(folder):
    for root, _, names in os.walk(os.path.join(QFRAME, folder)):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(root, name)


# The one sanctioned exception: every Application gets QFrame's built-in `network` extension.
ALLOWED = {("qframe/core/app.py", "builtins")}


@pytest.mark.parametrize("folder", sorted(RULES))
def test_layers_do_not_leak(folder):
    banned_modules, banned_folders = RULES[folder]
    problems = []
    for path in _files(folder):
        modules, folders = _imports(path)
        for name in sorted(modules & banned_modules):
            problems.append("%s imports %s" % (os.path.relpath(path, board_root.REPO), name))
        for name in sorted(folders & banned_folders):
            if (os.path.relpath(path, board_root.REPO), name) in ALLOWED:
                continue
            problems.append("%s imports qframe/%s" % (os.path.relpath(path, board_root.REPO), name))
    assert problems == []


# utime calls that read a clock or sleep; ticks_add / ticks_diff are arithmetic on times passed in
CLOCK_CALLS = {"ticks_ms", "ticks_us", "ticks_cpu", "time", "time_ns", "localtime", "mktime",
               "gmtime", "sleep", "sleep_ms", "sleep_us"}


def _clock_uses(path):
    """utime.<a clock read or sleep> in a file, and `from utime import ...` of one."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in CLOCK_CALLS and \
                isinstance(node.value, ast.Name) and node.value.id == "utime":
            found.append("utime.%s (line %d)" % (node.attr, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module == "utime":
            found.extend("utime.%s (line %d)" % (alias.name, node.lineno)
                         for alias in node.names if alias.name in CLOCK_CALLS)
    return found


def test_protocols_read_no_clock_and_no_entropy():
    """Sans-I/O as h11: a protocol gets now_ms and its random seed from the driver."""
    problems = []
    for path in _files("protocols"):
        problems.extend("%s: %s" % (os.path.relpath(path, board_root.REPO), use)
                        for use in _clock_uses(path))
    assert problems == []


def test_the_uplink_session_takes_even_its_tick_arithmetic_as_an_input():
    modules, folders = _imports(os.path.join(QFRAME, "protocols", "uplink.py"))
    assert "utime" not in modules and "store" not in folders


def test_the_server_role_imports_only_the_shared_link_module():
    modules, folders = _imports(os.path.join(QFRAME, "builtins", "server.py"))
    with open(os.path.join(QFRAME, "builtins", "server.py")) as f:
        tree = ast.parse(f.read())
    siblings = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.level == 1}
    assert siblings == {"link"}


def test_the_flash_queue_takes_its_crc_from_the_crc_module_not_the_framing_codec():
    modules, folders = _imports(os.path.join(QFRAME, "store", "pqueue.py"))
    with open(os.path.join(QFRAME, "store", "pqueue.py")) as f:
        text = f.read()
    assert "rfc1662" not in text and "codecs.crc import" in text


# builtins/ modules that register an extension (a class with `name = "..."`) are not helper
# libraries: another module imports from one only the class it extends, or a name QFrame's
# module layout re-exports (QFrame's builtins.clients has SmsClient).
QFRAME_REEXPORTS = {("clients", "sms", "SmsClient")}
PENDING = set()        # exceptions waiting for a rework (none left)


def _extension_modules():
    found = set()
    for path in _files("builtins"):
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(item, ast.Assign) and isinstance(item.value, ast.Constant)
                    and any(getattr(t, "id", None) == "name" for t in item.targets)
                    for item in node.body):
                found.add(os.path.basename(path)[:-3])
    return found


def _sibling_imports(path):
    """(sibling module, name, subclassed here) for every `from .sibling import name`."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    bases = set(getattr(b, "id", None) for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef) for b in node.bases)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                yield node.module, alias.name, (alias.asname or alias.name) in bases


def test_extensions_do_not_import_each_other_for_helpers():
    extensions = _extension_modules()
    assert {"uart", "dlms", "clients", "mqtt", "ota_update", "network"} <= extensions
    problems = []
    for path in _files("builtins"):
        here = os.path.basename(path)[:-3]
        for module, name, subclassed in _sibling_imports(path):
            if module in extensions and not subclassed and \
                    (here, module, name) not in QFRAME_REEXPORTS | PENDING:
                problems.append("builtins/%s.py takes %s from the %s extension" % (here, name,
                                                                                   module))
    assert problems == []


def test_a_dlms_only_app_does_not_load_an_uplink():
    modules = set(module for module, _, _ in
                  _sibling_imports(os.path.join(QFRAME, "builtins", "dlms.py")))
    assert not modules & {"clients", "link", "mqtt", "server"}, modules


PROBE = """
import sys
sys.path[:0] = [%r] + %r
import usr.qframe
print(" ".join(sorted(k for k in sys.modules if k.startswith("usr.qframe"))))
from usr.qframe import Uart, TcpClient, NetWatch, Resolver
import usr.qframe.builtins as builtins
print(Uart is builtins.Uart and TcpClient is builtins.TcpClient and NetWatch is builtins.NetWatch)
"""


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_import_usr_qframe_loads_the_core_only_and_extensions_on_first_use(interpreter, tmp_path):
    root = board_root.stage(str(tmp_path / "board"))
    code = PROBE % (root, board_root.shim_paths(interpreter))
    done = subprocess.run(board_root.interpreter_command(interpreter) + ["-c", code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded, same = done.stdout.split("\n")[:2]
    loaded = set(loaded.split())
    assert loaded == {"usr.qframe", "usr.qframe.core", "usr.qframe.core.app",
                      "usr.qframe.core.bus", "usr.qframe.core.config", "usr.qframe.core.ext",
                      "usr.qframe.core.heap",
                      "usr.qframe.core.lazy", "usr.qframe.collections", "usr.qframe.globals",
                      "usr.qframe.logging", "usr.qframe.threading"}
    assert same == "True"


RARE_PROBE = """
import sys
sys.path[:0] = [%r] + %r
import usr.qframe.builtins.ota_update, usr.qframe.builtins.dlms, usr.qframe.store.pqueue
print(" ".join(sorted(k for k in sys.modules if k.startswith("usr.qframe"))))
"""


@pytest.mark.parametrize("interpreter", ["cpython", "micropython"])
def test_rarely_used_paths_load_on_first_use(interpreter, tmp_path):
    """An app with OTA and DLMS-lite keeps neither the update job (manifest, HTTP, download)
    nor the DLMS association and its codecs until one runs; the queue's recovery code loads
    only to open a queue (docs/ARCHITECTURE.md "Memory")."""
    root = board_root.stage(str(tmp_path / "board"))
    code = RARE_PROBE % (root, board_root.shim_paths(interpreter))
    done = subprocess.run(board_root.interpreter_command(interpreter) + ["-c", code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "usr.qframe.builtins.ota_update" in loaded and "usr.qframe.builtins.dlms" in loaded
    rare = {"usr.qframe.builtins.ota_job", "usr.qframe.builtins.ota_download",
            "usr.qframe.codecs.http", "usr.qframe.codecs.ota_manifest",
            "usr.qframe.builtins.dlms_job", "usr.qframe.protocols.dlms",
            "usr.qframe.protocols.dlms_client", "usr.qframe.codecs.axdr",
            "usr.qframe.codecs.hdlc", "usr.qframe.codecs.xdlms", "usr.qframe.store.pqueue_open",
            "usr.qframe.core.config_check"}
    assert loaded & rare == set()
