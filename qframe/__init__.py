"""qframe: the application framework for the meter's cellular module (`usr.qframe`).

The QFrame names are all here (`from usr.qframe import Application, TcpClient, Uart`); importing
the package therefore loads the UART and TCP extensions too.
"""
from .app import Application, CurrentApp, G
from .config import ConfigError, Field
from .ext import AppExtension, AppExtensionABC
from .resolver import Resolver
from .uart import Uart
from .tcp import TcpClient
from .network import NetWatch

__version__ = "0.1.0"
