"""gui/widgets/charts.py: bounded ring buffers and the three live plots.

The mining test feeds the panel from a real Miner on the embedded pool (real hashing, real
shares), the way the window does: a GUI-thread timer drains a telemetry subscription.
"""
from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtGui

from sgm.miner import Miner, MinerConfig
from sgm.telemetry import ShareEvent
from sgm_gui.widgets import charts
from sgm_gui.widgets.charts import BACKGROUND, ChartsPanel, RingBuffer


# --------------------------------------------------------------------------- RingBuffer
def test_ring_buffer_keeps_the_newest_samples_in_order() -> None:
    buf = RingBuffer(4)
    assert len(buf) == 0 and buf.capacity == 4 and buf.last() is None
    t, y = buf.view()
    assert t.size == 0 and y.size == 0
    for i in range(3):
        buf.append(float(i), 10.0 * i)
    assert buf.view()[0].tolist() == [0.0, 1.0, 2.0]
    for i in range(3, 11):                      # wraps around twice
        buf.append(float(i), 10.0 * i)
        t, y = buf.view()
        assert t.tolist() == [float(k) for k in range(max(0, i - 3), i + 1)]
        assert y.tolist() == [10.0 * k for k in range(max(0, i - 3), i + 1)]
    assert len(buf) == 4
    buf.set_last(-1.0)
    assert buf.last() == (10.0, -1.0) and buf.view()[1][-1] == -1.0
    buf.clear()
    assert len(buf) == 0


def test_ring_buffer_view_is_a_view_not_a_copy() -> None:
    buf = RingBuffer(8)
    for i in range(13):
        buf.append(i, i)
    t, _ = buf.view()
    assert t.base is not None and t.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("capacity", [0, -3, 2.5])
def test_ring_buffer_refuses_a_bad_capacity(capacity) -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(capacity)


def test_a_day_of_samples_stays_within_capacity_and_memory_stays_flat() -> None:
    """A day at 10 Hz into a 10-minute ring: length capped, no growth in allocations."""
    capacity = 6000
    buf = RingBuffer(capacity)
    nbytes = buf.nbytes
    # only what the ring's own code allocates: other threads of the test process (a
    # previous test's leftovers, pytest's) may allocate meanwhile
    only_ring = [tracemalloc.Filter(True, charts.__file__)]
    tracemalloc.start()
    try:
        for i in range(capacity):             # fill once, then measure
            buf.append(i * 0.1, float(i))
        base = tracemalloc.take_snapshot().filter_traces(only_ring)
        for i in range(capacity, 24 * 3600 * 10):
            buf.append(i * 0.1, float(i))
        after = tracemalloc.take_snapshot().filter_traces(only_ring)
    finally:
        tracemalloc.stop()
    assert len(buf) == capacity
    assert buf.nbytes == nbytes
    grown = sum(stat.size_diff for stat in after.compare_to(base, "filename"))
    assert grown < 4096, f"memory grew by {grown} bytes over a day of samples"
    t, y = buf.view()
    assert y[-1] == 24 * 3600 * 10 - 1 and np.all(np.diff(t) > 0)


# --------------------------------------------------------------------------- ChartsPanel
@pytest.fixture
def panel(qtbot) -> ChartsPanel:
    widget = ChartsPanel(window_s=600.0)
    qtbot.addWidget(widget)
    widget.resize(900, 650)
    widget.show()
    return widget


def _data(item: pg.PlotDataItem) -> tuple[np.ndarray, np.ndarray]:
    x, y = item.xData, item.yData
    return (np.empty(0) if x is None else x), (np.empty(0) if y is None else y)


def test_refresh_with_no_data_does_not_raise(panel: ChartsPanel) -> None:
    panel.refresh()
    panel.refresh(now=0.0)
    panel.set_pool_difficulty(None)
    panel.refresh()
    counts = panel.point_counts()
    assert counts["total"] == 0 and counts["accepted"] == 0 and counts["difficulty"] == 0
    notes = [item for item in panel._placeholders.values() if item.isVisible()]
    assert len(notes) == 3                           # each empty plot says it is waiting
    panel.add_rates(1_800_000_000.0, 1.0, {"cpu0": 1.0})
    panel.refresh(1_800_000_001.0)
    assert len([i for i in panel._placeholders.values() if i.isVisible()]) == 2
    assert not panel.grab().isNull()


