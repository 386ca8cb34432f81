"""Child of test_auth_power_cut.py: admits signed commands through the app's Auth extension
(its counter on the shim's flash) until killed.

    <interpreter> auth_kill_child.py ROOT SHIM_PATHS LOG FIRST_CTR

Logs (a host file, flushed line by line, written before the next step):
  L ctr          the Auth extension loaded; ctr: the counter it read from flash
  R ctr          the command with counter ctr ran (after admit() stored the counter)
  X ctr reason   the command with counter ctr was refused
Each start first replays every counter from FIRST_CTR - 40 to FIRST_CTR - 1 (commands an
earlier start may have run: each must be refused as a replay), then signs and runs new ones
from FIRST_CTR upwards, forever.
"""
import sys

KEY = bytes(range(9, 41))
DEV = "kill-module"


def _setup(root, shim_paths):
    for path in reversed(shim_paths.split(":")):
        sys.path.insert(0, path)
    sys.path.insert(0, root)
    import shimctl
    shimctl.install_fs(root)


def main(argv):
    root, shim_paths, log_path, first = argv[1], argv[2], argv[3], int(argv[4])
    _setup(root, shim_paths)
    from usr.qframe import Application
    from usr.qframe.builtins.auth import Auth
    from usr.qframe.codecs.authkeys import seal_command
    from usr.qframe.store.authstore import AuthStore
    import ubinascii
    folder = "/usr/.auth-kill"
    store = AuthStore(folder)
    if store.load_keys() is None:
        store.save_keys({"dev": DEV, "keys": {"k1": ubinascii.hexlify(KEY).decode()},
                         "current": "k1"})
    app = Application("kill")
    app.config.merge({"AUTH": {"keys_path": folder}})
    auth = Auth(app=app)
    app.load()
    log = open(log_path, "a")

    def line(*parts):
        log.write(" ".join([str(p) for p in parts]) + "\n")
        log.flush()
    line("L", auth.gate.last_ctr)
    ctr = first - 40
    while True:
        body = seal_command(KEY, DEV, "k1", ctr, '{"id": %d, "cmd": "ping"}' % ctr)
        verdict = auth.admit(body)
        if verdict.ok:
            line("R", ctr)
        else:
            line("X", ctr, verdict.reason)
        ctr += 1


if __name__ == "__main__":
    main(sys.argv)
