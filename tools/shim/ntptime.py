"""ntptime on the host: settime() succeeds while the network is up (the host clock is the
reference) and resets the RTC offset; it fails (-1) without network or DNS. As on the
firmware, settime() takes no argument (no time zone)."""
from shimlib import core as _core, firmware as _firmware, network as _network

host = "ntp.aliyun.com"


def sethost(new_host):
    global host
    host = new_host
    return 0


def settime():
    state = _core.state
    if not _network.net_ready() or state["dns_fail"]:
        return -1
    state["rtc_offset_s"] = 0
    _core.count("ntp_syncs")
    return 0


_firmware.prune(globals(), "ntptime")
