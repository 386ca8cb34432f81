"""The authenticated command envelope, the command gate and its store (both interpreters)."""
import ujson
import uos

from checks import fresh_folder, raises
from usr.qframe.codecs import authkeys, cmdauth
from usr.qframe.codecs.hmac256 import hmac_sha256
from usr.qframe.codecs.authkeys import open_commands_problem
from usr.qframe.protocols.auth import CommandGate, Keyring
from usr.qframe.store.authstore import AuthStore

KEY = bytes(range(1, 33))
DEV = "860000000000001"
CTR0 = 1765150000000        # a HES counter: milliseconds since 1970 (over 2**31)


def _gate(last=0, open_commands=(), keys=None):
    ring = Keyring(keys if keys is not None else {"k1": KEY}, "k1")
    return CommandGate(DEV, ring, last, open_commands)


def _cmd(name="relay", args=None, ident=1):
    return ujson.dumps({"id": ident, "cmd": name, "args": args})


def _signed(ctr, name="relay", key=KEY, kid="k1", dev=DEV, ident=1):
    return authkeys.seal_command(key, dev, kid, ctr, _cmd(name, None, ident))


def test_mac_vector_is_hmac_over_the_documented_message():
    req = '{"id": 1, "cmd": "ping"}'
    message = ("qf1 cmd\n%s\nk1\n%d\n" % (DEV, CTR0)).encode() + req.encode()
    assert cmdauth.command_mac(KEY, DEV, "k1", CTR0, req) == hmac_sha256(KEY, message)
    env = cmdauth.decode(ujson.loads(authkeys.seal_command(KEY, DEV, "k1", CTR0, req)))
    assert env.kid == "k1" and env.ctr == CTR0 and env.text == req
    assert cmdauth.verify_command(env, KEY, DEV)
    assert not cmdauth.verify_command(env, KEY, DEV + "1")       # another module's command


def test_a_signed_command_runs_once_and_its_reply_is_signed():
    gate = _gate()
    verdict = gate.admit(_signed(CTR0))
    assert verdict.ok and verdict.signed and verdict.save_counter and gate.last_ctr == CTR0
    assert ujson.loads(verdict.request)["cmd"] == "relay"
    sealed = gate.seal({"id": 1, "ok": True}, verdict)
    kid, ctr, text = authkeys.open_json(KEY, "res", DEV, sealed)
    assert (kid, ctr) == ("k1", CTR0) and ujson.loads(text) == {"id": 1, "ok": True}
    whole = ujson.loads(sealed)                 # one JSON object: the reply's own fields too
    assert whole["id"] == 1 and whole["ok"] is True and whole["ctr"] == CTR0
    assert authkeys.open_json(KEY, "res", DEV + "1", sealed) is None    # another module
    assert authkeys.open_json(KEY, "cmd", DEV, sealed) is None          # another direction
    again = gate.admit(_signed(CTR0))                           # replayed / redelivered
    assert not again.ok and again.reason == "replay"
    assert gate.stats["refused_replay"] == 1 and gate.stats["admitted"] == 1


def test_reordered_counters_refuse_the_older_one():
    gate = _gate()
    assert gate.admit(_signed(CTR0 + 5)).ok
    late = gate.admit(_signed(CTR0 + 3))
    assert not late.ok and late.reason == "replay"


def test_unsigned_bad_mac_unknown_key_other_device_are_refused_by_reason():
    gate = _gate()
    cases = [
        (_cmd("dlms.action"), "unsigned"),
        (_signed(CTR0, key=bytes(32 * [7])), "bad_mac"),
        (_signed(CTR0, kid="k9"), "unknown_key"),
        (_signed(CTR0, dev="860000000000002"), "bad_mac"),
        (b'{"kid": "k1", "ctr": -1, "mac": "00", "req": "{}"}', "malformed"),
        (b'{"kid": "k1", "ctr": 5, "mac": "' + b"zz" * 32 + b'", "req": "{}"}', "malformed"),
        (b'{"kid": "k1", "ctr": true, "mac": "' + b"00" * 32 + b'", "req": "{}"}', "malformed"),
    ]
    for body, reason in cases:
        verdict = gate.admit(body)
        assert not verdict.ok and verdict.reason == reason, (body, verdict.reason)
        assert verdict.error.startswith("refused") or verdict.error.startswith("malformed")
    assert gate.last_ctr == 0 and gate.stats["admitted"] == 0


def test_tampered_command_text_fails_the_mac():
    body = ujson.loads(_signed(CTR0, "ping"))
    body["req"] = body["req"].replace("ping", "fota")
    verdict = _gate().admit(ujson.dumps(body))
    assert not verdict.ok and verdict.reason == "bad_mac"


def test_open_read_only_commands_only_from_config():
    assert not _gate().admit(_cmd("status")).ok                 # off by default
    gate = _gate(open_commands=("status",))
    assert gate.admit(_cmd("status")).ok and not gate.admit(_cmd("ota")).ok
    assert open_commands_problem(["status", "ping"]) is None
    assert "changes state" in open_commands_problem(["dlms.action"])
    assert open_commands_problem("status") is not None


def test_an_unprovisioned_module_refuses_everything_signed_or_not():
    gate = _gate(keys={})
    assert gate.admit(_signed(CTR0)).reason == "not_provisioned"
    assert gate.admit(_cmd("ping")).reason == "not_provisioned"


