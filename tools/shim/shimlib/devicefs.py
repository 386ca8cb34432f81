"""The module's filesystem on the host: device paths /usr and /bak live in a board root.

install_fs(root) maps them: on CPython builtins.open (and cpython/uos.py) map the paths through
host_path(); on MicroPython quota.QuotaVfs (a VfsPosix) is mounted on /usr and /bak.
"""
from shimlib import core, quota
from shimlib.hostio import os

DEVICE_DIRS = ("/usr", "/bak")

board_root = None


def host_path(path):
    """Map a device path (/usr/..., /bak/...) into the board root on CPython."""
    if board_root and isinstance(path, str):
        for top in DEVICE_DIRS:
            if path == top or path.startswith(top + "/"):
                return board_root + path
    return path


def install_fs(root):
    """Make /usr and /bak of device code resolve inside ROOT (created if missing)."""
    global board_root
    board_root = root.rstrip("/")
    for top in DEVICE_DIRS:
        try:
            os.mkdir(board_root + top)
        except OSError:
            pass
    if core.IS_MICROPYTHON:
        quota.mount_quota(board_root, DEVICE_DIRS)
    else:
        import builtins
        if not hasattr(builtins, "_host_open"):
            builtins._host_open = builtins.open
            builtins.open = _open_device


def _open_device(file, mode="r", *args, **kwargs):
    """builtins.open on CPython: device paths mapped into the board root, quota applied."""
    import builtins
    path = host_path(file)
    if path is file or not quota.limited() or not quota.writes(mode):
        return builtins._host_open(path, mode, *args, **kwargs)
    return quota.quota_open(builtins._host_open, path, mode, *args, **kwargs)
