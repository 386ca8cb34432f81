"""checkNet on the host: waits (event-driven) for the shim's SIM, registration and PDP state."""
from shimlib import core


def _stage():
    state = core.state
    if not state["sim"]:
        return (1, 0)
    if not state["registered"]:
        return (2, 2 if state["attaching"] else 0)
    if not state["pdp"]:
        return (3, 0)
    return (3, 1)


def waitNetworkReady(timeout=60):
    """(3, 1) once the network is ready within timeout seconds, else the failing stage:
    (1, 0) no SIM, (2, 0|2) not registered, (3, 0) PDP context not active."""
    core.wait_for(lambda: _stage() == (3, 1), int(timeout * 1000))
    return _stage()


def wait_network_connected(timeout=60):
    """The older name of waitNetworkReady."""
    return waitNetworkReady(timeout)


class CheckNetwork(object):
    def __init__(self, project_name, project_version):
        self.PROJECT_NAME = project_name
        self.PROJECT_VERSION = project_version

    def poweron_print_once(self):
        import modem
        print("PROJECT_NAME: %s, PROJECT_SOFTVERSION: %s" % (self.PROJECT_NAME,
                                                            self.PROJECT_VERSION))
        print("DEVICE_FIRMWARE_VERSION: %s" % modem.getDevFwVersion())
        print("IMEI: %s" % modem.getDevImei())

    def wait_network_connected(self, timeout=60):
        return waitNetworkReady(timeout)
