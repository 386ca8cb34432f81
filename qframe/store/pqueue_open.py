"""Opening a PersistentQueue (store/pqueue.py): read the heads and the epoch marker, scan every
segment, count what damage cost, and pick the epoch and the next seq (the recovery rules are in
pqueue's docstring). Startup-only: the queue imports it to open and forgets it after
(core/lazy.py `forget`), so its code is not kept on the heap while the queue runs.
"""
import uos
import ujson

from ..codecs.crc import fcs16 as crc16
from ..logging import getLogger
from .pqueue import (HEADER_SIZE, MAGIC, MAX_RECORD, SEGMENT_HEADER_SIZE, SEGMENT_MAGIC,
                     _HEAD_BYTES, _SEQ_MAX, _SUFFIX, _Segment, parse_segment_header)

_log = getLogger("pqueue")


_HEAD_RANGES = {"n": (0, _SEQ_MAX), "seg": (0, 99999999), "off": (0, _SEQ_MAX),
                "acked": (0, _SEQ_MAX), "epoch": (0, 0x7FFFFFFF), "hw": (0, _SEQ_MAX),
                "lost_to": (0, _SEQ_MAX), "done": (0, _SEQ_MAX), "last": (0, _SEQ_MAX)}


def _torn_write(tail):
    """True if tail (bytes after a segment's last valid record) can be what a write cut short
    leaves: the start of a segment header and/or a record, shorter than it announces."""
    if tail[0] == SEGMENT_MAGIC:
        if len(tail) < SEGMENT_HEADER_SIZE:
            return True
        if parse_segment_header(tail) is None:
            return False
        tail = tail[SEGMENT_HEADER_SIZE:]
        if not tail:
            return True
    if tail[0] != MAGIC:
        return False
    if len(tail) < HEADER_SIZE:
        return True
    return HEADER_SIZE + ((tail[1] << 8) | tail[2]) > len(tail)


def head_problem(meta):
    """None if meta (a parsed head file) holds usable values, else what is wrong."""
    if not isinstance(meta, dict) or "n" not in meta:
        return "not a head"
    for key in _HEAD_RANGES:
        if key in meta:
            value = meta[key]
            least, most = _HEAD_RANGES[key]
            if type(value) is not int or value < least or value > most:
                return "%s is %r" % (key, value)
    if meta.get("hw", _SEQ_MAX) < meta.get("acked", 0):
        return "hw below acked"
    return None


def parse_head(raw):
    """(head dict, None), or (None, what is wrong) for the bytes of a head file: JSON, then its
    CRC-16 in decimal (a head of the previous format has none), then padding."""
    try:
        text = raw.rstrip()
        if not text:
            return None, "empty"
        if text[-1] != 0x7D:                         # "}": a CRC follows the JSON
            cut = text.rfind(b" ")
            if cut < 0 or crc16(text[:cut]) ^ 0xFFFF != int(text[cut + 1:].decode()):
                return None, "bad checksum"
            text = text[:cut]
        meta = ujson.loads(text.decode())
    except Exception:           # not UTF-8, not JSON, a number too long...: not a head
        return None, "unreadable"
    problem = head_problem(meta)
    return (None, problem) if problem else (meta, None)


def _makedirs(q):
    current = ""
    for part in q.path.split("/"):
        if not part:
            continue
        current = current + "/" + part if (current or q.path[0] == "/") else part
        try:
            uos.mkdir(current)
        except OSError:
            pass


def _segment_numbers(q):
    numbers = []
    try:
        names = uos.listdir(q.path)
    except OSError as exc:
        q.stats["read_errors"] += 1
        _log.exception("%s: cannot list %s", exc, q.name, q.path)
        names = []
    for name in names:
        stem = name[:-len(_SUFFIX)]
        if name.endswith(_SUFFIX) and len(stem) == 8 and stem.isdigit():
            numbers.append(int(stem))
    numbers.sort()
    return numbers


def open_queue(q):
    _makedirs(q)
    meta, damaged = _read_meta(q)
    marker = _read_marker(q)
    numbers = _segment_numbers(q)
    head_seg = meta.get("seg", 0)
    head_offset = meta.get("off", 0)
    q._acked = meta.get("acked", 0)
    q._done = max(q._acked, meta.get("done", 0))
    q._next_seq = q._done + 1
    # seqs before the first live record that are accounted for (None: no head says)
    last = q._done if meta else None
    stale = []               # removed once no head points at them
    tail_torn = False        # the newest segment ends in bytes no torn write leaves
    for number in numbers:
        if number < head_seg:
            stale.append(_Segment(number))
            continue
        start = head_offset if number == head_seg else 0
        segment, last, tail_torn = _scan(q, number, start, last)
        if segment.records:
            if not q._segments:
                q._head_offset = max(start, segment.start)
            q._segments.append(segment)
        else:
            stale.append(segment)
    if not q._segments:   # numbers never go back: older ones would look consumed
        q._segments.append(_Segment(max(numbers[-1] if numbers else 0, head_seg)))
        q._head_offset = 0
    q._flash_last = q._next_seq - 1
    unsure = damaged or tail_torn
    _resume(q, meta, marker, stale, unsure, last or 0)
    if q._records:
        _log.info("%s: recovered %d records (%d bytes) from flash", q.name, q._records,
                  q._bytes)


