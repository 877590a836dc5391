"""Prometheus metrics (``--metrics-listen HOST:PORT``): ``/metrics`` in the text format.

A custom collector reads the Miner facade at each scrape (``summary()``,
``telemetry.snapshot()``, ``pool_status()``), so the counters are the engine's own totals
and equal the final summary once mining stopped.  Names follow Prometheus' conventions:
``_total`` counters, base units (seconds, hashes per second), labels for the device, the
share result and reason, the pool.  Pool URLs are shown without any credentials.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sgm import __version__
from sgm.ops.odds import expected_block_seconds

if TYPE_CHECKING:
    from sgm.miner import Miner

__all__ = ["MinerCollector", "MetricsServer", "parse_listen"]

log = logging.getLogger(__name__)

POOL_STATES = ("connected", "connecting", "disconnected", "disabled", "local")


def parse_listen(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (loopback) -> (host, port); ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    try:
        value = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number (HOST:PORT)") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"{text!r}: port {value} is out of range 0..65535")
    return host, value


def _strip_credentials(url: str) -> str:
    from sgm.ops.cgminer_api import _no_credentials

    return _no_credentials(url)


class MinerCollector(Collector):
    """Everything sgm reports, read from the Miner at scrape time."""

    def __init__(self, miner: Miner) -> None:
        self.miner = miner
        self.started = time.time()

    def collect(self) -> Iterator[Metric]:
        m = self.miner
        summary = m.summary()
        snap = m.telemetry.snapshot()
        by_name = {d["name"]: d for d in snap["devices"]}

        info = GaugeMetricFamily("sgm_build_info", "sgm's version (the value is 1)",
                                 labels=["version"])
        info.add_metric([__version__], 1)
        yield info

        uptime = GaugeMetricFamily("sgm_uptime_seconds", "Seconds since mining started")
        uptime.add_metric([], summary["elapsed_s"])
        yield uptime

        hashes = CounterMetricFamily("sgm_hashes", "Hashes computed", labels=["device"])
        hw = CounterMetricFamily("sgm_hardware_errors", "Device results that failed the "
                                 "CPU re-check", labels=["device"])
        shares = CounterMetricFamily("sgm_shares", "Shares by the pool's verdict "
                                     "(result accepted / rejected / stale) and reason",
                                     labels=["device", "result", "reason"])
        rate = GaugeMetricFamily("sgm_hashrate_hashes_per_second", "Decaying average hash "
                                 "rate over a window (5s, 1m, 5m, 15m)",
                                 labels=["device", "window"])
        latency = GaugeMetricFamily("sgm_batch_latency_seconds", "Batch latency (pull to "
                                    "result, moving average)", labels=["device"])
        batch = GaugeMetricFamily("sgm_batch_size_nonces", "Nonces in the device's latest "
                                  "batch", labels=["device"])
        enabled = GaugeMetricFamily("sgm_device_enabled", "1 while the device may hash",
                                    labels=["device", "kind", "impl"])
        for d in summary["devices"]:
            name = d["name"]
            raw = by_name.get(name, {})
            hashes.add_metric([name], d["hashes"])
            hw.add_metric([name], d["hw_errors"])
            shares.add_metric([name, "accepted", ""], d["accepted"])
            shares.add_metric([name, "stale", "stale"], d["stale"])
            reasons = raw.get("rejected_reasons", {}) or {}
            for reason, n in sorted(reasons.items()):
                shares.add_metric([name, "rejected", str(reason)], n)
            for window, value in sorted(d.get("rates", {}).items()):
                rate.add_metric([name, window], value)
            latency.add_metric([name], d["latency_ms"] / 1e3)
            batch.add_metric([name], d["batch_size"])
            enabled.add_metric([name, d["kind"], d["impl"]], 1 if d["enabled"] else 0)
        yield from (hashes, hw, shares, rate, latency, batch, enabled)

        best = GaugeMetricFamily("sgm_best_share_difficulty", "Highest share difficulty found")
        best.add_metric([], summary["best_share_diff"])
        yield best

        total_rate = GaugeMetricFamily("sgm_hashrate_average_hashes_per_second",
                                       "Hash rate averaged over the whole run")
        total_rate.add_metric([], summary["hashrate"])
        yield total_rate

        blocks = CounterMetricFamily("sgm_blocks_found", "Blocks found (solo mining)")
        blocks.add_metric([], summary["blocks_found"])
        yield blocks

        state = GaugeMetricFamily("sgm_pool_state", "1 for the pool's connection state",
                                  labels=["pool", "state"])
        up = GaugeMetricFamily("sgm_pool_active", "1 for the pool mined now", labels=["pool"])
        diff = GaugeMetricFamily("sgm_pool_share_difficulty", "Share difficulty the active "
                                 "pool set", labels=["pool"])
        for row in m.pool_status():
            url = _strip_credentials(str(row["url"]))
            for s in POOL_STATES:
                state.add_metric([url, s], 1 if row["state"] == s else 0)
            up.add_metric([url], 1 if row["active"] else 0)
            if row.get("difficulty") is not None:
                diff.add_metric([url], float(row["difficulty"]))
        yield from (state, up, diff)

        netdiff = m.network_difficulty()
        if netdiff is not None:
            nd = GaugeMetricFamily("sgm_network_difficulty", "Block difficulty of the work "
                                   "mined now (from its nbits)")
            nd.add_metric([], netdiff)
            yield nd
            eta = expected_block_seconds(netdiff, summary["rates"].get("5m", 0.0)
                                         or summary["hashrate"])
            if eta is not None:
                g = GaugeMetricFamily("sgm_expected_block_seconds", "Mean time to a block at "
                                      "the current hash rate")
                g.add_metric([], eta)
                yield g


class MetricsServer:
    """``/metrics`` over HTTP on (host, port), from its own thread."""

    def __init__(self, miner: Miner, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(MinerCollector(miner))
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> MetricsServer:
        self._server, self._thread = start_http_server(self.port, addr=self.host,
                                                       registry=self.registry)
        self.port = self._server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
