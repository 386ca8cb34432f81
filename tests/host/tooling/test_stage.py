"""tools/board.py stage: a board root is copies, never links into the repo; it stages an app
folder; it never overwrites or deletes a file of yours."""
import os
import shutil
import subprocess
import sys

import pytest

from tools.hostrun import board_root


@pytest.fixture
def source(tmp_path):
    """A small repo: qframe/, code/ and dev.json (stage copies from it)."""
    src = tmp_path / "src"
    (src / "qframe").mkdir(parents=True)
    (src / "qframe" / "__init__.py").write_text("# qframe\n")
    (src / "code").mkdir()
    (src / "code" / "main.py").write_text("# the repo's main\n")
    (src / "code" / "app_main.py").write_text("# the repo's app\n")
    (src / "dev.json").write_text('{"APP": {}}\n')
    return str(src)


def test_writing_into_a_staged_root_never_reaches_the_repo(tmp_path, source):
    root = board_root.stage(str(tmp_path / "board"), source=source)
    usr = os.path.join(root, "usr")
    for name in ("main.py", "dev.json"):          # as the user did: cp over them
        with open(os.path.join(usr, name), "w") as f:
            f.write("mine\n")
    with open(os.path.join(usr, "qframe", "__init__.py"), "w") as f:
        f.write("mine\n")
    assert open(os.path.join(source, "code", "main.py")).read() == "# the repo's main\n"
    assert open(os.path.join(source, "dev.json")).read() == '{"APP": {}}\n'
    assert open(os.path.join(source, "qframe", "__init__.py")).read() == "# qframe\n"


def test_an_app_folder_is_staged_instead_of_code(tmp_path, source):
    app = tmp_path / "myapp"
    app.mkdir()
    (app / "main.py").write_text("# my main\n")
    (app / "helpers.py").write_text("# my module\n")
    (app / "dev.json").write_text('{"UART": {"port": "/dev/pts/9"}}\n')
    root = board_root.stage(str(tmp_path / "board"), source=source)
    board_root.stage(root, source=source, app=str(app))
    usr = os.path.join(root, "usr")
    assert open(os.path.join(usr, "main.py")).read() == "# my main\n"
    assert open(os.path.join(usr, "helpers.py")).read() == "# my module\n"
    assert "/dev/pts/9" in open(os.path.join(usr, "dev.json")).read()
    assert not os.path.exists(os.path.join(usr, "app_main.py"))   # the repo's, staged before
    assert os.path.isfile(os.path.join(usr, "qframe", "__init__.py"))


def test_stage_never_overwrites_a_file_it_did_not_put_there(tmp_path, source):
    root = str(tmp_path / "board")
    os.makedirs(os.path.join(root, "usr"))
    with open(os.path.join(root, "usr", "main.py"), "w") as f:
        f.write("my own main\n")
    with pytest.raises(board_root.StageConflict) as refused:
        board_root.stage(root, source=source)
    assert "main.py is not a file staged here" in str(refused.value)
    assert "--app" in str(refused.value)
    assert open(os.path.join(root, "usr", "main.py")).read() == "my own main\n"


def test_board_run_keeps_your_files_and_says_why(tmp_path):
    """`board.py run` restages: a main.py of yours in the root is kept, with one line."""
    root = str(tmp_path / "board")
    os.makedirs(os.path.join(root, "usr"))
    with open(os.path.join(root, "usr", "main.py"), "w") as f:
        f.write("my own main\n")
    done = subprocess.run([sys.executable, "tools/board.py", "run", "--root", root,
                           "--duration", "1"], cwd=board_root.REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "not a file staged here" in done.stderr, done.stderr
    assert open(os.path.join(root, "usr", "main.py")).read() == "my own main\n"


def test_files_the_app_wrote_survive_restaging(tmp_path, source):
    root = board_root.stage(str(tmp_path / "board"), source=source)
    log = os.path.join(root, "usr", "log", "app.log")
    os.makedirs(os.path.dirname(log))
    shutil.copy(os.path.join(source, "dev.json"), log)
    board_root.stage(root, source=source, config={"APP": {"log_level": "DEBUG"}})
    assert os.path.isfile(log)
    assert "DEBUG" in open(os.path.join(root, "usr", "dev.json")).read()
