"""The firmware table (tools/firmware/api.json) says what the module's firmware has, per line."""
import ast
import os

import pytest

from tools import firmware
from tools.gate import lint

REPO = lint.REPO


def test_lines_are_the_three_epochs():
    assert firmware.LINES == ("E1", "E2", "E3")
    assert set(firmware.load()["lines"]) == set(firmware.LINES)


def test_ostimer_is_a_type_with_delete_timer():
    assert firmware.is_type("osTimer")
    assert firmware.has("osTimer", "delete_timer")
    assert not firmware.has("osTimer", "osTimer")
    assert not firmware.has("osTimer", "delete")
    assert firmware.instead("osTimer", "delete") == "delete_timer()"
    assert "osTimer()" in firmware.instead("osTimer", "osTimer")


def test_fota_is_a_type_without_a_fota_attribute():
    assert firmware.is_type("fota")
    assert not firmware.has("fota", "fota")
    assert firmware.has("fota", "httpDownload")


def test_uselect_and_uerrno_only_on_e3():
    for name in ("uselect", "uerrno"):
        assert firmware.module_lines(name) == ("E3",)
        assert firmware.has(name, line="E3")
        assert not firmware.has(name, line="E1")
        assert not firmware.has(name)
    assert firmware.lines_with("uselect", "poll") == ("E3",)


def test_checknet_has_wait_network_connected_and_not_wait_network_ready():
    assert firmware.has("checkNet", "wait_network_connected")
    assert not firmware.has("checkNet", "waitNetworkReady")
    assert "wait_network_connected" in firmware.instead("checkNet", "waitNetworkReady")


def test_ussl_wrap_socket_takes_no_cert_reqs_and_its_socket_no_send():
    spec = firmware.call_spec("ussl", "wrap_socket")
    assert "server_hostname" in spec["keywords"]
    for rejected in ("cert_reqs", "cadata", "ca_certs"):
        assert rejected not in spec["keywords"]
    assert spec["positional"] == 1
    assert firmware.returns("ussl", "wrap_socket") == "SSLSocket"
    methods = firmware.class_methods("ussl", "SSLSocket")
    assert {"read", "write", "getpeercert"} <= methods
    assert not {"send", "recv", "settimeout"} & methods


def test_version_limited_names():
    assert firmware.lines_with("usocket", "TCP_KEEPALIVE") == ("E2", "E3")
    assert firmware.has("usocket", "TCP_KEEPALIVE", line="E2")
    assert not firmware.has("usocket", "TCP_KEEPALIVE", line="E1")
    assert not firmware.has("usocket", "TCP_KEEPALIVE")
    assert "readinto" in firmware.class_methods("machine", "UART", line="E3")
    assert "readinto" not in firmware.class_methods("machine", "UART")
    assert "deinit" not in firmware.class_methods("machine", "UART", line="E3")


def test_absent_names_have_what_to_use_instead():
    assert not firmware.has("machine", "reset")
    assert "powerRestart" in firmware.instead("machine", "reset")
    assert not firmware.has("utime", "gmtime")
    assert not firmware.has("math", "inf")
    assert not firmware.has("sys")
    assert "usys" in firmware.instead("sys", "import")
    assert firmware.module("no_such_module") is None
    assert not firmware.has("no_such_module")


def test_every_entry_names_known_lines_and_classes():
    for name, spec in firmware.load()["modules"].items():
        for lines in ([spec.get("lines", "all")] + list(spec.get("names", {}).values())):
            assert lines == "all" or set(lines) <= set(firmware.LINES), name
        for cls in spec.get("returns", {}).values():
            assert cls in spec.get("classes", {}), (name, cls)


def _device_imports():
    found = set()
    for path in lint.device_files([os.path.join(REPO, d) for d in lint.DEVICE_DIRS]):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - {"usr"}


def test_every_module_the_device_code_imports_is_in_the_table():
    imported = _device_imports()
    assert {"utime", "usocket", "machine", "osTimer"} <= imported
    missing = sorted(m for m in imported if firmware.module(m) is None)
    assert missing == []


def test_mp113_facts():
    facts = firmware.mp113()
    assert "find" in facts["types"]["bytearray"]["missing"]
    assert "find" in facts["types"]["bytes"]["has"]
    assert "hex" in facts["types"]["bytes"]["missing"]
    assert "hex" in facts["types"]["memoryview"]["missing"]
    assert "reversed" in facts["builtins"]
