"""Corruption cases for the flash queue (qframe/store/pqueue.py): write, damage its files, reopen.

    figures = run_case(folder, seed)     # AssertionError if an invariant breaks

A case writes records over several segments in two sessions (some acknowledged, each session
closed), applies one kind of damage (KINDS, or "multi": two to four of them) shaped by seed, then
opens the queue again, drains it and puts new records. Invariants:
  * opening, draining and putting never raise;
  * every unacknowledged record whose bytes are still where they were is delivered;
  * every unacknowledged record not delivered is counted (`corrupt_dropped`, `ram_lost`,
    `dropped`): exactly once for one kind of damage (figures["uncounted"] == 0 and
    figures["overcounted"] == 0), at least once for several unless a head file was damaged too;
  * a record put after the reopen never gets an (epoch, seq) handed out before.
Runs on CPython (tests/fuzz: many seeds) and MicroPython (tests/portable: a few).
"""
import uos

from usr.qframe.protocols.backoff import Random
from usr.qframe.store.pqueue import PersistentQueue, encode_record

KINDS = ("head_type", "head_flip", "head_truncate", "head_delete", "marker", "seg_delete",
         "seg_empty", "seg_truncate", "seg_flip", "seg_garbage")
HEAD_KINDS = ("head_type", "head_flip", "head_truncate", "head_delete", "marker")
BAD_VALUES = ('"x"', "1e400", "[]", "[1, 2]", "null", "true", "-5", "1.5", "{}",
              "99999999999999999999")
HEAD_KEYS = ("n", "seg", "off", "acked", "epoch", "hw", "lost_to", "done", "last")


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _files(folder):
    names = sorted(uos.listdir(folder))
    return ([folder + "/" + n for n in names if n.endswith(".seg")],
            [folder + "/" + n for n in names if n.startswith("head")])


def _pick(rng, items):
    return items[rng.bits16() % len(items)] if items else None


def _flip(rng, path, flips=1):
    data = bytearray(_read(path))
    if not data:
        return
    for _ in range(flips):
        at = rng.bits16() % len(data)
        data[at] ^= 1 << (rng.bits16() % 8)
    _write(path, data)


def _head_type(rng, path):
    """One head value replaced by a value of the wrong type or range (the file stays JSON)."""
    import ujson
    try:
        text = _read(path).decode().rstrip()
        if not text.endswith("}"):
            text = text[:text.rfind(" ")]
        meta = ujson.loads(text)
    except Exception:             # already damaged (several kinds at once)
        meta = {"n": 1}
    meta[_pick(rng, HEAD_KEYS)] = "@BAD@"
    text = ujson.dumps(meta).replace('"@BAD@"', _pick(rng, BAD_VALUES))
    _write(path, text.encode() + b" " * 20)


def damage(rng, folder, kind):
    """Apply one kind of damage to the queue's files."""
    segments, heads = _files(folder)
    if kind in ("seg_delete", "seg_empty", "seg_truncate", "seg_flip", "seg_garbage"):
        path = _pick(rng, segments)
        if path is None:
            return
        if kind == "seg_delete":
            uos.remove(path)
        elif kind == "seg_empty":
            _write(path, b"")
        elif kind == "seg_truncate":
            data = _read(path)
            _write(path, data[:rng.bits16() % max(len(data), 1)])
        elif kind == "seg_flip":
            _flip(rng, path, 1 + rng.bits16() % 3)
        else:
            data = bytearray(_read(path))
            if data:
                at = rng.bits16() % len(data)
                for i in range(at, min(len(data), at + 1 + rng.bits16() % 40)):
                    data[i] = rng.bits16() & 0xFF
                _write(path, data)
        return
    if kind == "marker":
        if rng.bits16() % 2:
            try:
                uos.remove(folder + "/epoch")
            except OSError:
                pass
        else:
            _write(folder + "/epoch", _pick(rng, (b"", b"x", b"1e400", b"-1", b"\xff\xfe")))
        return
    path = _pick(rng, heads)
    if path is None:
        return
    if kind == "head_type":
        _head_type(rng, path)
    elif kind == "head_flip":
        _flip(rng, path)
    elif kind == "head_truncate":
        data = _read(path)
        _write(path, data[:rng.bits16() % len(data)])
    elif kind == "head_delete":
        for path in (heads if rng.bits16() % 3 == 0 else [path]):
            try:
                uos.remove(path)
            except OSError:
                pass


def _payload(index, rng):
    return ("p%05d:" % index).encode() + b"." * (rng.bits16() % 60)


