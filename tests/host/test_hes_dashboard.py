"""The simulated HES's web dashboard (tools/simulators/hes_dashboard.py).

The model (Fleet) from HesSim's observer calls, then the page in a real headless browser
(Debian's chromium + chromium-driver, which `make test` installs where it can) against the real
app: it loads, shows the module going down and up, a command round trip, filter and sort.
A screenshot of the page is kept in build/hes-dashboard.png.
"""
import json
import os
import shutil
import socket
import struct

import pytest

from tools.hostrun.board import REPO
from tools.simulators import hes_dashboard
from tools.simulators.hes import DATA, EVENT, HEARTBEAT, REGISTER, RESPONSE, frame
from tools.simulators.system import System

SCREENSHOT = os.path.join(REPO, "build", "hes-dashboard.png")
WAIT_S = 20          # the module reconnects within backoff_cap_s (2 s) of the HES coming back


class _Client(object):
    """What HesSim hands its observers: a connection's address and (dev, epoch) key."""

    def __init__(self, dev, port=40000):
        self.addr = ("127.0.0.1", port)
        self.key = (dev, 7)


def _fleet():
    clock = [1000.0]
    fleet = hes_dashboard.Fleet(clock=lambda: clock[0])
    return fleet, clock


def _register(fleet, client, **info):
    fleet.observe("frame", client, (REGISTER, json.dumps(dict(info, dev=client.key[0],
                                                              epoch=7)).encode()))


def test_fleet_follows_a_module_through_register_heartbeat_data_event_and_down():
    fleet, clock = _fleet()
    client = _Client("m1")
    fleet.observe("connected", client, None)          # not registered yet: no row
    assert fleet.view()["modules"] == []
    _register(fleet, client, up=3, queued=4, meter="SN1")
    row = fleet.view()["modules"][0]
    assert (row["state"], row["addr"], row["queued"], row["meter"]) == ("up", "127.0.0.1:40000",
                                                                         4, "SN1")
    clock[0] += 5
    fleet.observe("frame", client, (HEARTBEAT, b'{"up": 8, "queued": 0, "dropped": 2}'))
    fleet.observe("frame", client, (DATA, struct.pack(">I", 1) + b"reading 42"))
    fleet.observe("frame", client, (DATA, struct.pack(">I", 1) + b"reading 42"))   # resent
    fleet.observe("frame", client, (DATA, struct.pack(">I", 2) + b"\x00\x01\xff"))
    fleet.observe("frame", client, (EVENT, b'{"event": "power", "data": "cut"}'))
    row = fleet.view()["modules"][0]
    assert (row["up_s"], row["queued"], row["dropped"], row["heartbeats"]) == (8, 0, 2, 1)
    assert (row["data"], row["duplicates"], row["last_seq"]) == (3, 1, 2)
    assert row["last_data"]["text"] == "00 01 ff"                 # not printable: hex
    assert row["last_event"]["text"] == 'power "cut"'
    clock[0] += 1
    fleet.observe("disconnected", client, "reset by peer")
    row = fleet.view()["modules"][0]
    assert (row["state"], row["since"]) == ("down", 1006.0)
    _register(fleet, _Client("m1", 40001))
    row = fleet.view()["modules"][0]
    assert (row["state"], row["connections"]) == ("up", 2)
    kinds = [entry["kind"] for entry in fleet.view()["log"]]
    assert kinds == ["up", "data", "data", "event", "down", "up"]
    assert [e["id"] for e in fleet.view(after_id=4)["log"]] == [5, 6]


def test_fleet_keeps_a_module_up_while_another_of_its_connections_lives():
    fleet, _ = _fleet()
    old, new = _Client("m1", 1), _Client("m1", 2)
    _register(fleet, old)
    _register(fleet, new)                        # reconnected before the old one was noticed
    fleet.observe("disconnected", old, "timed out")
    assert fleet.view()["modules"][0]["state"] == "up"


