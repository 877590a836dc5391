"""The engine as a front end sees it: the one module the desktop app (``sgm_gui``) imports.

Why one module: the app must not reach into the engine's internals (devices, the Stratum
client, the native core), so that the engine can change behind this surface; an
import-linter contract in ``pyproject.toml`` (run by ``tests/test_import_contracts.py``)
fails the suite when ``sgm_gui`` imports any other ``sgm`` module.

What is here:

* the facade: :class:`Miner`, its :class:`MinerConfig` / :class:`PoolConfig` and the
  telemetry event types its subscriptions deliver;
* validation helpers the app's forms share with the engine (one parser, one set of words):
  :func:`normalize_pool_url`, :func:`check_device_selection`, the CLI's argument helpers;
* the config file's schema (:mod:`sgm.config`): :func:`read_config` (the app reads its
  file leniently), :func:`flag_values` and :func:`miner_config` (the one way a key
  reaches the miner, as under ``sgm -c``), :func:`check_pool`;
* the benchmark entry point :func:`run_benchmark` (what ``sgm bench`` measures) and
  :func:`benchmark_plan` (how many steps and about how long, for a progress bar);
* the default CPU kernel: :func:`kernel_choice` (which one and why, as ``sgm devices``
  says) and :func:`save_kernel_choice` (keep one a person picked, for the next start);
* :data:`__version__` and :data:`LICENSE` for an About box;
* the farm view's poller (what ``sgm farm`` asks each rig): :class:`Rig`,
  :func:`parse_rig`, :func:`poll_rig` / :func:`poll_rigs` (coroutines that never raise: a
  rig that cannot be read comes back as a :class:`RigStatus` saying why) and
  :func:`farm_total`.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from sgm.cli_args import UsageError, pool_flags, positive_float, positive_int
from sgm.config import (
    APP_KEYS,
    GUI_KEYS,
    KEYS,
    ConfigError,
    FieldError,
    PoolEntry,
    Problem,
    check_pool,
    config_warnings,
    flag_values,
    json_type,
    miner_config,
    read_config,
)
from sgm.devices import DEFAULT_DEVICES, check_device_selection, cpu_count
from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.ops.farm import Rig, RigStatus, farm_total, parse_rig, poll_rig, poll_rigs
from sgm.stratum.client import PoolEndpoint, parse_pool_url
from sgm.telemetry import DeviceEvent, Event, JobEvent, LogEvent, ShareEvent, Subscription

__all__ = [
    "APP_KEYS", "ConfigError", "DEFAULT_DEVICES", "DeviceEvent", "Event", "FieldError", "GUI_KEYS",
    "JobEvent", "KEYS", "KernelChoice", "LICENSE", "LogEvent", "Miner", "MinerConfig", "PoolConfig",
    "PoolEndpoint", "PoolEntry", "Problem", "Rig", "RigStatus", "ShareEvent", "Subscription",
    "UsageError", "__version__", "benchmark_plan", "check_device_selection", "check_pool",
    "config_warnings", "cpu_count", "farm_total", "flag_values", "json_type", "kernel_choice",
    "miner_config",
    "normalize_pool_url", "parse_pool_url", "parse_rig", "poll_rig", "poll_rigs", "pool_flags",
    "positive_float", "positive_int", "read_config", "run_benchmark", "save_kernel_choice",
]

#: The licence the project is released under (pyproject.toml's SPDX expression).
LICENSE = "MIT"


def _version() -> str:
    """The installed distribution's version; a frozen bundle without metadata says so."""
    try:
        return metadata.version("sgm")
    except metadata.PackageNotFoundError:
        return "unknown"


__version__ = _version()


def normalize_pool_url(url: str) -> str:
    """``url`` in the one form the engine mines and the config file keeps: scheme, host and
    port (``pool.example.com:3333`` becomes ``stratum+tcp://pool.example.com:3333``).

    Raises ValueError with the engine's own message for a URL mining would refuse.
    """
    endpoint = parse_pool_url(url)
    # the parser prefixes the default scheme to a bare host:port; a URL with a scheme is
    # kept as written (its credentials and case included)
    return url.strip() if "://" in url else endpoint.url