def _open(folder, segment_bytes):
    return PersistentQueue(folder, 1 << 20, segment_bytes, 1 << 16, 0, "fuzz")


def _session(folder, segment_bytes, rng, written, acked_to, count):
    """Open, put count records, acknowledge a prefix, close; the new acknowledged seq."""
    q = _open(folder, segment_bytes)
    for _ in range(count):
        data = _payload(len(written), rng)
        written.append((q.epoch, q.put(data), data))
    seqs = [seq for _epoch, seq, _data in written if seq > acked_to]
    if seqs and rng.bits16() % 3:
        ack = seqs[rng.bits16() % len(seqs)] if rng.bits16() % 4 else seqs[-1]
        q.ack(ack)
        acked_to = ack
    q.close()
    return acked_to


def run_cases(folder, seeds, kinds=KINDS + ("multi",)):
    """run_case for every seed and kind; the summed figures (AssertionError as run_case)."""
    total = {"cases": 0, "records": 0, "missing": 0, "counted": 0, "uncounted": 0,
             "overcounted": 0, "uncounted_with_head_damage": 0, "epoch_reset": 0}
    for kind in kinds:
        for seed in seeds:
            figures = run_case(folder, seed, kind)
            total["cases"] += 1
            for key in total:
                if key != "cases":
                    total[key] += figures[key]
    return total


def run_case(folder, seed, kind=None):
    """One case (see the module docstring) in the empty folder; its figures."""
    rng = Random(seed)
    for name in uos.listdir(folder):
        uos.remove(folder + "/" + name)
    segment_bytes = 48 + rng.bits16() % 250
    written = []             # (epoch, seq, payload) in put order
    acked_to = 0
    for _ in range(2):
        acked_to = _session(folder, segment_bytes, rng, written, acked_to, 3 + rng.bits16() % 30)
    pending = [(seq, data) for _epoch, seq, data in written if seq > acked_to]
    segments, _heads = _files(folder)
    before = dict((path, _read(path)) for path in segments)
    located = {}             # payload -> (segment path, offset, encoded record)
    for seq, data in pending:
        record = bytes(encode_record(seq, data))
        for path in before:
            at = before[path].find(record)
            if at >= 0:
                located[data] = (path, at, record)
    if kind is None:
        kind = KINDS[rng.bits16() % len(KINDS)] if rng.bits16() % 5 else "multi"
    kinds = [kind] if kind != "multi" else \
        [_pick(rng, KINDS) for _ in range(2 + rng.bits16() % 3)]
    for one in kinds:
        damage(rng, folder, one)
    q = _open(folder, segment_bytes)             # must not raise
    delivered = set(_drain(q))
    stats = q.stats
    counted = stats.get("corrupt_dropped", 0) + stats["ram_lost"] + stats["dropped"]
    old = dict(((epoch, seq), data) for epoch, seq, data in written)
    for i in range(3):
        data = ("new%d" % i).encode()
        key = (q.epoch, q.put(data))
        assert key not in old, ("seq reused", seed, kinds, key)
    assert _drain(q) == [b"new0", b"new1", b"new2"], (seed, kinds)
    payloads = set(data for _epoch, _seq, data in written)
    assert delivered <= payloads, ("phantom record", seed, kinds)
    for data in located:
        path, at, encoded = located[data]
        try:
            intact = _read(path)[at:at + len(encoded)] == encoded
        except OSError:
            intact = False
        assert not intact or data in delivered, ("intact record lost", seed, kinds, data)
    missing = len([1 for _seq, data in pending if data not in delivered])
    heads_touched = [k for k in kinds if k in HEAD_KINDS]
    exact = len(kinds) == 1 or not heads_touched
    figures = {"kinds": kinds, "records": len(written), "pending": len(pending),
               "missing": missing, "counted": counted,
               "uncounted": max(missing - counted, 0) if exact else 0,
               "overcounted": max(counted - missing, 0) if exact else 0,
               "uncounted_with_head_damage": 0 if exact else max(missing - counted, 0),
               "epoch_reset": stats["epoch_resets"], "segments_lost": stats.get("segments_lost", 0),
               "head_repaired": stats.get("head_repaired", 0)}
    return figures


def _drain(q):
    """Every record in order (a walk with peek), then one ack for all of them."""
    out = []
    record = q.peek()
    while record is not None:
        out.append(bytes(record[1]))
        last = record[0]
        record = q.peek(last)
    if out:
        q.ack(last)
    assert q.peek() is None
    return out
