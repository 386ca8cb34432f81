"""The persistent queue: order, bound, drop-oldest, restart, torn records, flash full."""
import uos

from checks import fresh_folder
from usr.qframe.store.pqueue import PersistentQueue, encode_record, HEADER_SIZE

_ROOT = "/usr/test_pqueue"


def _fresh(name):
    return fresh_folder(_ROOT, name)


def _payload(index, size=20):
    text = "rec%05d" % index
    return (text + "." * size)[:max(size, len(text))].encode()


def _drain(queue):
    out = []
    record = queue.peek()
    while record is not None:
        out.append(record[1])
        queue.ack(record[0])
        record = queue.peek()
    return out


class _Flash(object):
    """An opener whose writes fail with ENOSPC once `free` bytes have been written."""

    def __init__(self, free=None, tear=False):
        self.free = free
        self.tear = tear

    def __call__(self, path, mode="r"):
        return _File(self, open(path, mode), "w" in mode or "a" in mode)


class _File(object):
    def __init__(self, flash, f, writing):
        self.flash = flash
        self.f = f
        self.writing = writing

    def write(self, data):
        free = self.flash.free
        if free is not None and len(data) > free:
            if self.flash.tear and free > 0:
                self.f.write(data[:free])
                self.f.flush()
            self.flash.free = 0
            raise OSError(28)
        if free is not None:
            self.flash.free = free - len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_fifo_order_peek_walk_and_ack():
    q = PersistentQueue(_fresh("order"))
    seqs = [q.put(_payload(i)) for i in range(10)]
    assert seqs == list(range(1, 11))
    assert len(q) == 10
    walked = []
    record = q.peek()
    while record is not None:
        walked.append(record[0])
        record = q.peek(after=record[0])
    assert walked == seqs
    assert q.ack(4) == 4
    assert q.peek()[1] == _payload(4)
    assert q.peek(after=2)[0] == 5      # already acknowledged seqs are skipped
    assert _drain(q) == [_payload(i) for i in range(4, 10)]
    assert len(q) == 0 and q.pending_bytes() == 0
    assert q.ack(3) == 0


def test_spans_segments_and_deletes_consumed_ones():
    path = _fresh("segments")
    q = PersistentQueue(path, max_bytes=10000, segment_bytes=100)
    for i in range(30):
        q.put(_payload(i))
    assert len([n for n in uos.listdir(path) if n.endswith(".seg")]) > 5
    assert _drain(q) == [_payload(i) for i in range(30)]
    assert len([n for n in uos.listdir(path) if n.endswith(".seg")]) <= 1


def test_bound_drops_oldest_and_counts():
    size = HEADER_SIZE + 20
    q = PersistentQueue(_fresh("bound"), max_bytes=size * 5, segment_bytes=size * 2)
    for i in range(12):
        q.put(_payload(i))
    assert len(q) == 5
    assert q.pending_bytes() <= size * 5
    assert q.stats["dropped"] == 7
    assert _drain(q) == [_payload(i) for i in range(7, 12)]


def test_oversized_record_rejected_and_counted():
    q = PersistentQueue(_fresh("oversized"), max_bytes=64)
    assert q.put(b"x" * 100) is None
    assert q.stats["rejected"] == 1 and len(q) == 0


def test_survives_restart_with_order_epoch_and_seq():
    path = _fresh("restart")
    q = PersistentQueue(path, segment_bytes=64)
    for i in range(8):
        q.put(_payload(i))
    q.ack(3)
    epoch = q.epoch
    q.close()
    again = PersistentQueue(path, segment_bytes=64)
    assert again.epoch == epoch
    assert len(again) == 5
    assert again.stats["recovered"] == 5
    assert again.put(b"after") == 9
    assert _drain(again) == [_payload(i) for i in range(3, 8)] + [b"after"]
    again.close()
    third = PersistentQueue(path)
    assert len(third) == 0 and third.put(b"x") == 10   # seqs never restart


def test_restart_without_close_redelivers_unacked_only():
    path = _fresh("noclose")
    q = PersistentQueue(path)
    for i in range(4):
        q.put(_payload(i))
    q.ack(2)
    again = PersistentQueue(path)  # no close(): like a reset
    assert _drain(again) == [_payload(2), _payload(3)]


def test_torn_tail_record_skipped_and_counted():
    path = _fresh("torn")
    q = PersistentQueue(path)
    for i in range(3):
        q.put(_payload(i))
    q.close()
    segment = [n for n in uos.listdir(path) if n.endswith(".seg")][0]
    with open(path + "/" + segment, "ab") as f:
        f.write(bytes(encode_record(4, _payload(3)))[:HEADER_SIZE + 5])  # half a record
    again = PersistentQueue(path)
    assert again.stats["torn"] == 1
    assert again.stats["corrupt_bytes"] == HEADER_SIZE + 5
    assert len(again) == 3
    again.put(b"new")
    assert _drain(again) == [_payload(0), _payload(1), _payload(2), b"new"]


