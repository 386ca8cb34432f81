"""The flash queue opens whatever its files hold, keeps what it can prove and counts what it lost.

Fixed cases for each kind of damage, then a seeded pass of the corruption fuzzer
(pqueue_corrupt.py; `make fuzz` runs it long as the `pqueue_files` target).
"""
import uos

from checks import fresh_folder
from usr.qframe.store.pqueue import PersistentQueue
import pqueue_corrupt

_ROOT = "/usr/test_pqueue_corruption"


def _quiet(fn, *args):
    from usr.qframe import logging
    level = logging._output.level
    logging.basicConfig(level=logging.CRITICAL)     # the damage is logged as errors: expected
    try:
        return fn(*args)
    finally:
        logging.basicConfig(level=level)


def _filled(name, count=12, segment_bytes=80):
    path = fresh_folder(_ROOT, name)
    q = PersistentQueue(path, segment_bytes=segment_bytes)
    for i in range(count):
        q.put(("rec%03d" % i).encode() + b"." * 20)
    q.close()
    return path, q


def _drain(q):
    out = []
    record = q.peek()
    while record is not None:
        out.append(record[1][:6])
        q.ack(record[0])
        record = q.peek()
    return out


def _heads(path):
    return [path + "/" + n for n in sorted(uos.listdir(path)) if n.startswith("head")]


def _segments(path):
    return [path + "/" + n for n in sorted(uos.listdir(path)) if n.endswith(".seg")]


def test_wrong_typed_head_values_open_keep_the_records_and_start_a_new_epoch():
    for bad in ('"x"', "1e400", "[1]", "null", "-3", "1.5", "true"):
        path, q = _filled("types")
        for head in _heads(path):             # both heads, written as plain JSON
            with open(head, "w") as f:
                f.write('{"n": 9, "seg": 0, "off": 0, "acked": 0, "epoch": %d, "hw": %s}'
                        % (q.epoch, bad))
        again = _quiet(PersistentQueue, path, 65536, 80)
        assert again.stats["head_repaired"] == 2, bad
        assert again.epoch != q.epoch and again.stats["epoch_resets"] == 1, bad
        assert _drain(again) == [("rec%03d" % i).encode() for i in range(12)], bad
        assert again.put(b"next") == 13, bad


def test_a_bit_flip_in_the_newest_head_is_caught_and_nothing_is_lost():
    path, q = _filled("flip")
    q2 = PersistentQueue(path, segment_bytes=80)
    q2.ack(5)
    q2.close()
    newest = max(_heads(path), key=lambda p: int(open(p).read().split('"n": ')[1].split(",")[0]))
    with open(newest, "rb") as f:
        raw = f.read()
    data = bytearray(raw)
    data[raw.find(b'"seg": ') + 7] ^= 0x08          # "seg": 0 -> 8: would skip segments
    with open(newest, "wb") as f:
        f.write(data)
    again = _quiet(PersistentQueue, path, 65536, 80)
    assert again.stats["head_repaired"] == 1
    assert again.epoch != q.epoch                     # the older head's hw may be stale
    delivered = _drain(again)
    assert [("rec%03d" % i).encode() for i in range(5, 12)] == delivered[-7:]


def test_a_deleted_or_emptied_middle_segment_is_counted():
    for how in ("delete", "empty"):
        path, q = _filled("middle", count=12, segment_bytes=80)
        segments = _segments(path)
        assert len(segments) >= 4
        victim = segments[len(segments) // 2]
        with open(victim, "rb") as f:
            inside = f.read().count(b"rec")
        if how == "delete":
            uos.remove(victim)
        else:
            open(victim, "w").close()
        again = _quiet(PersistentQueue, path, 65536, 80)
        delivered = _drain(again)
        assert len(delivered) == 12 - inside, how
        assert again.stats["corrupt_dropped"] == inside and again.stats["segments_lost"] == 1
        assert again.epoch == q.epoch                 # later records prove the seqs: kept
        assert again.put(b"next") == 13


def test_a_deleted_newest_segment_is_counted_and_its_seqs_never_reused():
    path, q = _filled("tail", count=12, segment_bytes=80)
    victim = _segments(path)[-1]
    with open(victim, "rb") as f:
        inside = f.read().count(b"rec")
    uos.remove(victim)
    again = _quiet(PersistentQueue, path, 65536, 80)
    assert len(_drain(again)) == 12 - inside
    assert again.stats["corrupt_dropped"] == inside
    assert again.epoch != q.epoch or again.put(b"x") > 12


def test_a_damaged_record_inside_a_segment_is_counted():
    path, q = _filled("record", count=6, segment_bytes=4096)
    segment = _segments(path)[0]
    with open(segment, "rb") as f:
        raw = f.read()
    data = bytearray(raw)
    data[raw.find(b"rec002") + 2] ^= 0x01
    with open(segment, "wb") as f:
        f.write(data)
    again = _quiet(PersistentQueue, path)
    assert _drain(again) == [b"rec000", b"rec001", b"rec003", b"rec004", b"rec005"]
    assert again.stats["corrupt_dropped"] == 1 and again.stats["torn"] == 1


def test_previous_format_segments_and_heads_still_open():
    """Segments without a segment header and a head without a checksum (this version's
    predecessor) keep their records and their epoch."""
    from usr.qframe.store.pqueue import encode_record
    path = fresh_folder(_ROOT, "previous")
    with open(path + "/00000000.seg", "wb") as f:
        for seq in (3, 4, 5):
            f.write(encode_record(seq, ("old%d" % seq).encode()))
    with open(path + "/head0.json", "w") as f:
        f.write('{"n": 4, "seg": 0, "off": 0, "acked": 2, "epoch": 77, "hw": 5, "lost_to": 5}'
                + " " * 60)
    with open(path + "/head1.json", "w") as f:
        f.write('{"n": 3, "seg": 0, "off": 0, "acked": 2, "epoch": 77, "hw": 5, "lost_to": 5}'
                + " " * 60)
    with open(path + "/epoch", "w") as f:
        f.write("77")
    q = PersistentQueue(path)
    assert q.epoch == 77 and q.stats["epoch_resets"] == 0 and q.stats["head_repaired"] == 0
    assert _drain(q) == [b"old3", b"old4", b"old5"]
    assert q.put(b"new") == 6


def test_corruption_fuzzer_seeded_pass():
    import usys
    micropython = usys.implementation.name == "micropython"
    seeds = range(1, 4) if micropython else range(1, 21)
    folder = fresh_folder(_ROOT, "fuzz")
    total = _quiet(pqueue_corrupt.run_cases, folder, seeds)
    assert total["cases"] == len(seeds) * (len(pqueue_corrupt.KINDS) + 1)
    assert total["missing"] > 0                        # the damage did cost records
    assert total["uncounted"] == 0 and total["overcounted"] == 0, total
