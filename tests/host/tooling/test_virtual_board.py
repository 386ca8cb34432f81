"""The virtual board's console: nothing it prints is lost (mpremote fs cat, long exec output, a
reader that pauses), mpremote mount works, and `make board SIM=1`'s peers make deploy -> run
show the app working. Real MicroPython on real ptys, real mpremote."""
import os
import re
import signal
import subprocess
import sys
import time

import serial

from device_helpers import (DEPLOY, MPREMOTE, OS_ALIAS, REPO, TIMEOUT, board,  # noqa: F401
                            deploy_to, mpremote, read_until, running, source)
from tools.device import sim_peers, virtual_board


def test_fs_cat_of_a_large_file_arrives_whole(board):
    text = "".join("%06d INFO app: reading %d %s\n" % (i, i, "x" * (i % 61)) for i in range(700))
    assert len(text) > 13 * 1024
    os.makedirs(os.path.join(board.root, "usr", "log"))
    with open(os.path.join(board.root, "usr", "log", "app.log"), "w") as f:
        f.write(text)
    for _ in range(3):
        done = mpremote(board, "exec", OS_ALIAS, "fs", "cat", ":/usr/log/app.log")
        assert done.returncode == 0, done.stderr
        assert done.stdout.replace("\r\n", "\n") == text   # the console's \n -> \r\n aside


def test_exec_output_of_hundreds_of_lines_arrives_whole(board):
    done = mpremote(board, "exec", "for i in range(1500): print('line %d of the test' % i)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["line %d of the test" % i for i in range(1500)]


def test_a_reader_that_pauses_gets_everything(board):
    """More output than the bridge holds (MAX_UNREAD) plus the ptys' buffers, while the host
    reads nothing for a second: the board waits, nothing is dropped."""
    lines = 6000
    with serial.Serial(board.port, timeout=0.2) as port:
        port.write(b"\r\x03\x01")
        read_until(port, b"raw REPL; CTRL-B to exit\r\n>")
        port.write(b"for i in range(%d): print('%%05d %%s' %% (i, 'z' * 40))\x04" % lines)
        time.sleep(1.0)          # the pause under test (shorter than NO_READER_S)
        data = read_until(port, b"\x04\x04>", timeout=30)
    assert data.startswith(b"OK")
    body = data[2:data.index(b"\x04")].decode().splitlines()
    assert body == ["%05d %s" % (i, "z" * 40) for i in range(lines)]
    assert lines * 47 > virtual_board.MAX_UNREAD and board.discarded == 0


def test_mpremote_mount_runs_code_from_the_host(tmp_path, monkeypatch):
    # mpremote mount's board side polls with uselect: a module has it from September 2021 on
    monkeypatch.setenv("QFRAME_FIRMWARE", "E3")
    with virtual_board.VirtualBoard(str(tmp_path / "board")) as board:
        _mount_and_run(tmp_path, board)
    assert not board.alive


def _mount_and_run(tmp_path, board):
    local = tmp_path / "work"
    local.mkdir()
    (local / "hello.py").write_text("def greet():\n    return 'hi from the host'\n")
    (local / "blob.bin").write_bytes(bytes(range(256)))      # 0x03 is data, not Ctrl-C
    done = subprocess.run([MPREMOTE, "connect", board.port, "mount", str(local), "exec",
                           "import hello; print(hello.greet()); "
                           "f = open('blob.bin', 'rb'); b = f.read(); f.close(); "
                           "print(len(b), b == bytes(range(256)))"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hi from the host" in done.stdout and "256 True" in done.stdout
    # the board's own rules still hold for device code afterwards
    assert "no module named 'os'" in mpremote(board, "exec", "import os").stdout + \
        mpremote(board, "exec", "import os").stderr


def test_board_with_sim_peers_shows_the_app_working(tmp_path, source):
    """make board SIM=1, as a library: meter and HES simulators, the app deployed with their
    site config, `make run` shows it connect; the HES receives the meter's readings."""
    said = []
    peers = sim_peers.SimPeers(str(tmp_path / "site.json"), str(tmp_path / "meter.tty"),
                               every_s=0.2, say=said.append).start()
    try:
        with virtual_board.VirtualBoard(str(tmp_path / "board")) as vb:
            deploy_to(vb, source, "--config", peers.site_config)
            with running(DEPLOY + ["run", "--port", vb.port]) as (proc, reader):
                reader.wait_for(r"tcp: connected to 127\.0\.0\.1:%d" % peers.hes.port, 20)
                reader.wait_for(r"uart: UART .*meter\.tty' open", 20)
                assert peers.hes.wait_for(
                    lambda h: any(p.startswith(b"reading") for p in h.received), 20)
                proc.send_signal(signal.SIGINT)
                reader.wait_for(r"run: interrupted", TIMEOUT)
                proc.wait(TIMEOUT)
            log = os.path.join(vb.root, "usr", "log", "app.log")
            with open(log) as f:
                assert "meter-module loaded" in f.read()      # make log has a file to follow
    finally:
        peers.stop()
    assert any(re.match(r"hes: +register ", line) for line in said), said


def test_make_board_sim_prints_how_to_use_it(tmp_path):
    with running([sys.executable, "-m", "tools.device.virtual_board", "--sim", "--root",
                  str(tmp_path / "board"), "--link", str(tmp_path / "board.tty")]) as (proc, reader):
        reader.wait_for(r"^deploy: \d+ copied, 0 unchanged", 30)
        assert reader.wait_for("^PORT=").strip() == "PORT=%s" % (tmp_path / "board.tty")
        reader.wait_for(r"make run PORT=%s" % re.escape(str(tmp_path / "board.tty")))
        reader.wait_for(r"make deploy PORT=%s +after a change \(the wiring to the simulators "
                        r"is kept\)" % re.escape(str(tmp_path / "board.tty")))
        assert os.path.islink(str(tmp_path / "board" / "meter.tty"))
        reader.wait_for(r"Ctrl-C stops the board")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0


def test_make_board_starts_clean_after_a_killed_one(tmp_path):
    """One board per root: a second says so in one line; a board killed with SIGKILL leaves
    its pid file and port link behind, and the next one starts anyway."""
    argv = [sys.executable, "-m", "tools.device.virtual_board", "--root",
            str(tmp_path / "board"), "--link", str(tmp_path / "board.tty")]
    with running(argv) as (first, reader):
        reader.wait_for("^PORT=", 30)
        second = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                                timeout=TIMEOUT)
        assert second.returncode == 1
        assert "a virtual board already runs on %s (pid %d)" % (tmp_path / "board", first.pid) \
            in second.stderr
        first.kill()
        first.wait(TIMEOUT)
    assert os.path.exists(str(tmp_path / "board" / "board.pid"))
    with running(argv) as (again, reader):
        assert reader.wait_for("^PORT=", 30).strip() == "PORT=%s" % (tmp_path / "board.tty")
        done = subprocess.run(DEPLOY + ["ping", "--port", str(tmp_path / "board.tty")],
                              cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
        again.send_signal(signal.SIGINT)
        assert again.wait(TIMEOUT) == 0
    assert not os.path.exists(str(tmp_path / "board" / "board.pid"))
