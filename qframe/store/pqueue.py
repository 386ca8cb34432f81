"""A bounded FIFO of byte records on flash that survives restarts, torn writes and a full flash.

    q = PersistentQueue("/usr/queue/uplink", max_bytes=65536)
    seq = q.put(b"payload")          # accepted: kept until acknowledged (or dropped as oldest)
    rec = q.peek()                   # (seq, data) of the oldest record, None if empty
    rec = q.peek(after=seq)          # the first record newer than seq (walk without removing)
    q.ack(seq)                       # delivery confirmed: forget every record up to seq

Layout: numbered segment files `NNNNNNNN.seg` holding records
`A7 | length (2, big endian) | seq (4, big endian) | CRC-16 (2)` + payload, where the CRC
(CRC-16/X.25) covers length, seq and payload, after a segment header
`A8 | seq before it (4) | its first seq (4) | CRC-16 (2)`; `head0.json`/`head1.json` with the
acknowledged position, `done` (every seq up to it acknowledged or dropped), the queue's epoch (a
random id, so a receiver can tell a queue whose sequence numbers restart from one it has seen
before), `hw`, the seq high-water mark, and `last`, the newest seq on flash, followed by the
CRC-16 of that JSON; and `epoch`, a marker holding the epoch. The two head files are written
alternately with a counter (no rename needed), so a torn write spoils only the older copy; they
are padded to a fixed size, so rewriting one needs no more flash than it has.

Damage is a normal input: opening never raises on what the files hold. A head whose checksum,
types or ranges are wrong is ignored (`head_repaired`); records lost to damage are found by seq
gaps (inside a segment, against the next segment's header, against the head's `last`) and
counted (`corrupt_dropped`; `segments_lost` for segments gone or cut short). When a head is
damaged or missing, or the newest segment ends in damage a torn write cannot leave, no head can
prove the high-water mark: a new epoch. A segment is deleted only once both heads point past
it. Files of the previous format (no segment header, no head checksum) open as they are.

Sequence numbers are never reused within an epoch, whatever fails when: a seq that may vanish
from flash (a record kept in RAM, a segment about to be deleted) is first covered by `hw` in a
head on flash; opening continues after max(hw, newest record, acked). If that head cannot be
written, the `epoch` marker is removed (removing needs no room) and the next open starts a new
epoch (`epoch_resets`); a later head write puts the marker back. RAM records lost in a reset are
counted on the next open (`ram_lost`: the seqs between the newest record and `hw`). A queue
written before `hw` existed opens with its epoch and is migrated on the spot.

* Appends go to the newest segment; a segment is deleted once every record in it is gone, so
  flash holds at most `max_bytes` of live records plus one partly consumed segment.
* Opening scans every segment: a record with a bad header or CRC (a write torn by a reset) is
  skipped up to the next valid record and counted (`torn`, `corrupt_bytes`, and the records
  missing in `corrupt_dropped`); appends always go to a new segment, so nothing is ever written
  after damaged bytes.
* When adding a record would pass `max_bytes`, the oldest records are dropped (`dropped`, logged).
* A write that fails (OSError, e.g. ENOSPC on a full flash) never raises: the record is kept in a
  RAM tier bounded by `ram_max_bytes` (`flash_errors`, `ram_put`), later records queue behind it,
  and the RAM tier moves to flash once a write succeeds again (retried every `retry_ms`).
* The head is rewritten on ack; if that write fails the records are
  delivered again after a restart: delivery is at-least-once, receivers dedupe on (epoch, seq).
* `hw_failures` counts heads that could not cover a seq (the marker was removed then).

`opener` replaces the built-in `open` (tests inject flash faults with it). Opening and recovery
live in store/pqueue_open.py, imported to open a queue and forgotten after (startup-only code).
"""
import uos
import ujson
import utime

from ..logging import getLogger
from ..codecs.crc import fcs16 as crc16
from ..core.lazy import forget
from ..threading import Lock

_log = getLogger("pqueue")

MAGIC = 0xA7
HEADER_SIZE = 9
MAX_RECORD = 0xFFFF
SEGMENT_MAGIC = 0xA8
SEGMENT_HEADER_SIZE = 11
_SUFFIX = ".seg"
_ENOSPC = 28
_ENOENT = 2
_HEAD_BYTES = 224
_SEQ_MAX = 0xFFFFFFFF
# head keys: (least, most); "n" is required, the others default to 0 (older heads lack some)


