"""gui/widgets/log_pane.py: a thread-safe logging handler and a bounded, filtered pane."""
from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
from PySide6 import QtCore

from sgm_gui.widgets.log_pane import LogPane, QtLogHandler


@pytest.fixture
def pane(qtbot) -> LogPane:
    widget = LogPane(max_lines=200)
    qtbot.addWidget(widget)
    widget.resize(700, 300)
    widget.show()
    return widget


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger(f"sgm.test.logpane.{uuid.uuid4().hex}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def test_records_logged_on_a_plain_thread_appear_on_the_gui_thread(pane: LogPane, logger,
                                                                    qtbot) -> None:
    edits_on: set[int] = set()
    pane.view.document().contentsChanged.connect(
        lambda: edits_on.add(threading.get_ident()), QtCore.Qt.DirectConnection)
    pane.attach(logger)
    try:
        def work() -> None:
            for i in range(50):
                logger.info("line %d from a worker", i)
            logger.warning("worker done")

        workers = [threading.Thread(target=work) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        qtbot.waitUntil(lambda: pane.text().count("worker done") == 3, timeout=30000)
    finally:
        pane.detach()
    assert pane.text().count("from a worker") == 150
    assert edits_on == {threading.get_ident()}        # the document changed on this thread only
    assert "WARNING" in pane.text() and logger.name not in pane.text()   # no logger names
    assert pane.handler not in logger.handlers


def test_a_burst_of_records_wakes_the_gui_thread_a_few_times_not_once_per_record(
        pane: LogPane, logger, qtbot) -> None:
    """10,000 records from a worker (a share flood's log lines) cost the GUI thread a
    handful of queued wake-ups and flushes, never one queued call per record."""
    wakes: list[int] = []
    pane._wake.connect(lambda: wakes.append(1), QtCore.Qt.QueuedConnection)
    pane.attach(logger)
    try:
        worker = threading.Thread(target=lambda: [logger.info("flood line %d", i)
                                                  for i in range(10_000)])
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: "flood line 9999" in pane.text(), timeout=30000)
    finally:
        pane.detach()
    assert len(pane.lines()) == min(10_000, pane.max_lines)
    assert 1 <= len(wakes) <= 50, f"{len(wakes)} wake-ups for 10,000 records"


def test_the_handler_only_emits_a_signal(qtbot) -> None:
    handler = QtLogHandler()
    got: list[tuple[str, str, float]] = []
    handler.signal.connect(lambda *args: got.append(args), QtCore.Qt.QueuedConnection)
    record = logging.LogRecord("sgm.x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    t = threading.Thread(target=handler.handle, args=(record,))
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(got) == 1, timeout=30000)
    assert got[0] == ("ERROR", "boom now", record.created)   # no logger name for users
    assert handler.emitter.record is not None


def test_the_pane_keeps_at_most_max_lines(pane: LogPane) -> None:
    for i in range(3 * pane.max_lines):
        pane.append("INFO", f"message {i}", time.time())
    pane.flush()
    assert pane.view.document().blockCount() == pane.max_lines
    assert len(pane.lines()) == pane.max_lines
    text = pane.text().splitlines()
    assert text[-1].endswith(f"message {3 * pane.max_lines - 1}")
    assert text[0].endswith(f"message {2 * pane.max_lines}")
    # in several flushes, too
    for i in range(3 * pane.max_lines):
        pane.append("ERROR", f"again {i}", time.time())
        if i % 70 == 0:
            pane.flush()
    pane.flush()
    assert pane.view.document().blockCount() == pane.max_lines


def test_the_level_filter_hides_lower_levels(pane: LogPane, qtbot) -> None:
    now = time.time()
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        pane.append(level, f"a {level.lower()} line", now)
    pane.flush()
    assert "debug line" not in pane.text()          # INFO by default
    assert all(f"{w} line" in pane.text() for w in ("info", "warning", "error"))
    pane.level_combo.setCurrentText("WARNING")
    assert "info line" not in pane.text() and "debug line" not in pane.text()
    assert "warning line" in pane.text() and "error line" in pane.text()
    pane.append("INFO", "later info", now)           # arriving while filtered: kept, not shown
    pane.append("ERROR", "later error", now)
    qtbot.waitUntil(lambda: "later error" in pane.text(), timeout=30000)
    assert "later info" not in pane.text()
    pane.set_level("DEBUG")                          # everything kept comes back
    assert pane.level_combo.currentText() == "DEBUG"
    assert all(f"{w} line" in pane.text() for w in ("debug", "info", "warning", "error"))
    assert "later info" in pane.text()
    assert pane.text().splitlines()[0].split()[1] == "DEBUG"


def test_unknown_levels_and_clear(pane: LogPane) -> None:
    pane.append("NOTICE", "an odd level", 0.0)
    pane.flush()
    assert "an odd level" in pane.text()
    pane.clear()
    assert pane.text() == "" and pane.lines() == []


def test_attach_detach(pane: LogPane, logger) -> None:
    handler = pane.attach(logger)
    assert pane.attach(logger) is handler and logger.handlers.count(handler) == 1
    pane.detach()
    assert handler not in logger.handlers
    logger.error("nobody listens")                   # no handler left: nothing to crash


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_max_lines(bad, qtbot) -> None:
    with pytest.raises(ValueError, match="max_lines"):
        LogPane(max_lines=bad)


def test_choosing_debug_shows_debug_lines(pane: LogPane, qtbot) -> None:
    """The DEBUG choice showed nothing more: the loggers still logged at INFO."""
    logger = logging.getLogger("sgm.test_debug_choice")
    logger.setLevel(logging.INFO)
    pane.attach(logger)
    try:
        logger.debug("hidden detail")
        pane.set_level("DEBUG")
        logger.debug("visible detail")
        qtbot.waitUntil(lambda: "visible detail" in pane.view.toPlainText(), timeout=10_000)
        assert "hidden detail" not in pane.view.toPlainText()
        assert logger.getEffectiveLevel() == logging.DEBUG
    finally:
        pane.detach()
        logger.setLevel(logging.NOTSET)


def test_lines_from_two_paths_are_drawn_in_time_order(pane: LogPane, qtbot) -> None:
    """A telemetry line that arrives after a later logging record (its batch was 0.1 s
    late) is drawn in its place, not after it."""
    now = time.time()
    pane.append("INFO", "second", now)
    pane.append("INFO", "first", now - 0.05)      # came later by the slower path
    qtbot.waitUntil(lambda: "second" in pane.text(), timeout=10_000)
    text = pane.text()
    assert text.index("first") < text.index("second")
