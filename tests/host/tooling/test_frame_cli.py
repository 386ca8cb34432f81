"""tools/frame.py, run as a field engineer would: plain python3, a subprocess per call."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOL = os.path.join(REPO, "tools", "frame.py")

V_HELLO = "7eff0300210006bf68656c6c6f37e97e"
V_GET_2801 = "7eff0300220003c0012891f57e"
V_GET_CSQ = "7eff0300220003c003808b077e"


def _run(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def test_decode_vectors_human_readable():
    out = _run("decode", V_HELLO)
    assert out.returncode == 0, out.stderr
    assert "0x2100" in out.stdout and "0xbf" in out.stdout and "68656c6c6f" in out.stdout
    assert "FCS ok" in out.stdout
    out = _run("decode", V_GET_CSQ)
    assert out.returncode == 0 and "pid       0x8003 (CSQ)" in out.stdout


def test_decode_json_fields():
    expected = {V_HELLO: (0x2100, 0xBF, "68656c6c6f", None),
                V_GET_2801: (0x2200, 0xC0, "0128", 0x2801),
                V_GET_CSQ: (0x2200, 0xC0, "0380", 0x8003)}
    for vector, (protocol, cmd, payload, pid) in expected.items():
        out = _run("decode", "--json", vector)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 1
        fields = json.loads(lines[0])
        assert fields["protocol"] == "0x%04x" % protocol and fields["cmd"] == "0x%02x" % cmd
        assert fields["payload"] == payload and fields["dialect"] == "legacy"
        assert fields.get("pid") == (None if pid is None else "0x%04x" % pid)


def test_decode_standard_dialect_and_spaced_hex():
    out = _run("decode", "--dialect", "standard", "--json", "7e ff 03 00 21 00 06 bf",
               "68:65:6c:6c:6f", "e937 7e")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["payload"] == "68656c6c6f"
    # legacy rejects the same octets (its FCS order differs) and says which dialect fits
    out = _run("decode", "--dialect", "legacy", "7eff0300210006bf68656c6c6fe9377e")
    assert out.returncode == 1 and "try --dialect standard" in out.stderr


def test_decode_detects_the_dialect_of_the_readmes_standard_frame():
    frame = _run("encode", "--dialect", "standard", "--protocol", "0x2100", "--cmd", "0xbf",
                 "68656c6c6f").stdout.strip()
    out = _run("decode", frame)
    assert out.returncode == 0, out.stderr
    assert "standard (detected) dialect" in out.stdout and "b'hello'" in out.stdout
    fields = json.loads(_run("decode", "--json", frame).stdout)
    assert fields["dialect"] == "standard" and fields["cmd"] == "0xbf"
    out = _run("decode", "0000")
    assert out.returncode == 1
    assert "legacy dialect: garbage" in out.stderr and "standard dialect: garbage" in out.stderr


def test_decode_typed_set_and_responses():
    # SET of 0x8007 with a typed visible-string value "ab": RID 0001, tag 0A, length 2
    payload = "0780" + "06" + "00010a026162"
    frame = _run("encode", "--protocol", "0x2200", "--cmd", "0xc1", payload).stdout.strip()
    fields = json.loads(_run("decode", "--json", frame).stdout)
    assert fields["pid"] == "0x8007" and fields["rid"] == "0x0001" and fields["tag"] == "0x0a"
    assert fields["data"] == "ab" and fields["value"] == "00010a026162"
    frame = _run("encode", "--protocol", "0x2200", "--cmd", "0xc5", "0780010c").stdout.strip()
    fields = json.loads(_run("decode", "--json", frame).stdout)
    assert fields["pid"] == "0x8007" and fields["ack"] == "0x0c"


def test_encode_matches_vectors():
    out = _run("encode", "--dialect", "legacy", "--protocol", "0x2100", "--cmd", "0xbf",
               "68656c6c6f")
    assert out.returncode == 0 and out.stdout.strip() == V_HELLO
    out = _run("encode", "--protocol", "0x2200", "--cmd", "0xc0", "0128")
    assert out.stdout.strip() == V_GET_2801
    out = _run("encode", "--dialect", "standard", "--accm", "0", "--protocol", "0x2100",
               "--cmd", "0xbf", "68656c6c6f")
    assert out.stdout.strip() == "7eff0300210006bf68656c6c6fe9377e"
    out = _run("encode", "--dialect", "standard", "--protocol", "0x2100", "--cmd", "0xbf",
               "68656c6c6f")
    assert out.stdout.strip() == "7eff7d237d20217d207d26bf68656c6c6fe9377e"


def test_bad_frames_exit_non_zero_with_reason():
    cases = {V_HELLO[:-6] + "37e87e": "bad_fcs",
             V_HELLO[:20]: "truncated",
             "0000" + V_HELLO: "garbage",
             V_HELLO[:-2]: "missing_flag",
             "7eff0300210000bf7e": "bad_length"}
    for frame, reason in cases.items():
        out = _run("decode", frame)
        assert out.returncode == 1, (frame, out.stdout)
        assert reason in out.stderr, (frame, out.stderr)
        assert out.stdout == ""


def test_malformed_message_and_bad_hex():
    frame = _run("encode", "--protocol", "0x2200", "--cmd", "0xc0", "01").stdout.strip()
    out = _run("decode", frame)
    assert out.returncode == 1 and "GET request" in out.stderr
    out = _run("decode", "7eZZ")
    assert out.returncode != 0 and "not hex" in out.stderr


# --- dlms: HDLC / WRAPPER / APDU as a tree ----------------------------------------------------

GURUX_GET = "7ea0190321326fd8e6e600c001c100030100010800ff020032687e"
GURUX_SNRM = "7ea0070321930f017e"


def test_dlms_tree_hdlc_frames():
    out = _run("dlms", GURUX_GET + GURUX_SNRM)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "HDLC I" and "  control 0x32 I N(S)=1 N(R)=1 P/F" in lines
    assert "      obis 1.0.1.8.0.255" in lines and "HDLC SNRM" in lines


def test_dlms_tree_json_wrapper_and_apdu():
    out = _run("dlms", "--json", "0001000100100009c401c1000600003039")
    tree = json.loads(out.stdout)
    wrapper_node = tree[0]
    assert wrapper_node["name"] == "WRAPPER"
    response = wrapper_node["children"][3]
    assert response["name"] == "get-response"
    assert response["children"][1]["value"] == "double-long-unsigned 12345"
    out = _run("dlms", "6117a109060760857405080101a203020101a305a10302010d")
    assert out.returncode == 0 and "result rejected-permanent" in out.stdout
    assert "diagnostic user 13" in out.stdout


def test_dlms_tree_bad_input_exit_1():
    bad_fcs = GURUX_GET[:-6] + "00" + GURUX_GET[-4:]
    out = _run("dlms", bad_fcs)
    assert out.returncode == 1 and "FCS" in out.stderr
    out = _run("dlms", "c401c1000905")
    assert out.returncode == 1 and "error" in out.stderr
