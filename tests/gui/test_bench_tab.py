"""gui/widgets/bench_tab.py: `sgm bench` on a background thread, shown as a table and bars.

The runs are real (sgm.bench's own measurement) but tiny: one implementation, one thread
count, 0.05 s a measurement, one repeat.
"""
from __future__ import annotations

import threading

import pytest
from PySide6 import QtCore

from sgm import _native
from sgm_gui.widgets.bench_tab import BenchTab, run_measurement

IMPL = _native.available_implementations()[0]


@pytest.fixture
def tab(qtbot) -> BenchTab:
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1])
    qtbot.addWidget(widget)
    widget.resize(1000, 500)
    widget.show()
    yield widget
    widget.wait(60)


def test_a_run_stays_off_the_gui_thread_and_shows_table_and_bars(tab: BenchTab, qtbot) -> None:
    assert tab.placeholder.isVisible()       # an empty chart says what will fill it
    ticks_while_running = 0
    gui_thread = threading.get_ident()

    def tick() -> None:
        nonlocal ticks_while_running
        if tab.is_running():
            ticks_while_running += 1

    timer = QtCore.QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    try:
        with qtbot.waitSignal(tab.finished, timeout=60000) as blocker:
            qtbot.mouseClick(tab.run_button, QtCore.Qt.LeftButton)
            assert tab.is_running()
            assert tab._thread is not None and tab._thread.ident != gui_thread
            # a second Run while running is refused
            assert not tab.run_button.isEnabled()
            assert tab.run() is False
            assert "already running" in tab.status_label.text()
    finally:
        timer.stop()
    # the GUI thread's timer kept firing while the benchmark ran (the run takes > 0.6 s:
    # two 0.3 s hashlib reference measurements)
    assert ticks_while_running >= 5
    result = blocker.args[0]
    assert result == tab.result()
    assert not tab.is_running() and tab.run_button.isEnabled()
    runs = result["runs"]
    assert [(r["device"], r["impl"], r["threads"]) for r in runs] == [("cpu", IMPL, 1)]
    assert runs[0]["hashes_per_s"] > 0 and runs[0]["ratio"] > 0
    assert result["reference"]["bytes_per_s"] > 0
    # the table shows the same figures
    assert tab.table.rowCount() == 1
    assert tab.table.item(0, 1).text() == IMPL
    assert tab.table.item(0, 3).text() == f"{runs[0]['hashes_per_s'] / 1e6:.2f}"
    assert "GB/s" in tab.reference_label.text()
    # ... and the bar chart the rates
    assert len(tab.bars) == 1
    assert list(tab.bars[0].opts["height"]) == [runs[0]["hashes_per_s"]]
    assert tab.bars[0] in tab.plot.items
    assert not tab.placeholder.isVisible()
    assert "Done" in tab.status_label.text()


def test_a_second_run_after_the_first_replaces_the_results(tab: BenchTab, qtbot) -> None:
    tab.show_result({"reference": {"what": "x", "bytes_per_s": 1e9, "samples": [1e9]},
                     "runs": [{"device": "cpu", "impl": "a", "threads": t, "hashes_per_s": h,
                               "ratio": 1.0, "samples": [h]}
                              for t, h in ((1, 1e6), (2, 2e6))] +
                             [{"device": "cpu", "impl": "b", "threads": 1, "hashes_per_s": 3e6,
                               "ratio": 1.0, "samples": [3e6]}]})
    assert tab.table.rowCount() == 3 and len(tab.bars) == 2      # one bar series per count
    ticks = tab.plot.getAxis("bottom")._tickLevels[0]
    assert [label for _, label in ticks] == ["a", "b"]
    with qtbot.waitSignal(tab.finished, timeout=60000):
        assert tab.run() is True
    assert tab.table.rowCount() == 1 and len(tab.bars) == 1
    assert len([i for i in tab.plot.items if i in tab.bars]) == 1


def test_a_bad_implementation_fails_with_a_message(qtbot) -> None:
    tab = BenchTab(seconds=0.05, repeats=1, impls=["no-such-kernel"], thread_counts=[1])
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.failed, timeout=60000) as blocker:
        assert tab.run()
    assert "no-such-kernel" in blocker.args[0]
    assert blocker.args[0] in tab.status_label.text()
    assert not tab.is_running() and tab.run_button.isEnabled()


def test_cancel_stops_after_the_current_measurement(qtbot) -> None:
    impls = _native.available_implementations()
    tab = BenchTab(seconds=0.05, repeats=1, impls=impls, thread_counts=[1])
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.failed, timeout=60000) as blocker:
        tab.run()
        tab.cancel()
    assert blocker.args[0] == "Benchmark cancelled."
    assert not tab.is_running() and tab.result() is None


def test_run_measurement_is_sgm_bench() -> None:
    """Same object shape as `sgm bench --json` (the CLI calls the same run_bench)."""
    result = run_measurement("cpu", 0.05, 1, [IMPL], [1])
    assert set(result) == {"reference", "runs"}
    assert set(result["runs"][0]) == {"device", "impl", "threads", "hashes_per_s", "ratio",
                                      "samples"}
    with pytest.raises(ValueError, match="unknown benchmark device"):
        run_measurement("abacus", 0.05, 1, None, None)


def test_a_run_shows_a_progress_bar_and_a_time_estimate(qtbot) -> None:
    """Two thread counts: a two-step bar that fills as each figure comes, an estimate in
    the status line from the start, and the bar gone at the end."""
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1, 2])
    qtbot.addWidget(widget)
    widget.show()
    values: list[int] = []
    widget.progress_bar.valueChanged.connect(values.append)
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        assert widget.run()
        assert widget.progress_bar.isVisible() and widget.progress_bar.maximum() == 2
        assert "about" in widget.status_label.text() and " s" in widget.status_label.text()
        assert widget.time_left() is not None and widget.time_left() > 0
    assert values[-1] == 2 and 1 in values
    assert not widget.progress_bar.isVisible()


def test_a_run_while_mining_says_the_figures_are_shared(qtbot) -> None:
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1])
    qtbot.addWidget(widget)
    widget.mining_now = lambda: True
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        widget.run()
        assert "shares the processor" in widget.status_label.text()


def test_cpu_and_opencl_results_stay_side_by_side(qtbot) -> None:
    """A CPU run then an OpenCL run (PoCL's CPU device where there is no GPU): the table
    keeps both; another CPU run replaces only the CPU rows."""
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1])
    qtbot.addWidget(widget)
    for device in ("cpu", "opencl", "cpu"):
        widget.device_combo.setCurrentIndex(widget.device_combo.findData(device))
        with qtbot.waitSignal(widget.finished, timeout=300_000):
            assert widget.run()
    kinds = [widget.table.item(row, 0).text() for row in range(widget.table.rowCount())]
    assert kinds.count("cpu") == 1 and kinds.count("opencl") >= 1
    assert kinds[0] == "cpu"
    row = kinds.index("opencl")          # compute units, not the CPU Threads option
    assert widget.table.item(row, 2).text().endswith(" CUs")
    widget.device_combo.setCurrentIndex(widget.device_combo.findData("opencl"))
    assert not widget.threads_spin.isEnabled()
