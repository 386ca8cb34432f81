"""The core: the Application mediator, the extension base, config, the event bus.

This is also QFrame's `usr.qframe.core` (Application, AppExtensionABC, CurrentApp, G).
"""
from .app import Application, CurrentApp, G
from .config import ConfigError, Field
from .ext import AppExtension, AppExtensionABC