def run_benchmark(device: str, seconds: float = 1.0, repeats: int = 3,
                  impls: list[str] | None = None, thread_counts: list[int] | None = None,
                  progress: Callable[..., Any] | None = None,
                  on_run: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """What ``sgm bench`` measures, with its defaults: on ``"cpu"`` every implementation at
    every thread count from 1 to the number of cores; on ``"opencl"`` every OpenCL device.
    ``progress`` gets a line of text and ``on_run`` the run's object (ratio 0.0 until the
    end) as each figure is measured.  Returns the ``sgm bench --json`` object; raises
    ValueError for an unknown device or implementation."""
    from sgm import _native
    from sgm.bench import run_bench, run_opencl_bench

    if device == "opencl":
        return run_opencl_bench(seconds=seconds, repeats=repeats, progress=progress,
                                on_run=on_run)
    if device != "cpu":
        raise ValueError(f"unknown benchmark device {device!r}: use cpu or opencl")
    chosen, counts = _cpu_plan(impls, thread_counts)
    for impl in chosen:
        _native.require_implementation(impl)
    return run_bench(chosen, counts, seconds=seconds, repeats=repeats, progress=progress,
                     on_run=on_run)


#: Seconds of the hashlib reference measured after each benchmark sample (sgm.bench).
_REFERENCE_S = 0.3
#: Seconds of each implementation's warm-up (sgm.bench).
_WARMUP_S = 0.2


def _cpu_plan(impls: list[str] | None, thread_counts: list[int] | None
              ) -> tuple[list[str], list[int]]:
    from sgm import _native

    chosen = list(impls) if impls else _native.available_implementations()
    counts = list(thread_counts) if thread_counts else list(range(1, cpu_count() + 1))
    return chosen, counts


def benchmark_plan(device: str, seconds: float = 1.0, repeats: int = 3,
                   impls: list[str] | None = None, thread_counts: list[int] | None = None
                   ) -> tuple[int | None, float | None]:
    """(progress steps, estimated seconds) of :func:`run_benchmark` with these arguments:
    one step per (implementation, thread count) on the CPU; ``(None, None)`` for OpenCL,
    whose device count is known only once it runs."""
    if device != "cpu":
        return None, None
    chosen, counts = _cpu_plan(impls, thread_counts)
    steps = len(chosen) * len(counts)
    estimate = _REFERENCE_S + len(chosen) * (
        _WARMUP_S + len(counts) * repeats * (seconds + _REFERENCE_S))
    return steps, estimate


@dataclass(frozen=True)
class KernelChoice:
    """The CPU kernel a new CPU device mines with when none is named, and why."""

    #: the kernel's name; None while this CPU and build were never calibrated (the first
    #: start of mining measures the kernels and keeps the fastest)
    impl: str | None
    #: why, in the words ``sgm devices`` uses
    reason: str
    #: SGM_IMPL names the kernel: a saved choice does not apply while it is set
    pinned: bool
    #: where the choice is kept
    path: str


def kernel_choice() -> KernelChoice:
    """Which CPU kernel mining uses by default and why (reads the kept choice; measures
    nothing, so a window may call it)."""
    from sgm._native import choice

    forced = os.environ.get("SGM_IMPL")
    data = None if forced else choice.load()
    impl = forced or (str(data["impl"]) if data is not None else None)
    return KernelChoice(impl, choice.explain(), bool(forced), str(choice.cache_path()))


def save_kernel_choice(impl: str, rates: dict[str, float] | None = None) -> KernelChoice:
    """Keep ``impl`` as this CPU's default kernel (what ``sgm bench --save-default`` keeps,
    but picked by a person; ``rates`` are the figures they picked it from).  Mining that
    runs now keeps its kernel: the choice applies from the next start of mining, in this
    process and later ones.  Raises ValueError for a kernel this CPU cannot run, OSError
    when the choice cannot be written."""
    from sgm._native import choice

    choice.save_choice(impl, rates)
    return kernel_choice()
