"""Solo mining a regtest node, where about half of all nonces are blocks.

Starts two regtest Bitcoin SV nodes (the ones the test suite uses: .tools/bsv-node, installed
by scripts/setup.sh; its getblocktemplate wants a connected peer), runs
``sgm --solo -o http://... --coinbase-addr ADDR -t N --time-limit S`` as a user would, and
reports the lines it printed, the blocks found / accepted, blocks per second, and beside it
the node's own round trip for one getblocktemplate (what bounds the block rate).

    python benchmarks/solo_flood.py [--seconds 20] [--threads 2] [--json]

Goal (issue "the hot loop all native"): fewer than 200 lines plus one per block, every block
accepted, the block rate bounded by the node's template round trip.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (path setup)
from _common import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_solo_node import ADDR, OTHER_ADDR, Node, bitcoind  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sgm-solo-bench-"))
    first = Node(bitcoind(), base / "n1")
    second = None
    try:
        first.wait_ready()
        second = Node(bitcoind(), base / "n2", cookie=True, connect=first)
        second.wait_ready()
        while first.rpc("getconnectioncount") < 1:
            time.sleep(0.2)
        first.rpc("generatetoaddress", 1, OTHER_ADDR)
        gbt = []
        for _ in range(20):
            t0 = time.perf_counter()
            first.rpc("getblocktemplate", {"rules": ["segwit"]})
            gbt.append(time.perf_counter() - t0)
        before = first.rpc("getblockcount")
        summary = base / "summary.json"
        r = subprocess.run([sys.executable, "-m", "sgm", "--solo", "-o", first.url,
                            "--coinbase-addr", ADDR, "-t", str(a.threads), "--devices", "cpu",
                            "--time-limit", str(a.seconds), "--summary-json", str(summary)],
                           cwd=ROOT, capture_output=True, text=True, timeout=a.seconds + 180)
        after = first.rpc("getblockcount")
        s = json.loads(summary.read_text())
        # the node's own cost of taking a block: validate and connect one of sgm's blocks
        # again (invalidateblock + reconsiderblock of the tip), beside its template round trip
        connect = []
        for _ in range(10):
            tip = first.rpc("getbestblockhash")
            first.rpc("invalidateblock", tip)
            t0 = time.perf_counter()
            first.rpc("reconsiderblock", tip)
            connect.append(time.perf_counter() - t0)
    finally:
        for n in (second, first):
            if n is not None:
                n.stop()
    lines = len(r.stdout.splitlines()) + len(r.stderr.splitlines())
    out = {"seconds": a.seconds, "threads": a.threads, "exit": r.returncode,
           "lines": lines, "bytes": len(r.stdout) + len(r.stderr),
           "blocks_found": s["blocks_found"], "blocks_accepted": s["blocks_accepted"],
           "node_blocks": after - before, "blocks_per_s": s["blocks_accepted"] / s["elapsed_s"],
           "stale": s["stale"], "hashrate": s["hashrate"],
           "gbt_ms_median": median(gbt) * 1e3, "connect_ms_median": median(connect) * 1e3}
    if a.json:
        print(json.dumps(out))
        return
    print(f"sgm --solo -t {a.threads} for {a.seconds:.0f} s: exit {r.returncode}, {lines} lines "
          f"({out['bytes']} bytes) printed")
    print(f"blocks found {out['blocks_found']}, accepted {out['blocks_accepted']} "
          f"(node height +{out['node_blocks']}), {out['blocks_per_s']:.1f} blocks/s; "
          f"stale {out['stale']}")
    node_ms = out['gbt_ms_median'] + out['connect_ms_median']
    print(f"node: getblocktemplate {out['gbt_ms_median']:.1f} ms + connecting a block "
          f"{out['connect_ms_median']:.1f} ms = {node_ms:.1f} ms a block (at most "
          f"{1e3 / node_ms:.0f} blocks/s); sgm: {1e3 / max(out['blocks_per_s'], 1e-9):.1f} ms "
          f"a block")


if __name__ == "__main__":
    main()
