"""The simulated HES's web dashboard (tools/simulators/hes_dashboard.py): the page in a real
headless browser
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

from tools.hostrun.board_root import REPO
from tools.simulators import hes_dashboard
from tools.simulators.fleet import Fleet
from tools.simulators.hes_wire import DATA, REGISTER, frame
from tools.simulators.system import System

SCREENSHOT = os.path.join(REPO, "build", "hes-dashboard.png")
WAIT_S = 20          # the module reconnects within backoff_cap_s (2 s) of the HES coming back


def test_parse_command():
    assert hes_dashboard.parse_command(" status ") == ("status", None)
    assert hes_dashboard.parse_command('read {"obis": "1.0.1.8.0.255"}') == (
        "read", {"obis": "1.0.1.8.0.255"})
    assert hes_dashboard.parse_command("say hello there") == ("say", "hello there")
    assert hes_dashboard.parse_command("") == (None, None)


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
    """The modules' keys in table order, read in one go (the page redraws the table twice a
    second: elements found one call earlier can be gone)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#modules tbody tr'))"
        ".map(function (row) { return row.getAttribute('data-key'); });")


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
    # the module's link-down (the HES's client thread) can reach the page in an update before
    # the HES's own "stopped" (the end of hes.stop()): wait for each
    until(lambda: "HES stopped" in browser.find_element(By.ID, "hes").text, "HES stopped")
    system.hes.start()
    until(lambda: _cell(browser, dev, "Link").startswith("up"), "the module shown up again")
    # at least one: a slow HES (a loaded machine) can miss an ACK deadline, and the module
    # then reconnects once more, as it should
    until(lambda: int(_cell(browser, dev, "Reconnects")) >= 1, "the reconnect counted")

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
        fleet = Fleet()
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


EVIL_PAGE = """<!doctype html><html><head><title>waiting</title></head><body><script>
const results = {};
function done(what, how) {
  results[what] = how;
  if (Object.keys(results).length === 3) document.title = "done " + JSON.stringify(results);
}
function attempt(what, url) {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.send(JSON.stringify({type: "command", text: "ping", dev: ""}));
                      done(what, "open"); };
  ws.onerror = () => done(what, "refused");
}
attempt("with_token", "ws://127.0.0.1:DASH_PORT/ws?token=TOKEN");
attempt("without_token", "ws://127.0.0.1:DASH_PORT/ws");
fetch("http://127.0.0.1:DASH_PORT/modules/m1/commands",
      {method: "POST", mode: "no-cors", body: '{"cmd": "ping"}'})
  .then(() => done("rest", "sent"), () => done("rest", "refused"));
</script></body></html>"""


def test_a_page_on_another_origin_cannot_command_a_module():
    """A page served from another origin (another port of 127.0.0.1), in real headless
    chromium, opens the dashboard's websocket (even knowing the token) and POSTs to the REST
    API: the dashboard refuses both and the module receives no command."""
    import http.server
    import threading
    from selenium.webdriver.support.ui import WebDriverWait
    from tools.simulators.hes import HesSim

    hes = HesSim().start()
    dashboard = hes_dashboard.Dashboard(hes, port=0).start()
    module = socket.create_connection(("127.0.0.1", hes.port))
    page = EVIL_PAGE.replace("DASH_PORT", str(dashboard.port)).replace(
        "TOKEN", dashboard.token).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    browser = None
    try:
        module.sendall(frame(REGISTER, b'{"dev": "m1", "epoch": 1}'))
        assert dashboard.fleet.wait_for(lambda f: f.module("m1") is not None, WAIT_S)
        browser = _browser()
        browser.get("http://127.0.0.1:%d/" % evil.server_address[1])
        WebDriverWait(browser, WAIT_S).until(lambda b: b.title.startswith("done"))
        results = json.loads(browser.title[len("done "):])
        assert results == {"with_token": "refused", "without_token": "refused",
                           "rest": "sent"}, results     # no-cors: the page cannot tell
        assert hes.stats["commands"] == 0               # the module got nothing
        assert dashboard.refused["origin"] == 3, dashboard.refused
    finally:
        if browser is not None:
            browser.quit()
        evil.shutdown()
        module.close()
        dashboard.stop()
        hes.stop()
