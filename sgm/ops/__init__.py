"""Operations: what farms and monitoring tools need around the miner.

* :mod:`~sgm.ops.cgminer_api` — the cgminer-compatible API (``--api-listen``, port 4028);
* :mod:`~sgm.ops.metrics`     — Prometheus ``/metrics`` (``--metrics-listen``);
* :mod:`~sgm.ops.logs`        — the rotating log file (``--log-file``);
* :mod:`~sgm.ops.sharelog`    — the CSV share log (``--sharelog``);
* :mod:`~sgm.ops.odds`        — the expected time to a block at the current hash rate.

Each reads the engine only through the :class:`~sgm.miner.Miner` facade and its
telemetry (snapshots and the event stream), never its private state.
"""
