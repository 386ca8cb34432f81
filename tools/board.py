"""Entry point: stage a board root or run the app on the host (tools/hostrun/board_root.py).

    python tools/board.py stage [ROOT] [--app DIR]
    python tools/board.py run [--root ROOT] [--app DIR] [--interpreter cpython|micropython]
                              [--config FILE] [--duration S]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.hostrun.board_root import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