def test_fleet_pairs_replies_with_commands_and_says_when_none_came():
    fleet, clock = _fleet()
    client = _Client("m1")
    _register(fleet, client)
    fleet.command_sent(1, "ping", None, "m1", expected=1)
    clock[0] += 0.25
    fleet.observe("frame", client, (RESPONSE, b'{"id": 1, "cmd": "ping", "ok": true, '
                                              b'"result": "pong"}'))
    fleet.command_sent(2, "slow", {"n": 1}, None, expected=1)
    clock[0] += hes_dashboard.COMMAND_TIMEOUT_S + 1
    fleet.expire()
    fleet.command_failed("ping", "m9", "m9 is not connected")
    replies = [e["reply"] for e in fleet.view()["log"] if e["kind"] == "reply"]
    assert [(r["id"], r["cmd"], r["ok"]) for r in replies] == [
        (1, "ping", True), (2, "slow", False), (None, "ping", False)]
    assert (replies[0]["result"], replies[0]["ms"], replies[0]["dev"]) == ("pong", 250.0, "m1")
    assert replies[1]["error"].startswith("no answer within")
    assert fleet.up_modules() == ["m1"] and fleet.up_modules("m9") == []


def test_parse_command_and_preview():
    assert hes_dashboard.parse_command(" status ") == ("status", None)
    assert hes_dashboard.parse_command('read {"obis": "1.0.1.8.0.255"}') == (
        "read", {"obis": "1.0.1.8.0.255"})
    assert hes_dashboard.parse_command("say hello there") == ("say", "hello there")
    assert hes_dashboard.parse_command("") == (None, None)
    assert hes_dashboard.preview(b"M0000001....") == "M0000001...."
    assert hes_dashboard.preview(b"x" * 100).endswith("...")
    assert len(hes_dashboard.preview(b"x" * 100)) == hes_dashboard.PREVIEW


# ---------------------------------------------------------------------- in a real browser
def _browser():
    """A headless chromium through chromium-driver, or skip saying loudly what is missing."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if not (chromium and driver and webdriver):
        pytest.skip("NO BROWSER TEST: %s missing (make test installs chromium and "
                    "chromium-driver with apt-get when run as root)" % ", ".join(
                        name for name, found in (("chromium", chromium),
                                                 ("chromedriver", driver),
                                                 ("selenium", webdriver)) if not found))
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1500,1300", "--lang=en"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


class _OtherModule(object):
    """A second module (REGISTER, one DATA frame) so the table has rows to filter and sort."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        info = {"dev": "a-other-module", "epoch": 1, "up": 3600, "queued": 12, "dropped": 0}
        self.sock.sendall(frame(REGISTER, json.dumps(info).encode())
                          + frame(DATA, struct.pack(">I", 1) + b"kWh 000123.4"))

    def close(self):
        self.sock.close()


@pytest.fixture
def dashboard_rig(tmp_path):
    system = System(root=str(tmp_path / "board"))
    dashboard = hes_dashboard.Dashboard(system.hes, port=0).start()
    browser = other = None
    try:
        browser = _browser()
        system.start()
        other = _OtherModule(system.hes.port)
        yield system, dashboard, browser
    finally:
        if browser is not None:
            browser.quit()
        if other is not None:
            other.close()
        system.stop()
        dashboard.stop()


def _rows(browser):
    from selenium.webdriver.common.by import By
    return [row.get_attribute("data-key")
            for row in browser.find_elements(By.CSS_SELECTOR, "#modules tbody tr")]


def _cell(browser, dev, column):
    """The text of a module's cell, by the column's header text."""
    from selenium.webdriver.common.by import By
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#modules th")]
    row = browser.find_element(By.CSS_SELECTOR, '#modules tbody tr[data-key="%s"]' % dev)
    return row.find_elements(By.TAG_NAME, "td")[headers.index(column)].text