def test_corrupt_record_in_the_middle_is_skipped_and_the_rest_kept():
    path = _fresh("corrupt")
    q = PersistentQueue(path)
    for i in range(3):
        q.put(_payload(i))
    q.close()
    name = path + "/" + [n for n in uos.listdir(path) if n.endswith(".seg")][0]
    with open(name, "rb") as f:
        data = bytearray(f.read())
    data[HEADER_SIZE + 20 + HEADER_SIZE + 3] ^= 0xFF   # a payload byte of the second record
    with open(name, "wb") as f:
        f.write(data)
    again = PersistentQueue(path)
    assert again.stats["torn"] == 1
    assert _drain(again) == [_payload(0), _payload(2)]


def test_flash_full_keeps_records_in_ram_then_moves_them_back():
    flash = _Flash()
    q = PersistentQueue(_fresh("full"), ram_max_bytes=1000, retry_ms=0, opener=flash)
    q.put(_payload(0))
    flash.free = 0
    q.put(_payload(1))
    q.put(_payload(2))
    assert q.stats["flash_full"] >= 1 and q.stats["ram_put"] >= 1
    assert len(q) == 3
    flash.free = None
    q.put(_payload(3))
    assert q.status()["ram_records"] == 0
    assert _drain(q) == [_payload(i) for i in range(4)]


def test_flash_full_ram_tier_is_bounded_and_counts_drops():
    flash = _Flash(free=0)
    size = 20
    q = PersistentQueue(_fresh("ramfull"), ram_max_bytes=size * 3, retry_ms=0, opener=flash)
    for i in range(6):
        q.put(_payload(i))
    assert len(q) == 3
    assert q.stats["ram_dropped"] == 3 and q.stats["dropped"] == 3
    assert _drain(q) == [_payload(i) for i in range(3, 6)]


def test_write_torn_by_full_flash_never_corrupts_later_records():
    path = _fresh("tornwrite")
    flash = _Flash(tear=True)
    q = PersistentQueue(path, retry_ms=0, opener=flash)
    q.put(_payload(0))
    flash.free = 7                      # the next record is cut after 7 bytes
    q.put(_payload(1))
    flash.free = None
    q.put(_payload(2))
    assert _drain(q) == [_payload(0), _payload(1), _payload(2)]
    q.put(_payload(3))
    again = PersistentQueue(path)
    assert _drain(again) == [_payload(3)]


def test_flash_full_from_the_shim_never_raises_and_nothing_is_lost():
    import shimctl
    path = _fresh("shimfull")
    q = PersistentQueue(path, ram_max_bytes=4096, retry_ms=0)
    q.put(_payload(0))
    shimctl.set_flash_free(HEADER_SIZE + 20 + 5)     # room for one more record, not two
    try:
        for i in range(1, 6):
            q.put(_payload(i))
        assert q.stats["flash_full"] >= 1
        assert q.status()["ram_records"] >= 4
        assert len(q) == 6
    finally:
        shimctl.set_flash_free(None)
    q.put(_payload(6))
    assert q.status()["ram_records"] == 0
    assert _drain(q) == [_payload(i) for i in range(7)]


def test_randomized_against_a_model_with_faults_and_restarts():
    """Random put/peek/ack/rewind, flash faults (some tearing writes) and restarts; every
    peek must return what a plain list model says."""
    _quietly(_model_runs)                           # hundreds of expected flash errors


def _model_runs():
    from usr.qframe.protocols.backoff import Random
    for seed in range(1, 13):
        rng = Random(seed)
        flash = _Flash(tear=seed % 2 == 0)
        path = _fresh("model")

        def reopen():
            return PersistentQueue(path, max_bytes=100000, segment_bytes=200,
                                   ram_max_bytes=100000, retry_ms=0, opener=flash)

        q = reopen()
        model = []
        last_sent = None
        count = 0
        for step in range(250):
            roll = rng.bits16() % 100
            if roll < 45:
                data = ("d%05d" % count).encode() + b"x" * (rng.bits16() % 40)
                count += 1
                model.append((q.put(data), data))
            elif roll < 70:
                record = q.peek(last_sent)
                expected = [m for m in model if last_sent is None or m[0] > last_sent]
                assert record == (expected[0] if expected else None), (seed, step)
                if record is not None:
                    last_sent = record[0]
            elif roll < 85:
                if model:
                    index = rng.bits16() % len(model)
                    q.ack(model[index][0])
                    model = model[index + 1:]
            elif roll < 90:
                last_sent = None
            elif roll < 95:
                flash.free = (0, 10, 30, None, None)[rng.bits16() % 5]
            else:
                flash.free = None
                if q.status()["ram_records"] == 0:     # RAM records do not survive a reset
                    if q.stats["meta_errors"]:
                        q.close()
                    q = reopen()
                    last_sent = None


def _quietly(fn, *args):
    """fn(*args) with logging at CRITICAL (the flash errors it causes are expected)."""
    from usr.qframe import logging
    level = logging._output.level
    logging.basicConfig(level=logging.CRITICAL)
    try:
        return fn(*args)
    finally:
        logging.basicConfig(level=level)


