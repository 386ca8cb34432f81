"""uerrno on MicroPython for device code: the interpreter's errno on firmware line E3, an
ImportError on E1 and E2 (which have no uerrno). A build where uerrno is built in never reaches
this file: there shimlib puts a stand-in into sys.modules whose attributes raise ImportError."""
from shimlib import firmware as _firmware

_firmware.require("uerrno")

from errno import *  # noqa: E402,F401,F403
