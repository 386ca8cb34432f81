"""Install a module's command key (make provision PORT=... MASTER=file).

    python -m tools.device.provision --port PORT --master-file FILE [--dev ID] [--kid k1]
                                     [--keys-path /usr/.auth]
    python -m tools.device.provision --master-file FILE --dev ID --print   (the HES's copy)

The module's key is derived from the fleet master key and its identity
(`qf1 device key` HMAC, qframe/codecs/authkeys.py's derive_key): the identity is the modem's
IMEI read over the REPL (or --dev, when TCP_SERVER.device_id names the module to the HES).
Only the derived key reaches the module, as the key file qframe/store/authstore.py reads
(AUTH.keys_path, default /usr/.auth; never dev.json; deploy and OTA packages leave it alone):
a stolen module gives away its own key, never the master. The command counter is kept, so
commands recorded before a re-provisioning stay refused. The master file holds 32 or more
random bytes as hex (`python -c "import os; print(os.urandom(32).hex())" > master.hex`);
empty, short and published keys are refused.
"""
import argparse
import sys

from tools.simulators.hes_auth import KID, derive_key, key_file_line, published_key_problem

IMEI_SNIPPET = "import modem\n_qd_say(modem.getDevImei())"


def read_master(path):
    """The master key in path (hex); SystemExit with one line when it must not be used."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError as exc:
        raise SystemExit("provision: cannot read %s (%s)" % (path, exc))
    problem = published_key_problem(text)
    if problem:
        raise SystemExit("provision: %s: %s" % (path, problem))
    return bytes.fromhex(text)


def key_file(dev, key, kid=KID):
    """The key file's text for dev (one slot, generation 1)."""
    return key_file_line(1, {"dev": dev, "keys": {kid: key.hex()}, "current": kid,
                             "pending": None, "pins": []})


def provision(port, master, dev=None, kid=KID, keys_path="/usr/.auth"):
    """Install the derived key on the module at port; (dev, key id)."""
    from tools.device.repl_session import Device
    with Device(port) as device:
        if not dev:
            dev = device.exec(IMEI_SNIPPET).strip()
        if not dev:
            raise SystemExit("provision: the module reports no IMEI: pass --dev")
        key = derive_key(master, dev)
        device.exec("import uos\ntry:\n uos.mkdir(%r)\nexcept OSError:\n pass" % keys_path)
        device.remove([keys_path + "/keys.1"])
        device.write_file(keys_path + "/keys.0", key_file(dev, key, kid).encode())
    return dev, kid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", help="the module's REPL port")
    parser.add_argument("--master-file", required=True, help="the fleet master key (hex)")
    parser.add_argument("--dev", help="the module's identity (default: its IMEI)")
    parser.add_argument("--kid", default=KID)
    parser.add_argument("--keys-path", default="/usr/.auth")
    parser.add_argument("--print", action="store_true",
                        help="print the derived key for --dev (the HES side) and exit")
    args = parser.parse_args(argv)
    master = read_master(args.master_file)
    if args.print:
        if not args.dev:
            parser.error("--print needs --dev")
        print(derive_key(master, args.dev).hex())
        return 0
    if not args.port:
        parser.error("--port is required (or --print)")
    dev, kid = provision(args.port, master, args.dev, args.kid, args.keys_path)
    print("provision: %s has command key %s in %s (restart the app to use it)" % (
        dev, kid, args.keys_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
