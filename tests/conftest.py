"""pytest set-up: stage the board root and put it, the shim and tests/portable on sys.path,
so device code imports `usr.qframe` exactly as on the module."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.append(os.path.join(REPO, "tools"))

import board  # noqa: E402  (tools/board.py)

board.stage()
for _path in reversed([board.DEFAULT_ROOT] + board.shim_paths("cpython")
                      + [os.path.join(HERE, "portable")]):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import shimctl  # noqa: E402

shimctl.install_fs(board.DEFAULT_ROOT)
