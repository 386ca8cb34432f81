"""What the shim says about the simulated module (a watchdog that would reset it, a failed
download, a crashed thread): printed like the module's console output, and kept for tests.

    note(text, exc=None)    print text (and exc's traceback) unless quieted; keep the text
    mark()                  a position in what was said; since(mark) lists the texts after it
    quiet(on)               nest: while quieted nothing is printed (tests that inject these
                            faults on purpose; tests/portable/checks.py `captured`)
"""
from shimlib.hostio import print_exception

KEEP = 200
_said = []
_count = [0]
_quiet = [0]


def note(text, exc=None):
    _count[0] += 1
    _said.append(text)
    if len(_said) > KEEP:
        _said.pop(0)
    if not _quiet[0]:
        print(text)
        if exc is not None:
            print_exception(exc)


def mark():
    return _count[0]


def since(position):
    """The texts noted after mark() returned position (the last KEEP at most)."""
    return _said[max(0, len(_said) - (_count[0] - position)):]


def quiet(on):
    _quiet[0] += 1 if on else -1
