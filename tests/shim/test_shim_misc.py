"""misc, modem, log, ntptime and machine.RTC of the shim."""
import utime
import shimctl
import machine
import misc
import modem
import log
import ntptime
from shimlib import firmware
from checks import EVENT_MS, raises


def test_power_restart_is_recorded():
    shimctl.reset()
    assert misc.Power.powerRestart() is None
    assert shimctl.wait_for(lambda: shimctl.state["reboots"] == 1, EVENT_MS)
    shimctl.state["reboot_raises"] = True
    raises(SystemExit, misc.Power.powerRestart)
    assert shimctl.state["reboots"] == 2
    shimctl.state["reboot_raises"] = False
    misc.Power.powerDown()
    assert shimctl.state["power_downs"] == 1
    assert misc.Power.powerOnReason() == 1
    shimctl.reset()
    assert shimctl.state["reboots"] == 0


def test_modem_identity():
    shimctl.reset()
    assert modem.getDevImei() == shimctl.state["imei"] and len(modem.getDevImei()) == 15
    assert modem.getDevModel().startswith("EC")
    assert modem.getDevFwVersion() and modem.getDevSN()


class _Sink(object):
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)


def _set_output(out):
    """log.set_output (E3); on the lines without it, the shim's own switch (the output of
    log on those lines is the console only)."""
    if firmware.LINE == "E3":
        log.set_output(out)
    else:
        assert not hasattr(log, "set_output")
        log._config["out"] = out


def test_log_levels_and_output():
    sink = _Sink()
    _set_output(sink)
    try:
        log.basicConfig(level=log.WARNING)
        logger = log.getLogger("meter")
        logger.info("hidden")
        logger.warning("low voltage")
        logger.critical("gone")
        assert len(sink.lines) == 2
        assert "[meter] WARNING: low voltage" in sink.lines[0]
        assert "CRITICAL: gone" in sink.lines[1]
        assert log.DEBUG < log.INFO < log.WARNING < log.ERROR < log.CRITICAL
    finally:
        _set_output(None)
        log.basicConfig(level=log.INFO)


def test_rtc_set_and_get():
    shimctl.reset()
    rtc = machine.RTC()
    assert rtc.datetime((2030, 6, 15, 0, 12, 30, 45, 0)) == 0
    now = rtc.datetime()
    assert now[:3] == (2030, 6, 15) and now[4:6] == (12, 30) and 0 <= now[3] <= 6
    assert now[3] == 6                       # 2030-06-15 is a Saturday (0 = Sunday)
    shimctl.reset()
    assert abs(rtc.datetime()[0] - utime.localtime()[0]) <= 1


def test_ntptime_needs_the_network():
    shimctl.reset()
    machine.RTC().datetime((2001, 1, 1, 0, 0, 0, 0, 0))
    shimctl.set_network(False)
    assert ntptime.settime() == -1
    shimctl.set_network(True)
    assert ntptime.settime() == 0 and shimctl.state["ntp_syncs"] == 1
    assert machine.RTC().datetime()[0] >= 2024
    assert ntptime.host == "ntp.aliyun.com"
    assert ntptime.sethost("pool.ntp.org") == 0 and ntptime.host == "pool.ntp.org"
    ntptime.sethost("ntp.aliyun.com")
    shimctl.reset()