def test_the_page_shows_modules_live_runs_commands_filters_and_sorts(dashboard_rig):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    system, dashboard, browser = dashboard_rig
    dev = system.config["TCP_SERVER"]["device_id"]

    def until(condition, message):
        WebDriverWait(browser, WAIT_S, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException, ValueError)).until(
            lambda b: condition(), message)

    browser.get(dashboard.url)
    until(lambda: sorted(_rows(browser)) == ["a-other-module", dev], "both modules listed")
    until(lambda: _cell(browser, dev, "Link").startswith("up for"), "the module is up")
    until(lambda: "HES listening" in browser.find_element(By.ID, "hes").text, "HES state")

    # the module's meter data arrives live
    system.meter.send_transparent(b"reading 17.2 kWh")
    system.meter.send_transparent(b"reading 17.3 kWh")
    until(lambda: "reading 17.3 kWh" in _cell(browser, dev, "Latest meter data"),
          "the latest meter data")

    # down and up: the HES goes away, the module reconnects when it is back
    system.hes.stop()
    until(lambda: _cell(browser, dev, "Link").startswith("down"), "the module shown down")
    assert "HES stopped" in browser.find_element(By.ID, "hes").text
    system.hes.start()
    until(lambda: _cell(browser, dev, "Link").startswith("up"), "the module shown up again")
    until(lambda: _cell(browser, dev, "Reconnects") == "1", "one reconnect counted")

    # a command round trip, to the one module
    until(lambda: dev in [o.get_attribute("value") for o in
                          Select(browser.find_element(By.ID, "target")).options], "target list")
    Select(browser.find_element(By.ID, "target")).select_by_value(dev)
    browser.find_element(By.ID, "command").send_keys("status")
    browser.find_element(By.ID, "send").click()
    until(lambda: browser.find_elements(By.CSS_SELECTOR, '.reply[data-dev="%s"]' % dev),
          "the status reply")
    reply = browser.find_element(By.CSS_SELECTOR, '.reply[data-dev="%s"]' % dev)
    assert "status" in reply.text and ": ok in" in reply.text, reply.text
    result = json.loads(reply.find_element(By.TAG_NAME, "pre").text)
    assert result["tcp"]["connected"] is True           # the app's own status dict
    browser.find_element(By.ID, "command").send_keys("ping")
    browser.find_element(By.ID, "send").click()
    until(lambda: "pong" in browser.find_element(By.CSS_SELECTOR, "#replies .reply").text,
          "the ping reply, newest first")

    # filter, then sort (by module name, then by data frames)
    filter_box = browser.find_element(By.ID, "modules-filter")
    filter_box.send_keys("other")
    until(lambda: _rows(browser) == ["a-other-module"], "the filter keeps one row")
    filter_box.clear()
    filter_box.send_keys(" ")             # clear() fires no input event: type, then delete
    filter_box.send_keys("\b")
    until(lambda: len(_rows(browser)) == 2, "the filter cleared")
    assert _rows(browser) == ["a-other-module", dev]                  # by module, ascending
    browser.find_element(By.CSS_SELECTOR, '#modules th[data-key="dev"]').click()
    until(lambda: _rows(browser) == [dev, "a-other-module"], "sorted descending")
    browser.find_element(By.CSS_SELECTOR, '#modules th[data-key="data"]').click()
    until(lambda: _rows(browser) == ["a-other-module", dev], "fewest data frames first")
    events = browser.find_element(By.ID, "events-filter")
    events.send_keys("reply")
    until(lambda: all("reply" in row.text for row in
                      browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")) and
          browser.find_elements(By.CSS_SELECTOR, "#events tbody tr"), "activity filtered")
    events.send_keys("\b" * 5)
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    assert browser.save_screenshot(SCREENSHOT)


def test_a_dashboard_attached_late_sees_the_modules_already_up():
    from tools.simulators.hes import HesSim
    hes = HesSim().start()
    sock = socket.create_connection(("127.0.0.1", hes.port))
    try:
        sock.sendall(frame(REGISTER, b'{"dev": "early", "epoch": 1, "queued": 5}'))
        assert hes.wait_for(lambda h: h.registrations, 5)
        fleet = hes_dashboard.Fleet()
        hes.add_observer(fleet.observe)
        row = fleet.view()["modules"][0]
        assert (row["dev"], row["state"], row["queued"]) == ("early", "up", 5)
        ident = hes.send_command("ping", None, dev="someone-else")      # nobody: not sent
        assert hes.stats["commands"] == 0 and ident == 1
        hes.send_command("ping", None, dev="early")
        assert hes.stats["commands"] == 1
    finally:
        sock.close()
        hes.stop()
