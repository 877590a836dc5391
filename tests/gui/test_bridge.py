"""EngineBridge over a real Miner on the embedded pool: start in the background, plain-data
snapshots and event batches on the GUI thread, actions off the GUI thread, a clean stop,
and a start failure reported as a message."""
from __future__ import annotations

import threading

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
    assert sum(e.accepted is True for e in shares) == final["summary"]["accepted"]
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
