"""Ctrl-C for an app process in tests, aimed at its main thread.

MicroPython's unix port raises KeyboardInterrupt from its SIGINT handler in whichever thread
the kernel delivers a process-directed signal to; in a thread busy in C (a lock, the GC) that
can crash the interpreter (SIGSEGV), which is the port's behaviour, not the app's. A terminal's
Ctrl-C usually lands on the main thread, which sleeps in a system call: tgkill sends it there.
"""
import ctypes
import os
import signal


def interrupt(proc):
    """SIGINT to proc's main thread (tgkill, Linux), else to the process."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.tgkill(proc.pid, proc.pid, signal.SIGINT) == 0:
            return
    except (AttributeError, OSError):
        pass
    os.kill(proc.pid, signal.SIGINT)