def test_plots_are_set_up_for_cheap_live_drawing(panel: ChartsPanel) -> None:
    now = 1_800_000_000.0
    panel.add_rates(now - 700, 9e6, {"cpu0": 9e6})       # outside the window: not in Y
    panel.add_rates(now - 1, 5e6, {"cpu0": 5e6})
    panel.add_share(now - 2, "accepted", 1e3)
    panel.add_share(now - 2, "accepted", 1e5)
    panel.set_pool_difficulty(10.0)
    panel.refresh(now)
    for plot in (panel.rate_plot, panel.share_plot, panel.diff_plot):
        assert isinstance(plot.getAxis("bottom"), pg.DateAxisItem)
        vb = plot.getViewBox()
        assert list(vb.autoRangeEnabled()) == [False, False]    # refresh() sets both ranges
        x0, x1 = vb.viewRange()[0]
        assert x0 == pytest.approx(now - 600.0) and x1 == pytest.approx(now)
        for item in plot.listDataItems():
            assert item.opts["clipToView"] is True
            assert item.opts["autoDownsample"] is True
            assert item.opts["downsampleMethod"] == "peak"
    # Y fits what is visible: rates and counts from 0, difficulty around points and target
    assert panel.rate_plot.getViewBox().viewRange()[1] == pytest.approx([0.0, 5e6 * 1.12])
    assert panel.share_plot.getViewBox().viewRange()[1] == pytest.approx([0.0, 5 * 1.12])
    assert panel.diff_plot.getViewBox().viewRange()[1] == pytest.approx([1.0 - 0.25, 5.0 + 0.25])
    assert panel.diff_plot.getAxis("left").logMode is True
    assert "H/s" in panel.rate_plot.getAxis("left").labelUnits


def test_a_device_gets_its_curve_on_first_sight_and_nan_when_stopped(panel: ChartsPanel) -> None:
    t0 = 1_800_000_000.0
    panel.add_rates(t0, 3.0e6, {"cpu0": 3.0e6})
    assert panel.device_names() == ["cpu0"]
    panel.add_rates(t0 + 1, 5.0e6, {"cpu0": 3.0e6, "cpu1": 2.0e6})
    assert panel.device_names() == ["cpu0", "cpu1"]
    panel.add_rates(t0 + 2, 3.0e6, {"cpu0": 3.0e6})           # cpu1 stopped
    panel.add_rates(t0 + 3, 5.0e6, {"cpu0": 3.0e6, "cpu1": 2.0e6})
    panel.refresh(t0 + 4)
    cpu1 = panel._devices["cpu1"].item
    _, y = _data(cpu1)
    assert y.tolist()[0] == 2.0e6 and math.isnan(y[1]) and y[2] == 2.0e6
    assert cpu1.opts["connect"] == "finite"
    counts = panel.point_counts()
    assert counts["total"] == 4 and counts["cpu0"] == 4 and counts["cpu1"] == 2


def test_fast_samples_are_coalesced_and_a_day_stays_bounded(panel: ChartsPanel) -> None:
    t0 = 1_800_000_000.0
    sizes = None
    for i in range(24 * 3600):                   # a day at 1 Hz, two devices
        panel.add_rates(t0 + i, 7.0, {"cpu0": 3.0, "cpu1": 4.0})
        if i == 600:
            sizes = [s.buf.nbytes for s in panel._all_series()]
    for _ in range(50):                          # a burst in the same 0.1 s: one point
        panel.add_rates(t0 + 24 * 3600 - 1, 9.0, {"cpu0": 5.0, "cpu1": 4.0})
    assert [s.buf.nbytes for s in panel._all_series()] == sizes
    for series in panel._all_series():
        assert len(series.buf) <= series.buf.capacity
    panel.refresh(t0 + 24 * 3600)
    counts = panel.point_counts()
    assert 590 <= counts["total"] <= 601 and counts["cpu0"] == counts["total"]
    assert _data(panel._total.item)[1][-1] == 9.0


def test_the_time_axis_starts_at_the_first_sample_until_the_window_is_full(panel: ChartsPanel
                                                                           ) -> None:
    """Two minutes into a session the data fills the plot, not the right fifth of a 10 minute
    axis; a minute is the shortest span shown; a full window scrolls."""
    first = 1_800_000_000.0
    panel.add_rates(first, 5e6, {"cpu0": 5e6})
    panel.refresh(first + 120)
    assert panel.rate_plot.getViewBox().viewRange()[0] == pytest.approx([first, first + 120])
    panel.refresh(first + 10)
    assert panel.rate_plot.getViewBox().viewRange()[0] == pytest.approx([first - 50, first + 10])
    panel.refresh(first + 900)
    assert panel.rate_plot.getViewBox().viewRange()[0] == pytest.approx([first + 300, first + 900])
    panel.clear()
    panel.add_rates(first + 1000, 5e6, {"cpu0": 5e6})
    panel.refresh(first + 1100)
    assert panel.rate_plot.getViewBox().viewRange()[0] == pytest.approx([first + 1000, first + 1100])