def encode_record(seq, data):
    """The on-flash bytes of one record."""
    size = len(data)
    record = bytearray((MAGIC, size >> 8, size & 0xFF, (seq >> 24) & 0xFF, (seq >> 16) & 0xFF,
                        (seq >> 8) & 0xFF, seq & 0xFF, 0, 0))
    crc = crc16(memoryview(record)[1:7])
    crc = crc16(data, crc) ^ 0xFFFF
    record[7] = crc >> 8
    record[8] = crc & 0xFF
    record.extend(data)
    return record


def parse_header(header):
    """(length, seq, crc) of a record header, or None if it cannot start a record."""
    if len(header) < HEADER_SIZE or header[0] != MAGIC:
        return None
    length = (header[1] << 8) | header[2]
    seq = (header[3] << 24) | (header[4] << 16) | (header[5] << 8) | header[6]
    return length, seq, (header[7] << 8) | header[8]


def encode_segment_header(prev_last, first):
    """The bytes a segment starts with: the newest seq written before it and its first seq."""
    header = bytearray(SEGMENT_HEADER_SIZE)
    header[0] = SEGMENT_MAGIC
    for at, value in ((1, prev_last), (5, first)):
        for i in range(4):
            header[at + i] = (value >> (24 - 8 * i)) & 0xFF
    crc = crc16(memoryview(header)[:9]) ^ 0xFFFF
    header[9] = crc >> 8
    header[10] = crc & 0xFF
    return header


def parse_segment_header(data):
    """(prev_last, first) of a valid segment header at the start of data, else None."""
    if len(data) < SEGMENT_HEADER_SIZE or data[0] != SEGMENT_MAGIC:
        return None
    if crc16(memoryview(data)[:9]) ^ 0xFFFF != (data[9] << 8) | data[10]:
        return None
    return ((data[1] << 24) | (data[2] << 16) | (data[3] << 8) | data[4],
            (data[5] << 24) | (data[6] << 16) | (data[7] << 8) | data[8])


def record_ok(header, payload):
    crc = crc16(memoryview(header)[1:7])
    crc = crc16(payload, crc) ^ 0xFFFF
    return crc == ((header[7] << 8) | header[8])


def _errno(exc):
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1


class _Segment(object):
    """One segment file: its number, where its records start and where its valid ones end."""

    def __init__(self, number, end=0):
        self.number = number
        self.start = 0      # after the segment header (0: a segment of the previous format)
        self.end = end
        self.records = 0
        self.last = 0       # highest seq written in it


