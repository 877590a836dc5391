"""Fixtures of the desktop app's tests: a bridge that is always stopped at the end, the
engine-thread check, and small waiting helpers.

Every test here mines for real (the embedded pool, real hashing); the fixtures make sure no
miner outlives its test, because a leftover one would slow every later test on a small box.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

try:   # never a silent skip: without Qt these tests fail and say what to install
    import pyqtgraph  # noqa: F401
    import PySide6  # noqa: F401   (first: pyqtgraph binds to the Qt already imported)
except ImportError as exc:
    raise ImportError(f"the desktop app's tests need PySide6 and pyqtgraph: run "
                      f"scripts/setup.sh or pip install -e '.[test,gui]' ({exc})") from exc

from sgm.miner import Miner, MinerConfig  # noqa: E402
from sgm_gui.bridge import EngineBridge  # noqa: E402
from sgm_gui.main_window import MainWindow  # noqa: E402
from sgm_gui.settings import GuiSettings  # noqa: E402
from tests.conftest import wait_until  # noqa: E402


@pytest.fixture(autouse=True)
def _qt_objects_die_in_their_test(qapp):
    """Every Qt object a test made is destroyed before the next test, on the GUI thread,
    with its deferred deletions delivered.  Left to a later garbage collection, a window's
    menus were once destroyed in the middle of an import in a non-GUI test (with the GIL
    held) and hung the suite on a Qt lock."""
    yield
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    for _ in range(2):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        qapp.processEvents()
        gc.collect()

#: generous: a loaded 2-core box calibrates slowly
START_TIMEOUT_MS = 60_000


def engine_threads() -> list[str]:
    """Threads of the engine still alive (the engine names all of its threads sgm-*)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("sgm") and t.is_alive()]


def wait_no_engine_threads(timeout: float = 15.0) -> list[str]:
    """The engine threads still alive once none are left or ``timeout`` has passed."""
    wait_until(lambda: not engine_threads(), timeout, interval=0.05)
    return engine_threads()


def embedded(threads: int = 2, bits: int = 16, **kw) -> MinerConfig:
    """A config mining the embedded pool until stopped."""
    return MinerConfig(threads=threads, local_jobs=None, local_difficulty_bits=bits,
                       local_job_interval=kw.pop("job_interval", 30.0), **kw)


@pytest.fixture
def bridge(qtbot) -> Iterator[EngineBridge]:
    """A bridge whose miner is stopped (synchronously, off the GUI's hands) at teardown."""
    made: list[Miner] = []

    def factory(cfg: MinerConfig) -> Miner:
        miner = Miner(cfg)
        made.append(miner)
        return miner

    b = EngineBridge(miner_factory=factory)
    b.made = made  # type: ignore[attr-defined]
    yield b
    if b.running or b.busy:
        with qtbot.waitSignal(b.stopped, timeout=30_000, raising=False):
            b.stop()
    b.close()
    for m in made:
        m.stop()


@pytest.fixture
def open_window(qtbot, bridge, tmp_path):
    """open_window(config) -> a shown MainWindow that started mining; always closed (and
    mining stopped) at teardown."""
    windows: list[MainWindow] = []

    def make(config: MinerConfig, settings: GuiSettings | None = None,
             warnings: list[str] | None = None, start: bool = True) -> MainWindow:
        w = MainWindow(bridge, config, settings or GuiSettings(),
                       settings_path=tmp_path / "sgm.json", warnings=warnings)
        w.resize(1100, 700)
        w.show()
        windows.append(w)
        if start:
            with qtbot.waitSignal(bridge.started, timeout=START_TIMEOUT_MS):
                w.start_mining()
        return w

    yield make
    for w in windows:
        if w.isVisible() or bridge.running:
            with qtbot.waitSignal(w.closed, timeout=30_000, raising=False):
                w.request_quit()
