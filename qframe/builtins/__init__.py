"""Extensions that own I/O and threads (QFrame's `usr.qframe.builtins`).

Each module is imported when an app uses it; the names below load lazily for the same reason.
`network` here is the module usr.qframe.builtins.network (QFrame rebinds the name to its
network extension): its register_net_callback / register_sim_callback / wait_network_ready
reach the current app's `network` extension, so QFrame code using them runs unchanged.
"""
from ..core.lazy import lazy_names, load_without_pep562

_LAZY = {"Uart": "uart", "TcpClient": "clients", "TcpServer": "clients", "SmsClient": "sms",
         "NetWatch": "netwatch", "NetWork": "network", "Watchdog": "watchdog",
         "MqttClient": "mqtt", "Ota": "ota_update"}
__getattr__ = lazy_names(__name__, _LAZY)
load_without_pep562(__name__, ("Uart", "TcpClient"))    # QFrame's names