def test_the_engines_share_totals_replace_counting_samples(panel: ChartsPanel) -> None:
    """A flood thins the share samples the window receives; the cumulative curves then
    follow the engine's own counts (set_share_totals), never the samples."""
    t0 = 1_800_000_000.0
    panel.add_share(t0, "accepted", 10.0)
    panel.set_share_totals(t0 + 0.5, {"accepted": 500, "rejected": 2, "stale": 0})
    for i in range(5):                                # samples after: difficulty points only
        panel.add_share(t0 + 1 + i / 10, "accepted", 10.0)
    panel.set_share_totals(t0 + 2, {"accepted": 1200, "rejected": 2, "stale": 1})
    panel.refresh(t0 + 3)
    assert panel.share_totals() == {"accepted": 1200, "rejected": 2, "stale": 1}
    x, y = _data(panel._shares["accepted"].item)
    assert y.tolist() == [500.0, 1200.0, 1200.0] and x[-1] == t0 + 3
    assert panel.point_counts()["difficulty:accepted"] == 1 + 5   # every share drawn
    assert "1,200" in panel.count_label.toPlainText()
    # totals first seen a while into the session rise from 0 at its first sample
    panel.clear()
    panel.add_rates(t0 + 100, 1e6, {"cpu0": 1e6})
    panel.set_share_totals(t0 + 103.5, {"accepted": 7, "rejected": 0, "stale": 0})
    panel.refresh(t0 + 104)
    x, y = _data(panel._shares["accepted"].item)
    assert x.tolist() == [t0 + 100, t0 + 103, t0 + 104] and y.tolist() == [0.0, 7.0, 7.0]
    panel.set_share_totals(t0 + 110.2, {"accepted": 9, "rejected": 0, "stale": 1})
    panel.refresh(t0 + 111)
    x, y = _data(panel._shares["stale"].item)     # the first stale share: 0 until then
    assert x.tolist() == [t0 + 100, t0 + 109, t0 + 110, t0 + 111]
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_shares_are_counted_per_second_and_plotted_by_difficulty(panel: ChartsPanel) -> None:
    t0 = 1_800_000_000.0
    for dt in (0.1, 0.9, 2.5, 3.2):
        panel.add_share(t0 + dt, "accepted", 1024.0)
    panel.add_share(t0 + 3.0, "rejected", 300.0)
    panel.add_share(t0 + 3.5, "stale", 5000.0)
    panel.add_share(t0 + 3.6, "stale", 0.0)          # no point on a log axis, still counted
    panel.add_share(t0 + 3.7, "bogus", 1.0)          # ignored with a warning
    panel.refresh(t0 + 10)
    assert panel.share_totals() == {"accepted": 4, "rejected": 1, "stale": 2}
    counts = panel.point_counts()
    assert counts["accepted"] == 3                   # seconds t0, t0+2, t0+3
    assert counts["rejected"] == 1 and counts["stale"] == 1
    assert counts["difficulty:accepted"] == 4 and counts["difficulty:stale"] == 1
    x, y = _data(panel._shares["accepted"].item)
    assert y[-1] == 4 and x[-1] == t0 + 10            # the count holds until now
    x, y = _data(panel._shares["rejected"].item)
    assert y.tolist() == [1.0, 1.0]
    assert panel.count_label.toPlainText().split() == ["accepted", "4", "rejected", "1",
                                                        "stale", "2"]
    assert "accepted" in panel.share_plot.titleLabel.text


def test_a_flood_of_shares_keeps_each_seconds_best_and_covers_the_window(panel: ChartsPanel
                                                                        ) -> None:
    t0 = 1_800_000_000.0
    per_second = panel._diff_per_second
    assert per_second >= 1
    for second in range(1200):                  # 20 minutes at 50 shares a second
        for k in range(50):
            d = 1000.0 + k if k != 37 else 1e6 + second   # one hard share in each second
            panel.add_share(t0 + second + k / 50, "accepted", d)
    panel.refresh(t0 + 1200)
    assert panel.share_totals()["accepted"] == 60000                # counted: every share
    buf = panel._diffs["accepted"].buf
    assert len(buf) <= buf.capacity
    counts = panel.point_counts()
    assert counts["difficulty:accepted"] == 600 * per_second        # the whole window drawn
    t, y = buf.view()
    inside = t >= t0 + 600
    best = y[inside][y[inside] >= 1e6]
    assert sorted(best.tolist()) == [1e6 + s for s in range(600, 1200)]   # every second's best
    assert "sampled" in panel.diff_plot.titleLabel.text and panel.shares_thinned > 0
    assert counts["accepted"] == 600


