"""gui/widgets/bench_tab.py: `sgm bench` on a background thread, shown as a table and bars.

The runs are real (sgm.bench's own measurement) but tiny: one implementation, one thread
count, 0.05 s a measurement, one repeat.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from PySide6 import QtCore

from sgm import _native
from sgm_gui.widgets.bench_tab import BenchTab, run_measurement

IMPL = _native.available_implementations()[0]


def _sha256d_reset() -> None:
    """Forget the process's default kernel (a test chose one in its own cache dir)."""
    from sgm._native import _sha256d

    _sha256d._reset_default()


@pytest.fixture
def tab(qtbot) -> BenchTab:
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1])
    qtbot.addWidget(widget)
    widget.resize(1000, 500)
    widget.show()
    yield widget
    widget.wait(60)


def left_label(tab: BenchTab) -> str:
    return tab.plot.getAxis("left").labelString()


def test_a_run_stays_off_the_gui_thread_and_shows_table_and_bars(tab: BenchTab, qtbot) -> None:
    assert tab.placeholder.isVisible()       # an empty chart says what will fill it
    assert "H/s" not in left_label(tab)      # ... and shows no unit of its own
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
    assert "MH/s" in left_label(tab) or "kH/s" in left_label(tab)    # scaled, as the table
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


def test_a_run_while_mining_says_the_figures_are_shared_or_mining_pauses(qtbot) -> None:
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1])
    qtbot.addWidget(widget)
    widget.mining_now = lambda: True
    widget.pause_check.setChecked(False)
    with qtbot.waitSignal(widget.finished, timeout=120_000):
        widget.run()
        assert "shares the processor" in widget.status_label.text()
    widget.pause_check.setChecked(True)
    with qtbot.waitSignals([widget.run_started, widget.finished, widget.run_ended],
                           timeout=120_000):
        widget.run()
        assert "paused until it ends" in widget.status_label.text()
        assert not widget.pause_check.isEnabled()      # fixed while a run measures


def test_rows_appear_as_they_are_measured(qtbot) -> None:
    """Two thread counts: the first figure's row is in the table while the second is
    still being measured; its ratio to hashlib comes with the end of the run."""
    widget = BenchTab(seconds=0.05, repeats=1, impls=[IMPL], thread_counts=[1, 2])
    qtbot.addWidget(widget)
    widget.show()
    seen: list[tuple[bool, int, str]] = []      # (running, rows, first row's ratio cell)
    widget.measured.connect(
        lambda _run: seen.append((widget.is_running(), widget.table.rowCount(),
                                  widget.table.item(0, 4).text())))
    with qtbot.waitSignal(widget.finished, timeout=120_000) as blocker:
        assert widget.run()
    assert [(running, rows) for running, rows, _ in seen] == [(True, 1), (True, 2)]
    assert seen[0][2] == "…"
    runs = blocker.args[0]["runs"]
    assert widget.table.rowCount() == 2
    assert [widget.table.item(r, 4).text() for r in range(2)] == \
        [f"{run['ratio']:.3f}" for run in runs]


def test_use_this_kernel_keeps_the_choice_where_sgm_devices_reads_it(
        qtbot, tmp_path, monkeypatch) -> None:
    """Two kernels measured; the one that is not the default is chosen with "Use this
    kernel": the choice lands in the cache directory, the API and `sgm devices` report it
    as chosen by the user, and its row is marked the default."""
    from sgm.api import kernel_choice

    monkeypatch.setenv("SGM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SGM_IMPL", raising=False)
    fast = [k for k in _native.available_implementations() if k != "scalar"]
    kernels = (fast + ["scalar"])[:2]
    widget = BenchTab(seconds=0.05, repeats=1, impls=kernels, thread_counts=[1])
    qtbot.addWidget(widget)
    widget.show()
    try:
        assert kernel_choice().impl is None          # a fresh cache: not calibrated yet
        with qtbot.waitSignal(widget.finished, timeout=120_000):
            assert widget.run()
        impls = [widget.table.item(r, 1).text() for r in range(widget.table.rowCount())]
        assert impls == kernels
        assert not widget.use_button.isEnabled()     # nothing selected yet
        row = 1
        widget.table.selectRow(row)
        assert widget.use_button.isEnabled()
        with qtbot.waitSignal(widget.kernel_chosen, timeout=30_000) as chosen:
            qtbot.mouseClick(widget.use_button, QtCore.Qt.LeftButton)
        assert chosen.args[0] == kernels[row]
        saved = json.loads((tmp_path / "kernel-choice.json").read_text())
        assert saved["impl"] == kernels[row] and saved["chosen_by"] == "user"
        assert set(saved["rates"]) == set(kernels)
        choice = kernel_choice()
        assert choice.impl == kernels[row] and "chosen by the user" in choice.reason
        assert widget.kernel_marks() == {row: "default"}
        assert not widget.use_button.isEnabled()     # it is the default now
        assert "chosen by the user" in widget.kernel_label.text()
        # the command line reads the same choice
        env = dict(os.environ, SGM_CACHE_DIR=str(tmp_path))
        env.pop("SGM_IMPL", None)
        r = subprocess.run([sys.executable, "-m", "sgm", "devices", "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        cpu = next(d for d in json.loads(r.stdout)["devices"] if d["kind"] == "cpu")
        assert cpu["default_impl"] == kernels[row]
        assert cpu["default_impl_reason"].startswith(f"{kernels[row]}: chosen by the user")
    finally:
        # the process's own default kernel is read again from the real cache next time
        _sha256d_reset()


def test_the_kernel_mining_uses_is_marked_in_use(qtbot, tmp_path, monkeypatch) -> None:
    from sgm.api import save_kernel_choice

    monkeypatch.setenv("SGM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SGM_IMPL", raising=False)
    kernels = _native.available_implementations()[:2]
    widget = BenchTab(seconds=0.05, repeats=1, impls=kernels, thread_counts=[1])
    qtbot.addWidget(widget)
    try:
        save_kernel_choice(kernels[0])
        widget.show_result({"reference": {"what": "x", "bytes_per_s": 1e9, "samples": [1e9]},
                            "runs": [{"device": "cpu", "impl": k, "threads": 1,
                                      "hashes_per_s": 1e6, "ratio": 1.0, "samples": [1e6]}
                                     for k in kernels]})
        widget.refresh_kernel()
        assert widget.kernel_marks() == {0: "default"}
        widget.mining_kernel = lambda: kernels[0]
        widget.refresh_kernel()
        assert widget.kernel_marks() == {0: "in use"}
        save_kernel_choice(kernels[1])            # chosen while mining: the next start
        widget.refresh_kernel()
        assert widget.kernel_marks() == {0: "in use now", 1: "default (next start)"}
        assert f"Mining uses {kernels[0]} until its next start" in widget.kernel_label.text()
    finally:
        _sha256d_reset()


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
    # the chart: a CPU series and an OpenCL one (not a "N threads" series), and the axis
    # names the OpenCL device
    names = [label.text for _sample, label in widget.legend.items]
    assert names == ["1 thread", "OpenCL (all compute units)"]
    ticks = [text for _x, text in widget.plot.getAxis("bottom")._tickLevels[0]]
    device_name = widget.table.item(row, 1).text().split(" (")[0]   # "opencl0.0 (kernel)"
    assert ticks[0] == IMPL and device_name in ticks[1:]
    widget.device_combo.setCurrentIndex(widget.device_combo.findData("opencl"))
    assert not widget.threads_spin.isEnabled()
