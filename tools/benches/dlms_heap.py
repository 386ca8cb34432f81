"""A large DLMS response in a small MicroPython heap: the association reads, over WRAPPER in
memory, a GET answered in blocks whose value is an array of long-unsigned (3 octets each),
with about FREE_KB left free (ballast), as on a module with a 512 KB heap and the app loaded.

    python -m tools.benches.dlms_heap [MICROPYTHON]   (default .venv's micropython; one JSON line)

For each size: "ok" with the heap the decoded value holds, or the error the read ended with
(a MemoryError escaping is the failure the heap bound prevents: the association then fails
the request cleanly with ProtocolError, "response above N octets")."""
import json
import os
import subprocess
import sys

from tools.hostrun import board_root

HEAP = "512K"
FREE_KB = 115
SIZES = (2048, 4096, 8192, 16384, 32768)

PROBE = r"""
import gc
from usr.qframe.codecs import axdr, wrapper, xdlms, acse
from usr.qframe.protocols import dlms
gc.collect()
ballast = [None] * 4000
i = 0
try:                                # fill the heap, then give back FREE_KB at its top
    while True:
        ballast[i] = bytearray(1024 - 16)
        i += 1
except MemoryError:
    pass
for j in range(i - %(free)d // 1024, i):
    ballast[j] = None
gc.collect()
out = {"mem_free": gc.mem_free()}
for size, TYPED in [(s, t) for t in (False, True) for s in %(sizes)r]:
    n = size // 3
    head = b"\x01\x82" + bytes((n >> 8, n & 255))
    blocks = [head + b"\x12\x00\x07" * 332]     # the wire: one block at a time
    left = n - 332
    while left > 0:
        blocks.append(b"\x12\x00\x07" * min(333, left))
        left -= 333
    a = dlms.Association(dlms.Settings(transport="wrapper"))
    a.associated = True
    op = a.get(1, b"\x00\x00\x60\x01\x00\xff", 2, typed=TYPED)
    op.start()
    gc.collect()
    before = gc.mem_alloc()
    try:
        for i, raw in enumerate(blocks):
            reply = xdlms.get_block(i + 1, raw, i == len(blocks) - 1)
            op.receive(wrapper.encode(1, 16, reply))
        if op.error is not None:
            result = "%%s: %%s" %% (type(op.error).__name__, op.error)
        else:
            gc.collect()
            result = "ok, value holds %%d bytes" %% (gc.mem_alloc() - before)
    except MemoryError:
        result = "MemoryError"
    op = a = blocks = reply = None
    gc.collect()
    out[("typed " if TYPED else "plain ") + str(size)] = result
print("RESULT " + repr(out))
"""


def main():
    root = board_root.stage()
    mp = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(sys.executable),
                                                           "micropython")
    code = PROBE % {"free": FREE_KB * 1024, "sizes": SIZES}
    path = os.path.join(root, "_dlms_heap_probe.py")
    with open(path, "w") as f:
        f.write(code)
    proc = subprocess.run([mp, "-X", "heapsize=" + HEAP, path], capture_output=True, text=True,
                          cwd=root, timeout=300,
                          env=dict(os.environ, MICROPYPATH=os.pathsep.join(
                              [root, os.path.join(board_root.REPO, "tools", "shim", "micropython"),
                               os.path.join(board_root.REPO, "tools", "shim")])))
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if not line:
        sys.stderr.write(proc.stdout + proc.stderr)
        return 1
    import ast
    result = ast.literal_eval(line[0][7:])
    print(json.dumps({"micropython": mp, "heap": HEAP, "free_kb": FREE_KB, "results": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