def test_rotation_keeps_the_old_key_until_the_new_one_is_used():
    new = bytes(range(100, 132))
    wrapped = authkeys.wrap_key(KEY, DEV, "k2", 42, new)
    assert authkeys.unwrap_key(KEY, DEV, "k2", 42, wrapped) == new
    gate = _gate()
    gate.keyring.add_pending("k2", new)
    assert gate.admit(_signed(CTR0)).ok                          # old key still valid
    verdict = gate.admit(_signed(CTR0 + 1, key=new, kid="k2"))
    assert verdict.ok and verdict.save_keys and gate.keyring.current == "k2"
    assert sorted(gate.keyring.keys) == ["k2"]
    assert gate.admit(_signed(CTR0 + 2)).reason == "unknown_key"   # retired
    sealed = gate.seal({"ok": True}, verdict)
    assert authkeys.open_json(new, "res", DEV, sealed)[1] == CTR0 + 1


def test_a_signed_reply_is_the_reply_encoded_once_and_tampering_fails():
    text = ujson.dumps({"id": 3, "ok": True, "result": {"s": 'a"mac":"b', "n": [1, 2]}})
    sealed = cmdauth.seal_json(KEY, "res", DEV, "k1", CTR0, text)
    assert bytes(sealed).endswith(text[1:].encode())                # not escaped, not wrapped
    assert len(sealed) == len(text) + len('{"kid":"k1","ctr":%d,"mac":"",' % CTR0) + 64 - 1
    assert authkeys.open_json(KEY, "res", DEV, sealed)[2] == text.encode()
    tampered = bytes(sealed).replace(b'"n": [1, 2]', b'"n": [1, 3]')
    assert authkeys.open_json(KEY, "res", DEV, tampered) is None
    assert raises(ValueError, cmdauth.seal_json, KEY, "res", DEV, "k1", 1, "{}")


def test_key_ids_are_plain_names():
    assert cmdauth.kid_problem("k-1_a.b") is None
    for bad in ("", 'k"1', "k\\1", "k 1", "x" * 33, 7):
        assert cmdauth.kid_problem(bad) is not None, bad


def test_weak_and_published_keys_are_refused():
    assert "empty" in authkeys.key_problem("")
    assert "bytes" in authkeys.key_problem("00")
    assert "hex" in authkeys.key_problem("xyz")
    assert "published" in authkeys.key_problem(authkeys.PUBLISHED_KEYS[0])
    assert "repeated" in authkeys.key_problem("11" * 32)
    assert authkeys.key_problem("00112233445566778899aabbccddeeff") is None
    ring = Keyring.from_json({"keys": {"bad": "", "dev": authkeys.PUBLISHED_KEYS[0],
                                       "ok": "00112233445566778899aabbccddeeff"},
                              "current": "bad"})
    assert list(ring.keys) == ["ok"] and ring.current is None


def test_derived_keys_differ_per_device():
    master = bytes(range(32))
    a, b = authkeys.derive_key(master, "860000000000001"), authkeys.derive_key(master, "86000000000002")
    assert len(a) == 32 and a != b and a == authkeys.derive_key(master, "860000000000001")


def test_store_round_trip_and_counter_survives_a_torn_write_at_every_byte():
    folder = fresh_folder("/usr", "test_cmdauth")
    store = AuthStore(folder)
    assert store.load_counter() == 0 and store.load_keys() is None
    store.save_keys({"dev": DEV, "keys": {"k1": "00" * 32}})
    store.save_counter(CTR0)
    store.save_counter(CTR0 + 1)
    assert AuthStore(folder).load_counter() == CTR0 + 1
    assert AuthStore(folder).load_keys()["dev"] == DEV
    # the next save goes to the slot holding CTR0: cut it short anywhere
    reader = AuthStore(folder)
    reader.load_counter()
    slot, _ = reader._generation["counter"]
    target = folder + "/counter.%d" % (1 - slot)
    probe = AuthStore(folder)
    probe.save_counter(CTR0 + 2)
    with open(target) as f:
        full = f.read()
    for cut in range(len(full)):
        with open(target, "w") as f:
            f.write(full[:cut])
        value = AuthStore(folder).load_counter()
        expected = CTR0 + 2 if cut == len(full) - 1 else CTR0 + 1   # only "\n" missing: whole
        assert value == expected, (cut, value)              # never older than before the write
    with open(target, "w") as f:
        f.write(full)
    assert AuthStore(folder).load_counter() == CTR0 + 2
    uos.remove(target)
    assert AuthStore(folder).load_counter() == CTR0 + 1


def test_a_full_flash_runs_read_only_commands_and_refuses_the_others():
    """The counter cannot be stored: a read-only command (the HES's proof ping, status) still
    runs, counted; a command that changes state is refused (it could be replayed after a power
    cut)."""
    import shimctl
    from usr.qframe import Application
    from usr.qframe.builtins.auth import Auth
    folder = fresh_folder("/usr", "_auth_full")
    AuthStore(folder).save_keys(dict(Keyring({"k1": KEY}, "k1").to_json(), dev=DEV))
    app = Application("auth-full")
    app.config.update({"AUTH": {"keys_path": folder}})
    auth = Auth(app=app)
    app.load()
    try:
        assert auth.admit(_signed(5, "ping")).ok
        shimctl.set_flash_free(0)
        verdict = auth.admit(_signed(6, "ping"))
        assert verdict.ok and auth.stats["counter_unsaved"] == 1
        verdict = auth.admit(_signed(7, "relay"))
        assert not verdict.ok and "cannot store its counter" in verdict.error
        assert auth.stats["save_errors"] == 2
    finally:
        shimctl.set_flash_free(None)
        app.stop()
