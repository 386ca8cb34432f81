"""`make bench`'s report (tools/benches/all.py): the table, PASS/MISS, units, the saved JSON."""
import json
import sys

from tools.benches import all as bench_all


def test_every_figure_line_names_a_bench_a_known_unit_and_a_readable_target():
    names = [name for name, _ in bench_all._benches()]
    for key, label, unit, target in bench_all.FIGURES:
        assert key.split("/", 1)[0] in names, key
        assert unit in bench_all.UNITS, (key, unit)
        assert label and "/" in key
        if target not in (None, "yes"):
            op, number = target.split()
            assert op in bench_all.OPS and float(number) == float(number), (key, target)


def test_judge_compares_in_the_tables_unit():
    assert bench_all.judge(12.0, ">= 10") == "PASS"
    assert bench_all.judge(3.1, ">= 10") == "MISS"
    assert bench_all.judge(0, "== 0") == "PASS"
    assert bench_all.judge(None, "< 2") == "MISS"       # a figure the bench did not give
    assert bench_all.judge(True, "yes") == "PASS"
    assert bench_all.judge(5, None) == ""


def _fake_figures(monkeypatch):
    monkeypatch.setattr(bench_all, "FIGURES", [
        ("a/ratio", "a ratio", "x", ">= 10"),
        ("a/share", "a share of the wire", "fraction", "< 2"),
        ("a/nested/heap", "a heap", "bytes", None),
        ("a/absent", "a figure the bench lost", "ms", "< 5"),
        ("b/lost", "b lost", "count", "== 0"),
    ])


def test_table_converts_units_and_says_pass_or_miss(monkeypatch):
    _fake_figures(monkeypatch)
    figures = {"a": {"ratio": 3.5, "share": 0.0029, "nested": {"heap": 35840}},
               "b": {"lost": 0}}
    text = bench_all.table(figures)
    lines = {line.split("  ")[0]: line.split() for line in text.splitlines()}
    assert lines["a ratio"][-5:] == ["3.50", "x", ">=", "10", "MISS"]
    assert "0.29" in lines["a share of the wire"] and "%" in lines["a share of the wire"]
    assert lines["a share of the wire"][-1] == "PASS"
    assert "35.0" in lines["a heap"] and "KiB" in lines["a heap"]
    assert lines["a figure the bench lost"][-3:] == ["<", "5", "MISS"]
    assert "missing" in lines["a figure the bench lost"]
    assert lines["b lost"][-1] == "PASS"
    assert text.splitlines()[-1] == "5 figures, 4 with a target: 2 PASS, 2 MISS"
    # a bench left out with --only has no rows
    assert "b lost" not in bench_all.table(figures, ["a"])


def test_main_runs_the_benches_prints_the_table_then_the_json_and_saves_it(
        monkeypatch, tmp_path, capsys):
    _fake_figures(monkeypatch)
    good = "import json; print('readable'); print(json.dumps({'ratio': 12, 'share': 0.01}))"
    bad = "import sys; print('it broke'); sys.exit(3)"
    monkeypatch.setattr(bench_all, "_benches", lambda: [
        ("a", [sys.executable, "-c", good]), ("b", [sys.executable, "-c", bad])])
    monkeypatch.setattr(bench_all, "BUILD", str(tmp_path))
    monkeypatch.setattr(bench_all, "JSON_PATH", str(tmp_path / "bench.json"))
    monkeypatch.setattr(bench_all, "LOG_DIR", str(tmp_path / "bench"))
    assert bench_all.main([]) == 1                       # b failed
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert json.loads(lines[-1]) == {"a": {"ratio": 12, "share": 0.01}}
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(lines[-1])
    assert (tmp_path / "bench" / "a.log").read_text().startswith("readable")
    assert "readable" not in out                         # bench output goes to its log
    assert "it broke" in out                             # ... unless it failed
    assert out.count("not on the module") == 1          # the caveat, once
    assert [l for l in lines if l.startswith("a ratio")][0].split()[-1] == "PASS"
    assert [l for l in lines if l.startswith("b lost")][0].split()[-4:] == [
        "missing", "==", "0", "MISS"]
    assert bench_all.main(["--only", "a"]) == 0
    assert "b lost" not in capsys.readouterr().out
