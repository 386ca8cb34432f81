"""The heap floor table (tools/benches/heap_floor.py): the ladder's bisection and the dated
table `make bench` prints and the docs cite."""
from tools.benches import heap_floor


def test_the_floor_is_the_smallest_passing_size_of_the_ladder():
    for threshold in (96, 100, 192, 200, 512):
        tried = []

        def ok(kb):
            tried.append(kb)
            return kb >= threshold
        expected = min(k for k in heap_floor.LADDER_KB if k >= threshold)
        assert heap_floor.floor(ok) == expected, threshold
        assert len(tried) <= 5          # bisected, not walked


def test_nothing_passes_means_no_floor():
    assert heap_floor.floor(lambda kb: False) is None


def test_the_table_is_dated_and_has_a_row_per_interpreter_and_config():
    figures = {("1.13 32-bit", "default", "source"): 320, ("1.13 32-bit", "default", "mpy"): 288,
               ("1.13 32-bit", "default", "app_mpy"): 192, ("1.13 32-bit", "all", "mpy"): None}
    text = heap_floor.render(figures, "2026-12-08")
    lines = text.splitlines()
    assert "2026-12-08" in lines[0]
    head = [i for i, line in enumerate(lines) if line.startswith("interpreter")][0]
    rows = [line.split() for line in lines[head + 1:]]
    assert rows == [["1.13", "32-bit", "default", "320", "288", "192"],
                    ["1.13", "32-bit", "all", "-", ">512", "-"]]
    summary = {"floor": dict(("%s/%s/%s" % k, v) for k, v in figures.items()),
               "floor_date": "2026-12-08", "core_bytes": 2048, "phase_load_bytes": 1}
    assert "core 2.0" in heap_floor.render_summary(summary)
