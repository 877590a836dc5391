"""The desktop app's cost while every core mines (issue 8's goals):

* GUI event-loop latency: a precise single-shot QTimer on the GUI thread, re-armed every
  20 ms, records how late it fires (p50 / p99 / max; goal: p99 < 50 ms);
* the window's own CPU use in % of one core: CPU time of the GUI thread plus the bridge's
  telemetry consumer thread over the steady part of the run (goal: < 5 %);
* total hash rate with the window open vs `sgm` on the same settings (-t = cores, the
  embedded pool, same share difficulty, `--devices cpu`), run alternately, median of the
  pairs' ratios (goal: >= 0.97).

Two variants: normal shares (20-bit, a few per second) and a flood (8-bit: thousands of
shares per second through the bridge).  Each GUI run is a child process of this script
running the real window (sgm_gui.main_window.MainWindow over sgm_gui.bridge.EngineBridge,
the config built by sgm_gui.app exactly as `sgm-gui` does); each CLI run is `python -m sgm`.
The Qt platform is whatever QT_QPA_PLATFORM says (offscreen when there is no display; under
`xvfb-run -a` the xcb platform paints into a real X server).  The timer's own wake-ups
(50 per second) are part of the CPU figure.

    python benchmarks/gui.py                       # 3 pairs x 20 s per variant (~5 min)
    python benchmarks/gui.py --seconds 30 --pairs 5 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, percentile  # (puts the repository first on sys.path)

ROOT = Path(__file__).resolve().parents[1]
#: seconds after mining started before the GUI measurements begin (calibration, first job)
WARMUP_S = 3.0
#: interval of the latency probe timer
PROBE_MS = 20


# --------------------------------------------------------------------------- child: the window
def _thread_cpu(thread_ident: int) -> float:
    """CPU seconds a thread of this process used so far (any thread, not only the caller)."""
    return time.clock_gettime(time.pthread_getcpuclockid(thread_ident))


def run_gui_child(seconds: float, threads: int, difficulty: int, out: Path) -> int:
    """Open the real window, mine `seconds` after it started, record the probe's lateness
    and the GUI-side threads' CPU, quit through the window as a user would, write JSON."""
    import threading

    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from sgm_gui.app import build_config, build_parser
    from sgm_gui.bridge import EngineBridge
    from sgm_gui.main_window import MainWindow
    from sgm_gui.settings import load_settings

    app = QApplication([sys.argv[0]])
    settings_dir = Path(tempfile.mkdtemp(prefix="sgm-gui-bench-"))
    settings_path = settings_dir / "sgm.json"     # never the user's own settings file
    settings, warnings = load_settings(settings_path)
    args = build_parser().parse_args(["-t", str(threads), "--devices", "cpu",
                                      "--difficulty", str(difficulty), "--duration", "15"])
    config = build_config(args, settings, settings_path, warnings)

    bridge = EngineBridge()
    window = MainWindow(bridge, config, settings, settings_path=settings_path, warnings=warnings)
    gui_ident = threading.get_ident()
    state: dict[str, Any] = {"lateness_ms": [], "measuring": False, "error": None}
    probe = QTimer()
    probe.setSingleShot(True)
    probe.setTimerType(Qt.TimerType.PreciseTimer)

    def on_probe() -> None:
        now = time.perf_counter()
        if state["measuring"]:
            state["lateness_ms"].append(max(0.0, (now - state["due"]) * 1000.0))
        state["due"] = now + PROBE_MS / 1000.0
        probe.start(PROBE_MS)

    probe.timeout.connect(on_probe)

    def begin() -> None:
        consumer = next((t for t in threading.enumerate() if t.name == "gui-telemetry"), None)
        if consumer is None or consumer.ident is None:
            state["error"] = "the bridge's consumer thread (gui-telemetry) is not running"
            window.request_quit()
            return
        state["consumer"] = consumer.ident
        state["cpu0"] = time.thread_time() + _thread_cpu(consumer.ident)
        state["t0"] = time.perf_counter()
        state["measuring"] = True
        QTimer.singleShot(int((seconds - WARMUP_S) * 1000), end)

    def end() -> None:
        state["measuring"] = False
        wall = time.perf_counter() - state["t0"]
        cpu = time.thread_time() + _thread_cpu(state["consumer"]) - state["cpu0"]
        state["gui_cpu_pct"] = 100.0 * cpu / wall
        state["wall_s"] = wall
        window.request_quit()

    def on_started() -> None:
        QTimer.singleShot(int(WARMUP_S * 1000), begin)

    def on_failed(reason: str) -> None:
        state["error"] = f"mining failed: {reason}"
        window.request_quit()

    def on_closed() -> None:
        miner = bridge.miner
        state["summary"] = miner.summary() if miner is not None else None
        state["dropped"] = bridge.dropped
        app.quit()

    bridge.started.connect(on_started)
    bridge.failed.connect(on_failed)
    window.closed.connect(on_closed)
    window.show()
    window.start_mining()
    on_probe()
    app.exec()
    probe.stop()

    lat = state["lateness_ms"]
    summary = state.get("summary") or {}
    result = {
        "error": state["error"],
        "platform": QApplication.platformName(),
        "probe_ticks": len(lat),
        "latency_p50_ms": percentile(lat, 0.50), "latency_p99_ms": percentile(lat, 0.99),
        "latency_max_ms": max(lat) if lat else float("nan"),
        "gui_cpu_pct": state.get("gui_cpu_pct", float("nan")),
        "hashrate": summary.get("hashrate", 0.0), "accepted": summary.get("accepted", 0),
        "elapsed_s": summary.get("elapsed_s", 0.0), "chart_samples_dropped": state.get("dropped"),
        "gui_thread": gui_ident,
        "devices": [{k: d.get(k) for k in ("name", "hashrate", "batch_size", "latency_ms",
                                           "utilisation", "enabled")}
                    for d in summary.get("devices", [])],
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["error"] is None else 1


# --------------------------------------------------------------------------- parent
def gui_run(seconds: float, threads: int, difficulty: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gui.json"
        cmd = [sys.executable, __file__, "--child-gui", str(out), "--seconds", str(seconds),
               "--threads", str(threads), "--difficulty", str(difficulty)]
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,
                           timeout=seconds + 120)
        if not out.is_file():
            sys.exit(f"gui run failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
        result = json.loads(out.read_text())
        if result["error"]:
            sys.exit(f"gui run failed: {result['error']}\n{r.stderr[-3000:]}")
        return result


def cli_run(seconds: float, threads: int, difficulty: int) -> dict[str, Any]:
    """`sgm` on the same settings; its run starts after calibration like the window's, and
    the hash rate is the same summary figure (hashes / elapsed)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cli.json"
        cmd = [sys.executable, "-m", "sgm", "-t", str(threads), "--devices", "cpu",
               "--difficulty", str(difficulty), "--duration", "15", "--jobs", "100000",
               "--time-limit", str(seconds), "-q", "--summary-json", str(out)]
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=seconds + 120,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if r.returncode != 0 or not out.is_file():
            sys.exit(f"sgm run failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
        return json.loads(out.read_text())


def variant(name: str, seconds: float, threads: int, difficulty: int,
            pairs: int) -> dict[str, Any]:
    guis, clis, ratios = [], [], []
    for i in range(pairs):
        # alternate which side goes first, so a drift of the machine hits both
        order = ("gui", "cli") if i % 2 == 0 else ("cli", "gui")
        got = {}
        for side in order:
            got[side] = (gui_run if side == "gui" else cli_run)(seconds, threads, difficulty)
        guis.append(got["gui"])
        clis.append(got["cli"])
        ratios.append(got["gui"]["hashrate"] / got["cli"]["hashrate"])
        print(f"  {name} pair {i + 1}: gui {got['gui']['hashrate'] / 1e6:.2f} MH/s "
              f"(p99 {got['gui']['latency_p99_ms']:.1f} ms, cpu {got['gui']['gui_cpu_pct']:.2f} %, "
              f"{got['gui']['accepted']} accepted) | sgm {got['cli']['hashrate'] / 1e6:.2f} MH/s "
              f"({got['cli']['accepted']} accepted) | ratio {ratios[-1]:.3f}", flush=True)
    return {
        "variant": name, "difficulty": difficulty, "platform": guis[0]["platform"],
        "latency_p50_ms": median([g["latency_p50_ms"] for g in guis]),
        "latency_p99_ms": median([g["latency_p99_ms"] for g in guis]),
        "latency_p99_worst_ms": max(g["latency_p99_ms"] for g in guis),
        "latency_max_ms": max(g["latency_max_ms"] for g in guis),
        "gui_cpu_pct": median([g["gui_cpu_pct"] for g in guis]),
        "gui_cpu_pct_worst": max(g["gui_cpu_pct"] for g in guis),
        "gui_mhs": median([g["hashrate"] for g in guis]) / 1e6,
        "cli_mhs": median([c["hashrate"] for c in clis]) / 1e6,
        "ratio": median(ratios), "ratios": ratios,
        # how much `sgm` alone varies between its own runs: a ratio closer to 1 than this
        # cannot be told apart from the machine's noise
        "cli_spread": (max(c["hashrate"] for c in clis) - min(c["hashrate"] for c in clis))
        / median([c["hashrate"] for c in clis]),
        "gui_accepted_per_s": median([g["accepted"] / max(g["elapsed_s"], 1e-9) for g in guis]),
        "chart_samples_dropped": max(g["chart_samples_dropped"] or 0 for g in guis),
        "runs": {"gui": guis, "cli": clis},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of each run (default 20)")
    p.add_argument("--pairs", type=int, default=3, help="GUI/CLI pairs per variant (default 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="CPU threads (default: every core)")
    p.add_argument("--difficulty", type=int, default=20, help="share bits, normal variant")
    p.add_argument("--flood-difficulty", type=int, default=8, help="share bits, flood variant")
    p.add_argument("--no-flood", action="store_true", help="only the normal variant")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--child-gui", metavar="OUT", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.seconds <= WARMUP_S + 2:
        p.error(f"--seconds must exceed {WARMUP_S + 2:g}")
    if a.child_gui:
        return run_gui_child(a.seconds, a.threads, a.difficulty, Path(a.child_gui))

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    command = "python benchmarks/gui.py " + " ".join(sys.argv[1:])
    print(f"# {command.strip()}\n# CPU: {cpu}, {os.cpu_count()} cores; -t {a.threads}; "
          f"{a.seconds:g} s per run, {a.pairs} pairs, GUI measured after {WARMUP_S:g} s", flush=True)
    results = [variant("normal", a.seconds, a.threads, a.difficulty, a.pairs)]
    if not a.no_flood:
        results.append(variant("flood", a.seconds, a.threads, a.flood_difficulty, a.pairs))

    print()
    print(f"{'variant':8} {'bits':>4} {'platform':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'GUI cpu %':>9} {'GUI MH/s':>9} {'sgm MH/s':>9} {'ratio':>6} {'sgm spread':>10} "
          f"{'shares/s':>9} {'dropped':>8}")
    for r in results:
        print(f"{r['variant']:8} {r['difficulty']:>4} {r['platform']:>9} "
              f"{r['latency_p50_ms']:7.2f} {r['latency_p99_ms']:7.2f} {r['latency_max_ms']:7.1f} "
              f"{r['gui_cpu_pct']:9.2f} {r['gui_mhs']:9.2f} {r['cli_mhs']:9.2f} "
              f"{r['ratio']:6.3f} {100 * r['cli_spread']:9.0f}% "
              f"{r['gui_accepted_per_s']:9.0f} {r['chart_samples_dropped']:>8}")
    print("goals: p99 < 50 ms, GUI cpu < 5 % of one core, ratio >= 0.97 (medians over the "
          "pairs; 'sgm spread' = (max - min) / median of sgm's own runs, the noise floor of the "
          "ratio; 'dropped' = chart samples only, the counters come from the engine)")
    if a.json:
        Path(a.json).write_text(json.dumps({"command": command, "cpu": cpu,
                                            "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
