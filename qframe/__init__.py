"""qframe: the application framework for the meter's cellular module (`usr.qframe`)."""
from .app import Application, CurrentApp, G
from .config import ConfigError, Field
from .ext import AppExtension, AppExtensionABC

__version__ = "0.1.0"
