"""qframe: the application framework for the meter's cellular module (`usr.qframe`).

`import usr.qframe` loads the core only (Application, extensions' base, config, bus,
threading, logging). QFrame's package-level names for the built-in extensions (`Uart`,
`TcpClient`) and ours (`NetWatch`, `Watchdog`, `Resolver`, `MqttClient`) load on first use, and
so do the submodules (`from usr.qframe import serial`): an app pays the heap of what it touches.
"""
from .core import Application, AppExtension, AppExtensionABC, ConfigError, CurrentApp, Field, G
from .core.lazy import lazy_names, load_without_pep562

__version__ = "0.2.0"

_LAZY = {
    "Uart": "builtins.uart",
    "TcpClient": "builtins.clients",
    "SmsClient": "builtins.sms",
    "NetWatch": "builtins.netwatch",
    "Watchdog": "builtins.watchdog",
    "Resolver": "protocols.resolver",
    "MqttClient": "builtins.mqtt",
    "Ota": "builtins.ota_update",
}
__getattr__ = lazy_names(__name__, _LAZY)
load_without_pep562(__name__, ("Uart", "TcpClient"))    # QFrame's names