def test_pool_difficulty_is_a_line_on_the_log_axis(panel: ChartsPanel) -> None:
    panel.set_pool_difficulty(65536.0)
    assert panel.target_line.isVisible()
    assert panel.target_line.value() == pytest.approx(math.log10(65536.0))
    assert panel.target_line.angle == 0
    assert panel.pool_difficulty == 65536.0
    for bad in (None, 0.0, -1.0, math.inf):
        panel.set_pool_difficulty(bad)
        assert not panel.target_line.isVisible() and panel.pool_difficulty is None


def _luminance(colour: QtGui.QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in colour.getRgbF()[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_device_pens_are_distinct_and_readable_on_the_background(panel: ChartsPanel) -> None:
    names = [f"cpu{i}" for i in range(6)] + ["opencl0", "opencl1"]
    panel.add_rates(1_800_000_000.0, 8.0, dict.fromkeys(names, 1.0))
    colours = [panel.device_pen(n).color().name() for n in names]
    assert len(set(colours)) == len(names)
    bg = _luminance(QtGui.QColor(BACKGROUND))
    for c in colours + [panel._total.item.opts["pen"].color().name()]:
        contrast = (_luminance(QtGui.QColor(c)) + 0.05) / (bg + 0.05)
        assert contrast >= 3.0, f"{c} has contrast {contrast:.2f} on {BACKGROUND}"


def test_points_arrive_in_each_plot_while_mining(panel: ChartsPanel, qtbot) -> None:
    """Real mining: one CPU thread on the embedded pool at 16-bit shares."""
    miner = Miner(MinerConfig(threads=1, device_kinds=("cpu",), local_jobs=None,
                              local_difficulty_bits=16, local_job_interval=30.0))
    sub = miner.subscribe(maxsize=10000)
    answered: list[ShareEvent] = []

    def tick() -> None:                        # what the window's timer does, on this thread
        for event in sub.drain():
            if isinstance(event, ShareEvent) and event.accepted is not None:
                answered.append(event)
                outcome = "accepted" if event.accepted else (
                    "stale" if event.reason == "stale" else "rejected")
                panel.add_share(event.ts, outcome, event.difficulty)
        snap = miner.telemetry.snapshot()
        panel.add_rates(time.time(), snap["hashrate"],
                        {d["name"]: d["hashrate"] for d in snap["devices"]})
        status = miner.pool_status()
        if status and status[0]["difficulty"]:
            panel.set_pool_difficulty(status[0]["difficulty"])
        panel.refresh()

    timer = QtCore.QTimer()
    timer.timeout.connect(tick)
    miner.start()
    try:
        timer.start(200)
        qtbot.waitUntil(lambda: panel.point_counts()["total"] >= 5
                        and panel.point_counts()["cpu0"] >= 5
                        and panel.point_counts()["accepted"] >= 2
                        and panel.point_counts()["difficulty"] >= 2, timeout=30000)
    finally:
        timer.stop()
        miner.stop()
        sub.close()
    counts = panel.point_counts()
    assert counts["cpu0"] == counts["total"]
    _, rates = _data(panel._total.item)
    assert np.nanmax(rates) > 0                                  # real hashing was drawn
    accepted = [e for e in answered if e.accepted]
    assert panel.share_totals()["accepted"] == len(accepted)
    _, diffs = _data(panel._diffs["accepted"].item)
    assert diffs.min() >= 2.0 ** 16 / 2 ** 32 * 0.99       # every share met the 16-bit target
    # many shares a second: each second keeps a few points, always its best share
    assert 2 <= counts["difficulty:accepted"] <= len(accepted)
    assert diffs.max() == max(e.difficulty for e in accepted)


def test_every_share_is_plotted_while_the_ring_holds_them(panel: ChartsPanel) -> None:
    """231 shares over a minute (4 a second): 231 difficulty points, and the title says
    every share is drawn (it plotted about 2 a second before)."""
    t0 = 1_800_000_000.0
    for i in range(231):
        panel.add_share(t0 + i / 4, "accepted", 1.0 + i)
    panel.refresh(t0 + 60)
    assert panel.point_counts()["difficulty:accepted"] == 231
    assert panel.shares_thinned == 0
    assert "every share" in panel.diff_plot.titleLabel.text
