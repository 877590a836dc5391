"""EngineBridge over a real Miner on the embedded pool: start in the background, plain-data
snapshots and event batches on the GUI thread, actions off the GUI thread, a clean stop,
and a start failure reported as a message."""
from __future__ import annotations

import threading
import time

from sgm.miner import MinerConfig
from sgm.telemetry import ShareEvent
from sgm_gui.bridge import instant_rates

from .conftest import START_TIMEOUT_MS, embedded, wait_no_engine_threads


def test_mining_through_the_bridge_delivers_snapshots_and_events_on_the_gui_thread(qtbot, bridge):
    gui_thread = threading.current_thread()
    seen_threads: set[threading.Thread] = set()
    snaps: list[dict] = []
    batches: list[list] = []

    def on_snap(s: dict) -> None:
        seen_threads.add(threading.current_thread())
        snaps.append(s)

    def on_events(evs: list) -> None:
        seen_threads.add(threading.current_thread())
        batches.append(evs)

    bridge.snapshot.connect(on_snap)
    bridge.events.connect(on_events)
    with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
        bridge.start(embedded(threads=2, bits=16))
    assert bridge.running
    qtbot.waitUntil(lambda: bool(snaps) and snaps[-1]["summary"]["accepted"] >= 3, timeout=30_000)
    with qtbot.waitSignal(bridge.stopped, timeout=30_000):
        bridge.stop()

    assert seen_threads == {gui_thread}          # queued to the GUI thread, never called on the engine's
    miner = bridge.made[0]
    final = snaps[-1]
    assert final["running"] is False
    # the last snapshot is the engine's final word
    assert final["summary"]["accepted"] == miner.summary()["accepted"] > 0
    assert final["summary"]["hashes"] == miner.summary()["hashes"]
    assert [p["state"] for p in snaps[-2]["pools"]] == ["local"]
    assert set(final["rates_now"]) == {"cpu0", "cpu1"}
    shares = [e for b in batches for e in b if isinstance(e, ShareEvent)]
    assert shares and all(e.accepted is not None for e in shares)   # verdicts, not "found"
    # every verdict reached the GUI, unless sampled out for the charts (counted); a loaded
    # box can starve the consumer long enough for one drain to exceed the sample cap
    charted = sum(e.accepted is True for e in shares)
    assert charted <= final["summary"]["accepted"] <= charted + bridge.dropped
    assert wait_no_engine_threads() == []


def test_a_config_the_engine_refuses_is_reported_by_failed_not_raised(qtbot, bridge):
    with qtbot.waitSignal(bridge.failed, timeout=10_000) as blocker:
        bridge.start(MinerConfig(threads=1, device_kinds=("no-such-device",)))
    assert "no-such-device" in blocker.args[0]
    assert not bridge.running and not bridge.busy
    # a stop of nothing still answers, so a closing window never waits forever
    with qtbot.waitSignal(bridge.stopped, timeout=10_000):
        bridge.stop()


def test_toggling_an_unknown_device_is_a_message_not_a_crash(qtbot, bridge):
    with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
        bridge.start(embedded(threads=1, bits=20))
    with qtbot.waitSignal(bridge.message, timeout=10_000) as blocker:
        bridge.set_device_enabled("gpu9", False)
    assert "gpu9" in blocker.args[0]
    assert bridge.running


def test_restart_with_another_pool_list_mines_a_new_session(qtbot, bridge):
    """What the window does when the user edits the pools: stop, start on the new list."""
    from sgm.pool import PoolThread

    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=30.0).start()
    try:
        with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
            bridge.start(embedded(threads=1, bits=16))
        from sgm.miner import PoolConfig
        from sgm_gui.bridge import pools_config
        with qtbot.waitSignals([bridge.stopped, bridge.started], timeout=START_TIMEOUT_MS):
            bridge.restart(pools_config(embedded(threads=1), [PoolConfig(pool.url, "w", "x")]))
        assert len(bridge.made) == 2 and not bridge.made[0].running
        qtbot.waitUntil(lambda: bridge.made[1].telemetry.total.accepted >= 1, timeout=30_000)
        rows = bridge.made[1].pool_status()
        assert rows[0]["url"] == pool.url and rows[0]["state"] == "connected"
        with qtbot.waitSignal(bridge.stopped, timeout=30_000):
            bridge.stop()
        assert pool.stats.accepted >= 1
    finally:
        pool.stop()