class PersistentQueue(object):
    """See the module docstring. Every method is safe to call from any thread."""

    def __init__(self, path, max_bytes=65536, segment_bytes=4096, ram_max_bytes=8192,
                 retry_ms=5000, name="pqueue", opener=None):
        self._file = opener or open
        self.path = path.rstrip("/")
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.ram_max_bytes = ram_max_bytes
        self.retry_ms = retry_ms
        self.name = name
        self.stats = {"put": 0, "acked": 0, "dropped": 0, "rejected": 0, "flash_errors": 0,
                      "flash_full": 0, "ram_put": 0, "ram_dropped": 0, "recovered": 0, "torn": 0,
                      "corrupt_bytes": 0, "meta_errors": 0, "read_errors": 0, "ram_lost": 0,
                      "hw_failures": 0, "epoch_resets": 0, "corrupt_dropped": 0,
                      "segments_lost": 0, "head_repaired": 0}
        self.epoch = 0
        self._lock = Lock()
        self._reset_state()
        self._last_drop_log = None
        self._meta_count = 0
        self._failing = False
        self._lost_to = 0       # seqs up to this are counted as lost in a reset
        self._proven = False    # the epoch marker is on flash: the head's hw covers every seq
        try:
            from . import pqueue_open       # startup-only: forgotten once the queue is open
            pqueue_open.open_queue(self)
        except Exception as exc:     # a last resort: the queue works, empty, in a new epoch
            self.stats["read_errors"] += 1
            _log.exception("%s: cannot open %s: starting empty", exc, self.name, self.path)
            self._reset_state()
            self.epoch = self._new_epoch()
            self._remove_marker()
            self._write_meta()
        forget(__name__ + "_open")

    def _reset_state(self):
        self._segments = []     # oldest first; the last one is the append target when open
        self._head_offset = 0   # first live byte in self._segments[0]
        self._records = 0       # live records on flash
        self._bytes = 0         # live bytes on flash (headers included)
        self._acked = 0         # highest acknowledged seq
        self._done = 0          # every seq up to this was acknowledged or dropped
        self._next_seq = 1
        self._flash_last = 0    # newest seq written to flash (a new segment's header holds it)
        self._append_ok = False  # False: the next append starts a new segment
        self._ram = []          # [(seq, data)] newer than everything on flash
        self._ram_bytes = 0
        self._retry_at = None   # ticks_ms before which flash is not tried again
        self._cursor = None     # [segment index, offset, seq of the record there] for peek
        self._unlinked = []     # segments out of the queue, deleted once no head points at them
        self._unlinked_at = 0   # the head count when the first of them left
        self._hw = 0            # seq high-water mark in the newest head on flash

    # ------------------------------------------------------------------ opening and recovery
    def _seg_path(self, number):
        return "%s/%08d%s" % (self.path, number, _SUFFIX)

    def _meta_path(self, which):
        return "%s/head%d.json" % (self.path, which)

    def _marker_path(self):
        return self.path + "/epoch"

    def _new_epoch(self):
        try:
            raw = uos.urandom(4)
            value = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) & 0x7FFFFFFF
        except (AttributeError, OSError):
            value = utime.ticks_us() & 0x7FFFFFFF
        return value or 1

    def _record_at(self, view, offset):
        parsed = parse_header(view[offset:offset + HEADER_SIZE])
        if parsed is None:
            return None
        length, seq, _crc = parsed
        end = offset + HEADER_SIZE + length
        if end > len(view):
            return None
        if not record_ok(view[offset:offset + HEADER_SIZE], view[offset + HEADER_SIZE:end]):
            return None
        return length, seq

    # ------------------------------------------------------------------ public API
    def put(self, data):
        """Accept a record; return its seq, or None if it is larger than the queue can hold."""
        size = HEADER_SIZE + len(data)
        if len(data) > MAX_RECORD or size > self.max_bytes:
            self.stats["rejected"] += 1
            _log.error("%s: record of %d bytes rejected (max %d)", self.name, len(data),
                       min(MAX_RECORD, self.max_bytes - HEADER_SIZE))
            return None
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            self.stats["put"] += 1
            if self._ram:
                self._migrate()
            if self._ram or not self._append_to_flash(seq, data):
                self._put_ram(seq, bytes(data))
                self._cover(seq)      # before seq leaves: a reset must not give it out again
            return seq

    def peek(self, after=None):
        """(seq, data) of the first record with seq > after (the oldest if after is None)."""
        with self._lock:
            if after is None or after < self._acked:
                after = self._acked
            record = self._peek_flash(after)
            if record is not None:
                return record
            for item in self._ram:
                if item[0] > after:
                    return item
            return None

    def ack(self, seq):
        """Forget every record with seq <= seq (delivery confirmed); return how many went."""
        with self._lock:
            if seq <= self._acked:
                return 0
            if seq > self._done:
                self._done = seq
            removed = 0
            while self._records:
                head = self._head_record()
                if head is None or head[1] > seq:
                    break
                self._advance_head(head[0])
                removed += 1
            while self._ram and self._ram[0][0] <= seq:
                self._ram_bytes -= len(self._ram.pop(0)[1])
                removed += 1
            self._acked = seq
            self.stats["acked"] += removed
            self._write_meta()
            self._release()
            if self._ram:
                self._retry_at = None
                self._migrate()
            return removed

    def __len__(self):
        return self._records + len(self._ram)

    def pending_bytes(self):
        return self._bytes + self._ram_bytes

    def last_seq(self):
        """The seq given to the newest record (0 if none yet)."""
        return self._next_seq - 1

    def status(self):
        report = dict(self.stats)
        report["records"] = len(self)
        report["bytes"] = self.pending_bytes()
        report["ram_records"] = len(self._ram)
        return report

    def close(self):
        with self._lock:
            self._write_meta()
            self._release()

    # ------------------------------------------------------------------ flash writes
    def _append_to_flash(self, seq, data):
        """Write one record after making room; False (counted, logged) if the write failed."""
        if self._retry_at is not None and utime.ticks_diff(self._retry_at, utime.ticks_ms()) > 0:
            return False
        self._retry_at = None
        size = HEADER_SIZE + len(data)
        while self._records and self._bytes + size > self.max_bytes:
            head = self._head_record()
            if head is None:
                break
            if head[1] > self._done:
                self._done = head[1]
            self._advance_head(head[0])
            self._count_drop(head[1])
        tail = self._segments[-1]
        if not self._append_ok or (tail.end and tail.end + size > self.segment_bytes):
            tail = self._new_segment()
        self._release()           # dropped segments leave before the write needs their room
        record = encode_record(seq, data)
        if tail.end == 0:         # a new segment starts with its header
            record = encode_segment_header(self._flash_last, seq) + record
        try:
            with self._file(self._seg_path(tail.number), "ab") as f:   # closed: committed
                written = f.write(record)
            if written is not None and written != len(record):
                raise OSError(_ENOSPC)
        except OSError as exc:
            self._flash_failed(exc)
            return False
        if self._failing:
            self._failing = False
            _log.info("%s: flash writable again after %d failed writes", self.name,
                      self.stats["flash_errors"])
        if tail.end == 0:
            tail.start = tail.end = SEGMENT_HEADER_SIZE
        tail.end += size
        tail.records += 1
        tail.last = seq
        self._flash_last = seq
        self._records += 1
        self._bytes += size
        return True

    def _new_segment(self):
        """Start a new tail segment; forget an empty tail and a fully consumed head."""
        number = self._segments[-1].number + 1
        if self._segments[-1].records == 0:
            self._delete_segment(self._segments.pop())
            if not self._segments:
                self._head_offset = 0
        segment = _Segment(number)
        self._segments.append(segment)
        while len(self._segments) > 1 and self._head_offset >= self._segments[0].end:
            self._drop_segment()
        self._append_ok = True
        return segment

    def _flash_failed(self, exc):
        self.stats["flash_errors"] += 1
        if _errno(exc) == _ENOSPC:
            self.stats["flash_full"] += 1
        if not self._failing:       # one line per incident; every failure is counted
            self._failing = True
            _log.error("%s: flash write failed (%s): keeping records in RAM, retrying every %d "
                       "ms", self.name, exc, self.retry_ms)
        self._append_ok = False  # the tail may hold a torn record: never append after it
        self._retry_at = utime.ticks_add(utime.ticks_ms(), self.retry_ms)

    def _put_ram(self, seq, data):
        self.stats["ram_put"] += 1
        self._ram.append((seq, data))
        self._ram_bytes += len(data)
        while self._ram_bytes > self.ram_max_bytes and len(self._ram) > 1:
            old = self._ram.pop(0)
            self._ram_bytes -= len(old[1])
            self.stats["ram_dropped"] += 1
            self._count_drop(old[0])

    def _migrate(self):
        """Move RAM records to flash, oldest first, while writes succeed."""
        while self._ram:
            seq, data = self._ram[0]
            if not self._append_to_flash(seq, data):
                return
            self._ram.pop(0)
            self._ram_bytes -= len(data)

    def _count_drop(self, seq):
        self.stats["dropped"] += 1
        now = utime.ticks_ms()
        if self._last_drop_log is None or utime.ticks_diff(now, self._last_drop_log) >= 1000:
            self._last_drop_log = now
            _log.warning("%s: full, dropped the oldest record (seq %d; %d dropped so far)",
                         self.name, seq, self.stats["dropped"])

    def _write_meta(self):
        """Write the head (position, epoch, seq high-water mark); True if it reached flash.

        The head is padded to a fixed size, so rewriting it needs no more room than it has."""
        count = self._meta_count + 1
        hw = self._next_seq - 1
        meta = {"n": count, "seg": self._segments[0].number if self._segments else 0,
                "off": self._head_offset, "acked": self._acked, "epoch": self.epoch, "hw": hw,
                "lost_to": self._lost_to, "done": self._done, "last": self._flash_last}
        text = ujson.dumps(meta)
        text = "%s %d" % (text, crc16(text.encode()) ^ 0xFFFF)
        try:
            with self._file(self._meta_path(count & 1), "w") as f:
                f.write(text + " " * (_HEAD_BYTES - len(text)))
            self._meta_count = count  # a failed write is retried on the same file: the other
        except OSError as exc:        # one keeps the last good head
            self.stats["meta_errors"] += 1
            _log.warning("%s: cannot write head (%s): records may be delivered twice after a "
                         "restart", self.name, exc)
            return False
        self._hw = hw
        if not self._proven:
            try:
                with self._file(self._marker_path(), "w") as f:
                    f.write("%d" % self.epoch)
                self._proven = True
                if self.stats["hw_failures"]:
                        _log.info("%s: seq high-water mark saved again (epoch %d kept)",
                              self.name, self.epoch)
            except OSError as exc:
                self.stats["meta_errors"] += 1
                _log.warning("%s: cannot write the epoch marker (%s)", self.name, exc)
        return True

    def _remove_marker(self):
        self._proven = False
        try:
            uos.remove(self._marker_path())
        except OSError as exc:
            if _errno(exc) != _ENOENT:
                self.stats["meta_errors"] += 1
                _log.error("%s: cannot remove the epoch marker (%s)", self.name, exc)

    def _cover(self, seq):
        """Make sure the head on flash has a high-water mark >= seq before seq may be lost from
        flash (a RAM record, a segment about to be deleted). If the head cannot be written,
        remove the epoch marker (removing needs no room): the next open starts a new epoch."""
        if seq <= self._hw:
            return
        if not self._proven and self._retry_at is not None \
                and utime.ticks_diff(self._retry_at, utime.ticks_ms()) > 0:
            return                    # already marked unproven; flash retried every retry_ms
        if self._write_meta():
            return
        self.stats["hw_failures"] += 1
        if self._proven:
            _log.error("%s: cannot save the seq high-water mark: a reset before it is saved "
                       "starts a new epoch", self.name)
            self._remove_marker()

    def _delete_segment(self, segment):
        self._cover(segment.last)
        self._remove(segment.number)

    def _release(self):
        """Delete the segments that left the queue once both head files were written since
        (so neither head points at a deleted segment: either may be the one a reset keeps)."""
        if not self._unlinked:
            return
        while self._meta_count < self._unlinked_at + 2 and self._write_meta():
            pass
        self._cover(max([segment.last for segment in self._unlinked]))
        for segment in self._unlinked:
            self._remove(segment.number)
        self._unlinked = []

    def _remove(self, number):
        try:
            uos.remove(self._seg_path(number))
        except OSError:
            pass

    # ------------------------------------------------------------------ flash reads
    def _read_at(self, index, offset):
        """(size, seq, data) of the valid record at (segment index, offset), else None."""
        segment = self._segments[index]
        if offset >= segment.end:
            return None
        try:
            with self._file(self._seg_path(segment.number), "rb") as f:
                f.seek(offset)
                header = f.read(HEADER_SIZE)
                parsed = parse_header(header)
                if parsed is None:
                    return None          # damaged bytes: the caller resynchronises
                length, seq, _crc = parsed
                payload = f.read(length)
        except OSError as exc:
            self.stats["read_errors"] += 1
            _log.warning("%s: cannot read segment %d at %d (%s)", self.name, segment.number,
                         offset, exc)
            return None
        if len(payload) != length or not record_ok(header, payload):
            return None
        return HEADER_SIZE + length, seq, payload

    def _next_valid(self, index, offset):
        """The first valid record at or after (index, offset): (index, offset, size, seq, data)."""
        while index < len(self._segments):
            segment = self._segments[index]
            if offset < segment.start:
                offset = segment.start
            while offset < segment.end:
                found = self._read_at(index, offset)
                if found is not None:
                    return index, offset, found[0], found[1], found[2]
                offset = self._resync(index, offset)
            index += 1
            offset = 0
        return None

    def _resync(self, index, offset):
        """Offset of the next valid record after a damaged one (segment end if none)."""
        segment = self._segments[index]
        try:
            with self._file(self._seg_path(segment.number), "rb") as f:
                data = f.read()
        except OSError:
            return segment.end
        view = memoryview(data)
        for candidate in range(offset + 1, min(segment.end, len(data))):
            if data[candidate] == MAGIC and self._record_at(view, candidate) is not None:
                return candidate
        return segment.end

    def _head_record(self):
        found = self._next_valid(0, self._head_offset)
        if found is None:
            self._records = 0
            self._bytes = 0
            return None
        index, offset, size, seq, _data = found
        for _ in range(index):
            self._drop_segment()
        self._head_offset = offset
        return size, seq

    def _advance_head(self, size):
        self._records -= 1
        self._bytes -= size
        self._head_offset += size
        head = self._segments[0]
        if self._head_offset >= head.end and len(self._segments) > 1:
            self._drop_segment()

    def _drop_segment(self):
        old = self._segments.pop(0)
        self._head_offset = self._segments[0].start if self._segments else 0
        if not self._unlinked:
            self._unlinked_at = self._meta_count
        self._unlinked.append(old)
        if self._cursor is not None:
            self._cursor[0] -= 1
            if self._cursor[0] < 0:
                self._cursor = None
        if self._ram:
            self._retry_at = None

    def _peek_flash(self, after):
        if not self._records:
            return None
        cursor = self._cursor
        if cursor is not None and cursor[2] == after:
            index, offset = cursor[0], cursor[1]
        else:
            index, offset = 0, self._head_offset
        while True:
            found = self._next_valid(index, offset)
            if found is None:
                return None
            index, offset, size, seq, data = found
            offset += size
            if seq > after:
                self._cursor = [index, offset, seq]
                return seq, data