def _resume(q, meta, marker, stale, unsure, counted):
    """Pick the epoch and the next seq so that no seq is ever reused within an epoch.
    counted: the scan accounted for every seq up to it (on flash or counted as lost)."""
    top = q._next_seq - 1          # highest seq consumed or on flash
    hw = meta.get("hw")
    q.epoch = meta.get("epoch") or 0
    if hw is None:                    # empty, or a head of a version without the mark
        hw = top
    last = meta.get("last", 0)        # the newest record on flash when the head was written
    if last > max(top, counted):      # gone: the newest segment was cut short or deleted
        _note_lost(q, last - max(top, counted),
                        "the newest segment was cut short or deleted")
        q.stats["segments_lost"] += 1
        unsure = True                 # records written after that head may be gone too
    q._lost_to = max(meta.get("lost_to", 0), top, last, counted)
    if hw > q._lost_to:            # seqs given out after the newest record on flash
        lost = hw - q._lost_to
        if unsure:
            _note_lost(q, lost, "kept in RAM or on a damaged segment")
        else:
            q.stats["ram_lost"] += lost
            _log.warning("%s: %d records kept in RAM (flash full) were lost in a reset "
                         "(seqs %d..%d)", q.name, lost, q._lost_to + 1, hw)
        q._lost_to = hw
    trusted = bool(meta) and not unsure and (meta.get("hw") is None or marker == q.epoch)
    q._proven = trusted and marker == q.epoch
    q._hw = hw
    q._next_seq = max(top, hw) + 1
    if not trusted:
        if meta or q._records:
            q.stats["epoch_resets"] += 1
            _log.warning("%s: cannot prove that seqs after %d were never used (epoch %s): "
                         "new epoch", q.name, top, q.epoch)
        q.epoch = q._new_epoch()
        q._remove_marker()
    q._write_meta()
    if meta.get("hw") is None or unsure or stale:   # both heads rewritten: neither points
        q._write_meta()                          # at a stale segment or a damaged value
    for segment in stale:
        q._delete_segment(segment)


def _read_meta(q):
    """(the newer valid head's content or {}, True if a head file is damaged or missing:
    the other one may be older than the newest, so its hw cannot be trusted)."""
    best = {}
    bad = missing = 0
    for which in (0, 1):
        try:
            with q._file(q._meta_path(which), "rb") as f:
                raw = f.read(_HEAD_BYTES + 1)
        except OSError:
            missing += 1
            continue
        meta, problem = parse_head(raw)
        if problem is not None:
            bad += 1
            _log.warning("%s: head file %d damaged (%s)", q.name, which, problem)
        elif meta["n"] > best.get("n", -1):
            best = meta
    if best.get("n", 0) > 1 or (not best and _segment_numbers(q)):
        bad += missing          # both heads exist once a queue has written twice
    if bad:
        q.stats["head_repaired"] += bad
        _log.warning("%s: %d head file(s) damaged or missing: rewritten", q.name, bad)
    q._meta_count = best.get("n", 0)
    return best, bad > 0


def _note_lost(q, count, why):
    q.stats["corrupt_dropped"] += count
    _log.error("%s: %d records lost: %s", q.name, count, why)


def _scan(q, number, start, last):
    """Validate a segment file: count its live records (from offset start), its damaged
    bytes, and the records missing before or inside it (seq gaps; last: the seq the queue
    had accounted for before this segment, None if unknown).
    Returns (segment, last, torn_tail)."""
    segment = _Segment(number)
    limit = max(q.segment_bytes, SEGMENT_HEADER_SIZE + HEADER_SIZE + MAX_RECORD)
    try:
        with q._file(q._seg_path(number), "rb") as f:
            data = f.read(limit)
    except OSError as exc:
        q.stats["read_errors"] += 1
        _log.exception("%s: cannot read segment %d", exc, q.name, number)
        return segment, last, False
    view = memoryview(data)
    expect = None            # the seq the next record should carry
    header = parse_segment_header(data)
    offset = 0
    if header is not None:
        prev_last, expect = header
        offset = segment.start = SEGMENT_HEADER_SIZE
        if last is not None and prev_last > last:
            _note_lost(q, prev_last - last, "segment(s) before %d missing or cut short"
                            % number)
            q.stats["segments_lost"] += 1
            last = prev_last
    bad_from = None
    while offset < len(data):
        found = q._record_at(view, offset)
        if found is None:
            if bad_from is None:
                bad_from = offset
            offset += 1
            continue
        length, seq = found
        if bad_from is not None:
            _note_corrupt(q, number, bad_from, offset)
            bad_from = None
        if offset >= start:
            q._records += 1
            q._bytes += HEADER_SIZE + length
            segment.records += 1
            q.stats["recovered"] += 1
            if expect is None and last is not None:
                expect = last + 1
            if expect is not None and q._done >= expect:
                expect = q._done + 1      # seqs up to done left the queue anyway
            if expect is not None and seq > expect:
                _note_lost(q, seq - expect, "damaged records in segment %d" % number)
        if expect is None or seq >= expect:
            expect = seq + 1
        if last is None or seq > last:
            last = seq
        if seq >= q._next_seq:
            q._next_seq = seq + 1
        if seq > segment.last:
            segment.last = seq
        offset += HEADER_SIZE + length
        segment.end = offset
    torn = False
    if bad_from is not None:
        _note_corrupt(q, number, bad_from, len(data))
        torn = not _torn_write(view[bad_from:])
    return segment, last, torn


def _note_corrupt(q, number, start, end):
    q.stats["torn"] += 1
    q.stats["corrupt_bytes"] += end - start
    _log.warning("%s: segment %d: skipped %d damaged bytes at %d (torn write?)", q.name,
                 number, end - start, start)


def _read_marker(q):
    """The epoch in the marker file, None if it is missing or unreadable."""
    try:
        with q._file(q._marker_path()) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None
