"""Control panel of the host shim: the board's filesystem and the state tests drive.

Runs on CPython and MicroPython. Device code never imports this module; tests and host tools do.
"""
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"
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
    import uos
    if not root.startswith("/"):
        root = uos.getcwd() + "/" + root
    board_root = root.rstrip("/")
    for top in DEVICE_DIRS:
        try:
            uos.mkdir(board_root + top)
        except OSError:
            pass
    if IS_MICROPYTHON:
        for top in DEVICE_DIRS:
            try:
                uos.umount(top)
            except OSError:
                pass
            uos.mount(uos.VfsPosix(board_root + top), top)
    else:
        import builtins
        if not hasattr(builtins, "_host_open"):
            builtins._host_open = builtins.open

            def device_open(file, *args, **kwargs):
                return builtins._host_open(host_path(file), *args, **kwargs)

            builtins.open = device_open