def test_instant_rates_read_zero_once_a_device_did_no_work():
    from collections import deque

    hist = deque([(0.0, {"a": 100, "b": 0}), (1.0, {"a": 100, "b": 500})])
    assert instant_rates(hist) == {"a": 0.0, "b": 500.0}
    assert instant_rates(deque([(0.0, {"a": 5})])) == {"a": 0.0}


def test_a_flood_of_shares_keeps_the_gui_responsive_and_the_counters_exact(qtbot, bridge, tmp_path):
    """The embedded pool at 8-bit shares: thousands of shares a second through the whole
    window.  A 50 ms QTimer records its own lateness (it must keep firing: the GUI thread is
    never blocked); after the stop the status bar, the table and the engine agree exactly,
    whatever chart samples were dropped (counted)."""
    from PySide6.QtCore import QTimer

    from sgm_gui.main_window import MainWindow
    from sgm_gui.settings import GuiSettings

    w = MainWindow(bridge, embedded(threads=2, bits=8), GuiSettings(),
                   settings_path=tmp_path / "sgm.json")
    w.show()
    lateness: list[float] = []
    last = [time.monotonic()]

    def beat() -> None:
        now = time.monotonic()
        lateness.append(max(0.0, (now - last[0]) * 1e3 - 50))
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(beat)
    try:
        with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
            w.start_mining()
        lateness.clear()
        last[0] = time.monotonic()
        timer.start(50)
        qtbot.waitUntil(lambda: bridge.miner.summary()["accepted"] >= 5000, timeout=120_000)
        qtbot.wait(2000)
        timer.stop()
        with qtbot.waitSignal(bridge.stopped, timeout=30_000):
            bridge.stop()
        s = bridge.miner.summary()
        qtbot.waitUntil(lambda: w.counters()["accepted"] == f"Accepted {s['accepted']:,}",
                        timeout=10_000)
        w.log_pane.flush()
        log_lines = w.log_pane.lines()
    finally:
        timer.stop()
        with qtbot.waitSignal(w.closed, timeout=30_000, raising=False):
            w.request_quit()

    lateness.sort()
    p50 = lateness[len(lateness) // 2]
    p99 = lateness[int(0.99 * (len(lateness) - 1))]
    worst = lateness[-1]
    print(f"\nflood: {s['accepted']} accepted in {s['elapsed_s']:.1f} s, {len(lateness)} beats, "
          f"lateness p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms, "
          f"chart samples dropped {bridge.dropped}")
    assert len(lateness) >= 20                   # the timer kept firing through the flood
    # the typical beat is on time; the tail is a benchmark figure, not asserted here (a
    # loaded 2-core box delays any thread now and then: benchmarks/gui.py measures the p99)
    assert p50 < 1000, f"GUI event loop stalled: median lateness {p50:.0f} ms"
    assert s["accepted"] >= 5000 and s["rejected"] == 0
    c = w.counters()
    assert c["stale"] == f"Stale {s['stale']:,}" and c["rejected"] == "Rejected 0"
    assert {n: w.model.row(n).accepted for n in w.model.names()} == \
        {d["name"]: d["accepted"] for d in s["devices"]}
    assert sum(w.charts.share_totals().values()) + bridge.dropped >= s["accepted"]
    assert len(log_lines) < 1000, "the log pane got per-share lines"   # not one per share
    assert wait_no_engine_threads() == []
