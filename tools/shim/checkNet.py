"""checkNet on the host: waits (event-driven) for the shim's SIM, registration and PDP state.

The firmware's frozen checkNet.py (every 2021 line) has wait_network_connected(timeout_s) and
the CheckNetwork class; `waitNetworkReady` is a later name it does not have.
"""
from shimlib import firmware as _firmware
from shimlib import core as _core, network as _network


def wait_network_connected(timeout_s=60):
    """(3, 1) once the network is ready within timeout_s seconds, else the failing stage
    (shimctl.net_stage()). As on the firmware, a timeout outside 1..3600 raises OSError."""
    if timeout_s < 1 or timeout_s > 3600:
        raise OSError("timeout_s out of range (1..3600): %r" % (timeout_s,))
    _core.wait_for(lambda: _network.stage() == (3, 1), int(timeout_s * 1000))
    return _network.stage()


class CheckNetwork(object):
    def __init__(self, proj_name, proj_version):
        self.PROJECT_NAME = proj_name
        self.PROJECT_VERSION = proj_version

    def poweron_print_once(self):
        import modem
        print("PROJECT_NAME: %s, PROJECT_SOFTVERSION: %s" % (self.PROJECT_NAME,
                                                            self.PROJECT_VERSION))
        print("DEVICE_FIRMWARE_VERSION: %s" % modem.getDevFwVersion())
        print("IMEI: %s" % modem.getDevImei())

    def wait_network_connected(self, timeout_s=60):
        return wait_network_connected(timeout_s)


_firmware.prune(globals(), "checkNet")