def test_ack_on_a_full_flash_then_reset_never_reuses_a_seq():
    """The head cannot be written after an ack deleted the segment holding the newest seq."""
    path = _fresh("ackfull")
    flash = _Flash()
    q = PersistentQueue(path, segment_bytes=64, retry_ms=0, opener=flash)
    used = [(q.epoch, q.put(_payload(i)), _payload(i)) for i in range(6)]
    flash.free = 0

    def cut():
        q.ack(used[-1][1])
        used.append((q.epoch, q.put(b"ram"), b"ram"))    # deletes the consumed segment
        return PersistentQueue(path, segment_bytes=64, retry_ms=0, opener=flash)  # a reset

    again = _quietly(cut)
    flash.free = None
    seq = again.put(b"new")
    assert (again.epoch, seq) not in [(e, s) for e, s, _ in used]
    assert again.epoch != q.epoch or seq > used[-1][1]


def test_ram_records_lost_in_a_reset_are_counted_and_their_seqs_never_reused():
    import shimctl
    path = _fresh("ramlost")
    q = PersistentQueue(path, ram_max_bytes=4096, retry_ms=0)
    q.put(_payload(0))
    shimctl.set_flash_free(0)       # segments cannot grow; the fixed-size head still fits
    try:
        ram = _quietly(lambda: [q.put(_payload(i)) for i in range(1, 4)])
        assert q.status()["ram_records"] == 3
        again = _quietly(PersistentQueue, path)    # a reset
    finally:
        shimctl.set_flash_free(None)
    assert again.epoch == q.epoch
    assert again.stats["ram_lost"] == 3 and again.stats["epoch_resets"] == 0
    assert again.put(b"new") == ram[-1] + 1
    assert _drain(again) == [_payload(0), b"new"]
    third = PersistentQueue(path)
    assert third.stats["ram_lost"] == 0          # counted once


def test_no_room_even_for_the_head_starts_a_new_epoch_after_a_reset():
    path = _fresh("unproven")
    flash = _Flash()
    q = PersistentQueue(path, retry_ms=0, opener=flash)
    q.put(_payload(0))
    flash.free = 0
    lost_seq = _quietly(q.put, _payload(1))           # RAM, head cannot be written
    assert q.stats["hw_failures"] >= 1
    again = _quietly(PersistentQueue, path, 65536, 4096, 8192, 0, "pqueue", flash)
    flash.free = None
    assert again.epoch != q.epoch and again.stats["epoch_resets"] == 1
    assert lost_seq == 2
    again.put(b"new")                               # seqs restart in a new epoch
    assert _drain(again) == [_payload(0), b"new"]    # the flash record is still delivered
    third = PersistentQueue(path)
    assert third.epoch == again.epoch and third.stats["epoch_resets"] == 0


def test_epoch_kept_when_the_flash_recovers_before_a_reset():
    path = _fresh("recovers")
    flash = _Flash()
    q = PersistentQueue(path, retry_ms=0, opener=flash)
    q.put(_payload(0))
    flash.free = 0
    _quietly(q.put, _payload(1))
    flash.free = None
    q.ack(1)                          # head and marker written again
    again = PersistentQueue(path)
    assert again.epoch == q.epoch and again.stats["epoch_resets"] == 0
    assert _drain(again) == [_payload(1)]


def test_queue_of_the_previous_format_keeps_its_epoch_and_records():
    import ujson
    path = _fresh("oldformat")
    q = PersistentQueue(path)
    for i in range(3):
        q.put(_payload(i))
    q.ack(1)
    for name in uos.listdir(path):
        if not name.endswith(".seg"):
            uos.remove(path + "/" + name)
    with open(path + "/head1.json", "w") as f:    # what the previous version wrote
        f.write(ujson.dumps({"n": 1, "seg": 0, "off": 0, "acked": 1, "epoch": 1234}))
    again = PersistentQueue(path)
    assert again.epoch == 1234 and again.stats["epoch_resets"] == 0
    assert again.put(b"new") == 4
    assert _drain(again) == [_payload(1), _payload(2), b"new"]
    assert PersistentQueue(path).epoch == 1234


def test_opening_code_is_unloaded_once_the_queue_is_open():
    """Recovery runs at open only (store/pqueue_open.py): the open queue keeps none of it."""
    try:
        import usys as sys_
    except ImportError:
        import sys as sys_
    from usr.qframe import store
    path = _fresh("unload")
    queue = PersistentQueue(path, max_bytes=4096)
    queue.put(b"kept")
    queue.close()
    queue = PersistentQueue(path, max_bytes=4096)       # recovers the record
    assert "usr.qframe.store.pqueue_open" not in sys_.modules
    assert not hasattr(store, "pqueue_open")
    for name in ("_open", "_scan", "_resume", "_read_meta"):     # not kept by the queue either
        assert not hasattr(PersistentQueue, name), name
    assert queue.peek()[1] == b"kept"
