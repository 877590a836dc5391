"""The device table model: keyed by device name, one coalesced dataChanged per tick over
the dirty rows x live columns, never a reset for value changes, a checkable On column that
reads "pending" until the engine confirms, and Qt's own model consistency checks."""
from __future__ import annotations

from PySide6.QtCore import Qt

from sgm.miner import Miner
from sgm_gui.models.device_table import (
    COL_ACCEPTED,
    COL_ENABLED,
    COL_NAME,
    COL_RATE_5S,
    HEADERS,
    LIVE_FIRST,
    LIVE_LAST,
    DeviceTableModel,
    format_rate,
)

from .conftest import embedded


def device(name: str, hashes: int = 0, accepted: int = 0, enabled: bool = True,
           rate: float = 0.0) -> dict:
    """One entry of Miner.summary()["devices"] (the shape the model reads)."""
    return {"name": name, "kind": "cpu", "impl": "sha-ni", "hashes": hashes,
            "accepted": accepted, "enabled": enabled, "hw_errors": 0, "batch_size": 65536,
            "latency_ms": 100.0, "utilisation": 0.98,
            "rates": {"5s": rate, "1m": rate, "5m": rate, "15m": rate}}


def test_rows_are_keyed_by_name_and_a_thousand_updates_make_one_data_changed(qtbot, qtmodeltester):
    model = DeviceTableModel()
    resets, changes = [], []
    model.modelReset.connect(lambda: resets.append(1))
    model.dataChanged.connect(lambda tl, br, roles: changes.append((tl.row(), tl.column(),
                                                                     br.row(), br.column())))
    model.update_from_summary({"devices": [device("cpu0"), device("cpu1"), device("cpu2")]})
    assert model.rowCount() == 0          # nothing shown before the tick applies it
    model.apply()
    assert model.rowCount() == 3 and model.columnCount() == len(HEADERS)
    model.apply()
    changes.clear()
    for i in range(1000):   # a burst of snapshots between two ticks
        model.update_from_summary({"devices": [device("cpu0", hashes=i, accepted=i, rate=1e6),
                                               device("cpu1"),
                                               device("cpu2", hashes=i, rate=2e6)]})
    assert model.apply() is True
    assert model.apply() is False            # nothing new: nothing emitted
    assert changes == [(0, LIVE_FIRST, 2, LIVE_LAST)]   # one rectangle: dirty rows x live columns
    assert resets == []
    assert model.data(model.index(0, COL_ACCEPTED)) == "999"
    assert model.data(model.index(2, COL_RATE_5S)) == format_rate(2e6) == "2.00 MH/s"
    assert model.row("cpu2").hashes == 999
    # a device that appears later is inserted, the others keep their rows
    model.update_from_summary({"devices": [device("cpu0"), device("cpu1"), device("cpu2"),
                                           device("gpu0")]})
    model.apply()
    assert model.names() == ["cpu0", "cpu1", "cpu2", "gpu0"] and resets == []
    # a restart with fewer CPU threads: the devices it no longer has lose their rows
    model.update_from_summary({"devices": [device("cpu0"), device("gpu0")]})
    model.apply()
    assert model.names() == ["cpu0", "gpu0"] and resets == []
    assert model.data(model.index(1, COL_NAME)) == "gpu0"
    qtmodeltester.check(model)


def test_the_on_column_asks_the_engine_and_shows_pending_until_confirmed(qtbot):
    model = DeviceTableModel()
    model.update_from_summary({"devices": [device("cpu0"), device("cpu1")]})
    model.apply()
    idx = model.index(1, COL_ENABLED)
    assert model.flags(idx) & Qt.ItemFlag.ItemIsUserCheckable
    assert not model.flags(model.index(1, COL_NAME)) & Qt.ItemFlag.ItemIsUserCheckable
    assert model.data(idx, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    with qtbot.waitSignal(model.toggle_requested) as blocker:
        assert model.setData(idx, Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    assert blocker.args == ["cpu1", False]
    assert model.data(idx) == "pending"
    assert model.data(idx, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert model.disabled_devices() == ["cpu1"]
    # a snapshot from before the engine acted: still pending
    model.update_from_summary({"devices": [device("cpu0"), device("cpu1", enabled=True)]})
    model.apply()
    assert model.data(idx) == "pending"
    model.update_from_summary({"devices": [device("cpu0"), device("cpu1", enabled=False)]})
    model.apply()
    assert model.data(idx) == "off" and not model.row("cpu1").pending
    assert model.disabled_devices() == ["cpu1"]
    # the 5 s rate of a device on that did no work over the last second reads 0; one
    # switched off shows no work figures at all (blank, greyed), only its totals
    model.update_from_summary({"devices": [device("cpu0", rate=5e5),
                                           device("cpu1", enabled=False, rate=4e5)]},
                              rates_now={"cpu0": 0.0, "cpu1": 0.0})
    model.apply()
    assert model.data(model.index(0, COL_RATE_5S)) == "0 H/s"
    assert model.data(model.index(1, COL_RATE_5S)) == ""
    model.update_from_summary({"devices": [device("cpu0", rate=5e5),
                                           device("cpu1", enabled=False, rate=4e5)]},
                              rates_now={"cpu0": 5e5, "cpu1": 0.0})
    model.apply()
    assert model.data(model.index(0, COL_RATE_5S)) == "500.00 kH/s"


def test_the_model_reads_a_real_miner_summary(qtbot, qtmodeltester):
    miner = Miner(embedded(threads=2, bits=20))
    miner.start()
    try:
        qtbot.waitUntil(lambda: all(d["hashes"] > 0 for d in miner.summary()["devices"]),
                        timeout=30_000)
        summary = miner.summary()
    finally:
        miner.stop()
    model = DeviceTableModel()
    model.update_from_summary(summary)
    model.apply()
    assert model.names() == ["cpu0", "cpu1"]
    row = model.row("cpu0")
    assert row.kind == "cpu" and row.impl and row.batch_size > 0 and row.enabled
    assert model.data(model.index(0, COL_ENABLED)) == "on"
    qtmodeltester.check(model)
