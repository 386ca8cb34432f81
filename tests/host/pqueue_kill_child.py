"""Child of test_pqueue_kill.py: drives a PersistentQueue on a nearly full shim flash until killed.

    <interpreter> pqueue_kill_child.py ROOT SHIM_PATHS LOG SEED run|drain

Runs on CPython and MicroPython. Every number that leaves the queue goes to LOG (a host file,
one line per event, written before the next step) so the parent can check it after a SIGKILL:
  O epoch lost           the queue opened (lost: its `ram_lost`, `corrupt_dropped` + drop counters)
  P epoch seq payload    put() returned seq for payload (accepted)
  S epoch seq payload    peek() handed the record out (sent to the "HES")
  A seq                  ack(seq) (the "HES" stored everything up to seq)
`run`: random put / send / ack forever with the flash quota reset to a few hundred bytes now
and then (another writer filling the flash). `drain`: no quota, send and ack all, print DONE.
"""
import sys


def _setup(root, shim_paths):
    for path in reversed(shim_paths.split(":")):
        sys.path.insert(0, path)
    sys.path.insert(0, root)
    import shimctl
    shimctl.install_fs(root)
    return shimctl


class _Log(object):
    def __init__(self, path):
        self.f = open(path, "a")

    def line(self, *parts):
        self.f.write(" ".join([str(p) for p in parts]) + "\n")
        self.f.flush()


def _counted(q):
    s = q.stats
    return s.get("ram_lost", 0) + s["dropped"] + s.get("corrupt_dropped", 0)


def main(argv):
    root, shim_paths, log_path, seed, mode = argv[1:6]
    shimctl = _setup(root, shim_paths)
    from usr.qframe import logging
    logging.basicConfig(level=logging.CRITICAL)
    from usr.qframe.store.pqueue import PersistentQueue
    from usr.qframe.protocols.backoff import Random
    rng = Random(int(seed))
    log = _Log(log_path)

    def reopen():
        return PersistentQueue("/usr/queue/kill", max_bytes=1 << 20, segment_bytes=160,
                               ram_max_bytes=1 << 20, retry_ms=0)

    q = reopen()
    log.line("O", q.epoch, _counted(q))
    reported = _counted(q)
    last_sent = None
    if mode == "drain":
        record = q.peek()
        while record is not None:
            log.line("S", q.epoch, record[0], record[1].decode())
            q.ack(record[0])
            record = q.peek()
        log.line("D", q.epoch, _counted(q) - reported)
        print("DONE")
        return
    count = 0
    while True:
        roll = rng.bits16() % 100
        if roll < 8:
            shimctl.set_flash_free(rng.bits16() % 400)
        elif roll < 55 and len(q) < 60:
            payload = "s%s-%d" % (seed, count)
            count += 1
            seq = q.put(payload.encode())
            log.line("P", q.epoch, seq, payload)
        elif roll < 85:
            record = q.peek(last_sent)
            if record is not None:
                log.line("S", q.epoch, record[0], record[1].decode())
                last_sent = record[0]
        elif last_sent is not None:
            q.ack(last_sent)
            log.line("A", last_sent)
        if _counted(q) != reported:
            log.line("D", q.epoch, _counted(q) - reported)
            reported = _counted(q)


main(sys.argv)
