"""The core: the Application mediator, the extension base, config, the event bus.

This is also QFrame's `usr.qframe.core` (Application, AppExtensionABC, CurrentApp, G, and the
helpers QFrame's core module imports: OrderedDict, LocalStorage, ThreadPoolExecutor, Lock).
"""
from .app import Application
from .config import ConfigError, Field
from .ext import AppExtension, AppExtensionABC
from ..collections import LocalStorage, OrderedDict
from ..globals import CurrentApp, G, _AppCtxGlobals
from ..threading import Lock, ThreadPoolExecutor
