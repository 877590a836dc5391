"""The solo work source against a fake node: RPC errors, malformed templates, a refused
connection and wrong credentials give clear messages (never a crash, never a block built
from rejected data); long polling and tip polling turn a new tip into a clean job; found
blocks reach submitblock and the node's answer is reported; the whole Miner mines a
recorded segwit template end to end."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest

from sgm import _native
from sgm.jobs import make_share, prepare_work
from sgm.miner import Miner, MinerConfig
from sgm.solo.block import Block, check_block
from sgm.solo.client import SoloClient, SoloConfig, SoloError
from sgm.solo.rpc import RpcAuthError, RpcClient, RpcConnectionError, RpcError, RpcProtocolError, parse_node_url
from tests.conftest import wait_until, wait_until_async
from tests.solo_helpers import FakeNode, load_template, sgm

REGTEST_ADDR = "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9"
REGTEST_P2PKH = "mfhE6jAUwjUDNZhaX1PAsDTKfneQF2Nshc"
MAINNET_ADDR = "bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv"


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cfg(node: FakeNode, address: str = REGTEST_ADDR, **kw) -> SoloConfig:
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.2)
    kw.setdefault("poll_interval", 0.1)
    return SoloConfig(url=node.url, address=address, **kw)


@pytest.fixture
def node():
    n = FakeNode().start()
    yield n
    n.stop()


# ------------------------------------------------------------------------ the RPC layer
def test_rpc_answers_and_errors_are_told_apart(node):
    async def main():
        rpc = RpcClient(parse_node_url(node.url), timeout=5)
        assert (await rpc.call("getblockchaininfo"))["chain"] == "regtest"
        with pytest.raises(RpcError) as err:
            await rpc.call("nosuchmethod")
        assert err.value.code == -32601 and "Method not found" in str(err.value)
        node.errors["getblocktemplate"] = (-10, "Bitcoin is downloading blocks...")
        with pytest.raises(RpcError, match="downloading blocks.*code -10"):
            await rpc.call("getblocktemplate", {"rules": ["segwit"]})
        node.errors.clear()
        node.mode = "chunked"
        assert (await rpc.call("getbestblockhash")) == node.template["previousblockhash"]
        for mode, pattern in (("garbage", "not JSON.*this is not json"),
                              ("html500", "HTTP 500.*not JSON"),
                              ("empty", "empty body"),
                              ("notrpc", "not a JSON-RPC reply")):
            node.mode = mode
            with pytest.raises(RpcProtocolError, match=pattern):
                await rpc.call("getblockcount")
        node.mode = "close"
        with pytest.raises(RpcConnectionError, match="closed the connection"):
            await rpc.call("getblockcount")
        node.mode, node.slow_s = "slow", 3.0
        with pytest.raises(RpcConnectionError, match="no answer .* within 0.3 s"):
            await rpc.call("getblockcount", timeout=0.3)
        node.mode = None
        bad = RpcClient(parse_node_url(node.url, password="wrong"), timeout=5)
        with pytest.raises(RpcAuthError, match="refused the RPC credentials .*401"):
            await bad.call("getblockcount")
        refused = RpcClient(parse_node_url(f"http://u:p@127.0.0.1:{free_port()}"), timeout=5)
        with pytest.raises(RpcConnectionError, match="cannot connect to the node"):
            await refused.call("getblockcount")

    run(main())


def test_cookie_file_credentials(node, tmp_path):
    cookie = tmp_path / ".cookie"
    cookie.write_text(f"{node.user}:{node.password}")

    async def main():
        ep = parse_node_url(f"http://127.0.0.1:{node.port}", cookie_file=str(cookie))
        assert (await RpcClient(ep).call("getblockchaininfo"))["chain"] == "regtest"
        cookie.write_text("__cookie__:stale")          # the node restarted: a new cookie
        with pytest.raises(RpcAuthError, match=r"cookie file .*\.cookie"):
            await RpcClient(ep).call("getblockchaininfo")
        cookie.unlink()
        with pytest.raises(RpcAuthError, match="cannot read the RPC cookie file"):
            await RpcClient(ep).call("getblockchaininfo")

    run(main())


def test_node_url_parsing():
    ep = parse_node_url("http://alice:s%3Acret@127.0.0.1:18443")
    assert (ep.host, ep.port, ep.user, ep.password, ep.tls) == ("127.0.0.1", 18443, "alice", "s:cret", False)
    assert parse_node_url("127.0.0.1:8332", "u", "p").user == "u"
    assert parse_node_url("https://h:1/wallet/w").path == "/wallet/w"
    for bad, pattern in (("stratum+tcp://h:1", "http:// or https://"), ("http://h", "needs a port"),
                         ("", "empty"), ("http://:5", "no host"), ("http://h:0", "port 0")):
        with pytest.raises(ValueError, match=pattern):
            parse_node_url(bad)
    with pytest.raises(ValueError, match="not both"):
        parse_node_url("http://u:p@h:1", cookie_file="/x")


# ---------------------------------------------------------------- start-up: clear errors
def _start_error(node: FakeNode, address: str = REGTEST_ADDR, **kw) -> tuple[str, list]:
    jobs: list = []

    async def main():
        client = SoloClient(cfg(node, address, **kw), on_job=jobs.append)
        with pytest.raises(SoloError) as err:
            await client.start()
        await client.close()
        return str(err.value)

    return run(main()), jobs


@pytest.mark.parametrize("change,pattern", [
    (lambda t: t.pop("bits"), r"field 'bits' is missing"),
    (lambda t: t.pop("previousblockhash"), r"field 'previousblockhash' is missing"),
    (lambda t: t.pop("coinbasevalue"), r"field 'coinbasevalue' is missing"),
    (lambda t: t.update(height="213"), r"field 'height' must be an integer, got str"),
    (lambda t: t.update(height=True), r"field 'height' must be an integer, got bool"),
    (lambda t: t.update(curtime=1.5), r"field 'curtime' must be an integer, got float"),
    (lambda t: t.update(transactions={}), r"field 'transactions' must be a list, got dict"),
    (lambda t: t.update(bits="207fffzz"), r"field 'bits' is not 8 hex digits"),
    (lambda t: t.update(bits=545259519), r"field 'bits' must be a hex string, got int"),
    (lambda t: t.update(previousblockhash="00" * 31), r"'previousblockhash' is not 64 hex digits"),
    (lambda t: t.update(coinbasevalue=-1), r"'coinbasevalue' = -1 is outside"),
    (lambda t: t["transactions"][1].pop("data"), r"transactions\[1\]\.data is missing"),
    (lambda t: t["transactions"][0].update(data="zz"), r"transactions\[0\]\.data' is not hex"),
    (lambda t: t["transactions"][3].update(txid="11" * 32), r"transactions\[3\]\.txid does not match"),
    (lambda t: t.update(default_witness_commitment="6a24aa21a9ed" + "00" * 32),
     r"'default_witness_commitment' does not match"),
    (lambda t: t.update(longpollid=17), r"'longpollid' must be a string"),
])
def test_a_bad_template_is_refused_naming_the_field(node, change, pattern):
    change(node.template)
    message, jobs = _start_error(node)
    assert jobs == []                      # no job, so no block, from rejected data
    assert "getblocktemplate" in message
    import re
    assert re.search(pattern, message), message


def test_a_template_that_is_not_an_object(node):
    node.template = ["not", "an", "object"]
    message, jobs = _start_error(node)
    assert "expected an object, got list" in message and jobs == []


@pytest.mark.parametrize("setup,pattern", [
    (lambda n: n.errors.update(getblocktemplate=(-10, "Bitcoin is downloading blocks...")),
     r"downloading blocks.*code -10.*still syncing"),
    (lambda n: n.errors.update(getblocktemplate=(-9, "Bitcoin is not connected!")),
     r"not connected.*no peers"),
    (lambda n: n.errors.update(getblockchaininfo=(-28, "Loading block index...")),
     r"Loading block index"),
    (lambda n: setattr(n, "mode", "garbage"), r"not JSON"),
    (lambda n: setattr(n, "mode", "html500"), r"HTTP 500"),
    (lambda n: setattr(n, "mode", "notrpc"), r"not a JSON-RPC reply"),
    (lambda n: setattr(n, "mode", "close"), r"closed the connection"),
    (lambda n: setattr(n, "password", "other"), r"refused the RPC credentials"),
    (lambda n: setattr(n, "chain", "main"), r"regtest address, but the node's chain is main"),
])
def test_node_problems_at_start_are_one_clear_message(node, setup, pattern):
    import re
    client_cfg = cfg(node)           # credentials taken before the node changes them
    setup(node)

    async def main():
        client = SoloClient(client_cfg, on_job=lambda j: None)
        with pytest.raises(SoloError) as err:
            await client.start()
        return str(err.value)

    message = run(main())
    assert re.search(pattern, message), message


def test_a_refused_connection_is_a_clear_message():
    async def main():
        c = SoloConfig(url=f"http://u:p@127.0.0.1:{free_port()}", address=REGTEST_ADDR)
        with pytest.raises(SoloError, match=r"cannot connect to the node at http://127\.0\.0\.1"):
            await SoloClient(c, on_job=lambda j: None).start()

    run(main())


def test_wrong_network_and_segwit_on_a_chain_without_it_are_refused(node):
    message, _ = _start_error(node, MAINNET_ADDR)
    assert "--coinbase-addr" in message and "mainnet address, but the node's chain is regtest" in message
    # a Bitcoin SV-like template: no rules, no witness commitment, no witness data
    node.template = load_template()
    node.template["transactions"] = [t for t in node.template["transactions"] if t["txid"] == t["hash"]]
    node.template.pop("default_witness_commitment")
    node.template.pop("rules")
    message, _ = _start_error(node, REGTEST_ADDR)
    assert "segwit address" in message and "base58" in message


def test_a_node_that_refuses_the_rules_parameter_is_asked_plainly(node):
    node.refuse_rules = True

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        await client.close()
        assert len(jobs) == 1
        gbt = [p for m, p in node.calls if m == "getblocktemplate"]
        assert gbt[0] == [{"rules": ["segwit"]}] and gbt[-1] == [{}]

    run(main())


# ------------------------------------------------------------------- new work arrives
def _collect(node: FakeNode, **kw):
    jobs: list = []
    events: list = []
    client = SoloClient(cfg(node, **kw), on_job=jobs.append, on_event=events.append)
    return client, jobs, events


@pytest.mark.parametrize("longpoll", [True, False])
def test_a_new_tip_becomes_a_clean_job_and_new_transactions_a_non_clean_one(node, longpoll):
    if not longpoll:
        node.template.pop("longpollid")

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        task = asyncio.create_task(client.run())
        try:
            assert len(jobs) == 1 and jobs[0].clean_jobs
            if longpoll:
                assert await wait_until_async(lambda: node.longpolls >= 1), "no long poll was made"
            loop = asyncio.get_running_loop()
            new_prev = await loop.run_in_executor(None, node.new_tip)
            assert await wait_until_async(lambda: len(jobs) >= 2), "the new tip never became a job"
            assert jobs[1].clean_jobs
            assert jobs[1].prevhash == bytes.fromhex(new_prev)[::-1]
            # same tip, one transaction fewer: a non-clean job (tip polling sees it at the
            # next full refresh)
            client.config.refresh_interval = 0.2
            def fewer(t):
                t["transactions"].pop()
                t.pop("default_witness_commitment")    # sgm computes it then
            await loop.run_in_executor(None, node.update, fewer)
            assert await wait_until_async(lambda: len(jobs) >= 3), "the new transaction set never became a job"
            assert not jobs[2].clean_jobs and jobs[2].prevhash == jobs[1].prevhash
            assert len(jobs[2].merkle_branch) <= len(jobs[1].merkle_branch)
            assert ("getblocktemplate" in node.methods())
            if not longpoll:
                assert "getbestblockhash" in node.methods()
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


@pytest.mark.parametrize("longpoll", [False, True])
def test_the_node_going_away_pauses_once_and_coming_back_gives_a_clean_job(node, longpoll):
    if not longpoll:
        node.template.pop("longpollid")

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        task = asyncio.create_task(client.run())
        try:
            if longpoll:
                assert await wait_until_async(lambda: node.longpolls >= 1)
            node.mode = "close"
            node.cut_longpolls()
            assert await wait_until_async(lambda: any(e.kind == "lost" for e in events))
            lost = [e for e in events if e.kind == "lost"]
            assert lost[0].pause and lost[0].level == "WARNING"
            # several retries with backoff (the node saw them: proof that time went by)...
            calls = len(node.calls)
            assert await wait_until_async(lambda: len(node.calls) >= calls + 3)
            assert len([e for e in events if e.kind == "lost"]) == 1    # ...said once
            n_calls = len(node.calls)
            assert n_calls < 40, "retrying without backoff"
            # a malformed template is no better than no node: still no job from it
            node.mode = None
            node.template.pop("bits")
            calls = len(node.calls)
            # the client asked again and got the malformed template (a positive event)...
            assert await wait_until_async(lambda: len(node.calls) >= calls + 2)
            assert len(jobs) == 1                   # ...and made no job of it
            node.template = load_template()         # the same tip as before the outage
            if not longpoll:
                node.template.pop("longpollid")
            assert await wait_until_async(lambda: any(e.kind == "back" for e in events))
            assert await wait_until_async(lambda: len(jobs) == 2)
            assert jobs[1].clean_jobs and jobs[1].prevhash == jobs[0].prevhash
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


def test_a_long_poll_that_is_cut_falls_back_to_a_plain_request(node):
    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        task = asyncio.create_task(client.run())
        try:
            assert await wait_until_async(lambda: node.longpolls >= 1)
            plain = sum(1 for m, p in node.calls if m == "getblocktemplate" and "longpollid" not in p[0])
            node.cut_longpolls()                # the answer to the long poll never comes
            # a plain request follows at once (the node is there), then a new long poll
            assert await wait_until_async(lambda: sum(1 for m, p in node.calls if m == "getblocktemplate"
                                           and "longpollid" not in p[0]) > plain)
            assert await wait_until_async(lambda: node.longpolls >= 2)
            assert not any(e.kind == "lost" for e in events)     # not an outage
            new_prev = await asyncio.get_running_loop().run_in_executor(None, node.new_tip)
            assert await wait_until_async(lambda: any(j.prevhash == bytes.fromhex(new_prev)[::-1] for j in jobs))
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


# ------------------------------------------------------------------------- blocks
def _share(job, start=0):
    prepared = prepare_work(job, 0)
    res = _native.scan(prepared.midstate, prepared.tail, start, 1 << 16, job.target)
    return make_share(job, prepared, res.nonces[0])


def test_a_found_block_is_submitted_checked_and_counted(node):
    node.advance_on_block = False

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        task = asyncio.create_task(client.run())
        try:
            share = _share(jobs[0])
            verdict = await client.submit(share)
            assert verdict.accepted is True and verdict.reason is None
            assert len(node.submitted) == 1
            block = Block.parse(bytes.fromhex(node.submitted[0]))
            tmpl = node.template
            check_block(block, height=tmpl["height"], target=int(tmpl["target"], 16),
                        coinbase_value=tmpl["coinbasevalue"])
            assert block.txs[0].outputs[-1].script_pubkey.hex() == tmpl["default_witness_commitment"]
            assert (client.blocks_found, client.blocks_accepted) == (1, 1)
            kinds = [e.kind for e in events]
            assert "block_found" in kinds and "block_result" in kinds
            assert [e for e in events if e.kind == "block_found"][0].pause
            # a second block at the same height is not sent
            again = await client.submit(_share(jobs[0], start=1 << 16))
            assert again.accepted is False and not again.sent and "already found" in again.reason
            assert len(node.submitted) == 1
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


@pytest.mark.parametrize("answer", [
    "high-hash", "bad-cb-height", "duplicate-invalid", "rejected",
    "rejected: block contains transaction with witness data, yet no witness commitment present",
])
def test_the_nodes_refusal_is_reported_as_it_is_and_work_resumes(node, answer):
    node.submit_answer = answer

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        task = asyncio.create_task(client.run())
        try:
            verdict = await client.submit(_share(jobs[0]))
            assert verdict.accepted is False and verdict.reason == answer and verdict.sent
            assert not verdict.stale
            assert (client.blocks_found, client.blocks_accepted, client.blocks_rejected,
                    client.blocks_stale) == (1, 0, 1, 0)
            result = [e for e in events if e.kind == "block_result"][0]
            assert answer in result.message and result.level == "ERROR"
            assert "REJECTED" in result.message and result.data["outcome"] == "rejected"
            # the devices were paused for the block: fresh (clean) work on the same tip
            assert await wait_until_async(lambda: len(jobs) >= 2)
            assert jobs[-1].clean_jobs and jobs[-1].prevhash == jobs[0].prevhash
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


@pytest.mark.parametrize("answer", ["inconclusive", "duplicate-inconclusive",
                                    "rejected: already have block (orphan) 0f00"])
def test_a_block_the_node_keeps_off_its_best_chain_is_stale_not_rejected(node, answer):
    """Bitcoin Core answers "inconclusive" to a valid block that lost the race for its
    height: counted stale (orphaned), logged as a warning, never as REJECTED."""
    node.submit_answer = answer

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        task = asyncio.create_task(client.run())
        try:
            verdict = await client.submit(_share(jobs[0]))
            assert verdict.accepted is False and verdict.sent and verdict.stale
            assert answer in verdict.reason
            assert (client.blocks_found, client.blocks_accepted, client.blocks_rejected,
                    client.blocks_stale) == (1, 0, 0, 1)
            result = [e for e in events if e.kind == "block_result"][0]
            assert result.level == "WARNING" and "STALE" in result.message
            assert "REJECTED" not in result.message and result.data["outcome"] == "stale"
            # the height is taken: a second block on that tip is not sent
            again = await client.submit(_share(jobs[0], start=1 << 16))
            assert again.accepted is False and not again.sent and again.stale
            assert len(node.submitted) == 1 and client.blocks_found == 1
            assert client.summary["blocks_stale"] == 1
        finally:
            await client.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(main())


@pytest.mark.parametrize("answer", ["duplicate", "rejected: already have block 0f00"])
def test_a_block_the_node_already_has_is_counted_accepted_once(node, answer):
    """"duplicate" (Core, SV) / "already have block" (btcd): the node holds this very
    block as valid -- an earlier try of ours got through."""
    node.submit_answer = answer
    node.advance_on_block = False

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        try:
            verdict = await client.submit(_share(jobs[0]))
        finally:
            await client.close()
        assert verdict.accepted is True and verdict.reason == answer
        assert (client.blocks_found, client.blocks_accepted, client.blocks_rejected,
                client.blocks_stale) == (1, 1, 0, 0)
        result = [e for e in events if e.kind == "block_result"][0]
        assert result.level == "WARNING" and "already had it" in result.message

    run(main())


def test_a_lost_reply_is_retried_and_the_nodes_duplicate_counts_once(node):
    """The node got the block but its reply was lost: sgm sends it again, the node
    answers "duplicate", and the block is accepted, once."""
    node.drop_submits = 1
    node.submit_answer = "duplicate"
    node.advance_on_block = False

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        try:
            verdict = await client.submit(_share(jobs[0]))
        finally:
            await client.close()
        assert len(node.submitted) == 2 and node.submitted[0] == node.submitted[1]
        assert verdict.accepted is True and verdict.reason == "duplicate"
        assert (client.blocks_found, client.blocks_accepted, client.blocks_rejected,
                client.blocks_stale, client.blocks_unanswered) == (1, 1, 0, 0, 0)

    run(main())


@pytest.mark.parametrize("answer", [True, 0, {"result": "ok"}])
def test_an_answer_that_is_neither_null_nor_a_reason_is_unanswered(node, answer):
    node.submit_answer = answer

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        try:
            verdict = await client.submit(_share(jobs[0]))
        finally:
            await client.close()
        assert verdict.accepted is None and "unexpected submitblock answer" in verdict.reason
        assert (client.blocks_found, client.blocks_accepted, client.blocks_rejected,
                client.blocks_stale, client.blocks_unanswered) == (1, 0, 0, 0, 1)

    run(main())


def test_an_rpc_error_from_submitblock_is_a_rejection(node):
    node.errors["submitblock"] = (-22, "Block decode failed")

    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        verdict = await client.submit(_share(jobs[0]))
        await client.close()
        assert verdict.accepted is False and verdict.reason == "Block decode failed"

    run(main())


def test_stale_shares_are_not_submitted(node):
    async def main():
        client, jobs, events = _collect(node)
        await client.start()
        share = _share(jobs[0])
        client._works.clear()          # as after a new tip
        verdict = await client.submit(share)
        await client.close()
        assert verdict.accepted is False and not verdict.sent and "stale" in verdict.reason
        assert node.submitted == []

    run(main())


# ----------------------------------------------------------------- the whole Miner
def test_the_miner_mines_a_recorded_segwit_template_end_to_end(node):
    """Devices, scheduler and the solo source together: blocks of the recorded Core
    template (segwit transactions, commitment) reach the node, valid."""
    miner = Miner(MinerConfig(threads=1, solo=cfg(node)))
    miner.start()
    try:
        assert wait_until(lambda: len(node.submitted) >= 2, 60), "no blocks reached the node"
    finally:
        miner.stop()
    summary = miner.summary()
    assert summary["blocks_found"] >= 2 and summary["blocks_accepted"] >= 2
    assert summary["accepted"] >= 2 and summary["hw_errors"] == 0
    template = load_template()
    for i, block_hex in enumerate(node.submitted[:2]):
        block = Block.parse(bytes.fromhex(block_hex))
        check_block(block, height=template["height"] + i, target=int(template["target"], 16),
                    coinbase_value=template["coinbasevalue"])
        assert block.serialize().hex() == block_hex
        assert len(block.txs) == 1 + len(template["transactions"])
        assert block.txs[0].witnesses == ((bytes(32),),)
    # the second block builds on the first: a new tip became a clean job
    first, second = (Block.parse(bytes.fromhex(b)) for b in node.submitted[:2])
    assert second.prev_hash == first.hash


# ----------------------------------------------------------------- the command line
def test_cli_solo_with_a_bad_template_exits_1_with_the_field_named(node):
    node.template.pop("curtime")
    r = sgm("--solo", "-o", node.url, "--coinbase-addr", REGTEST_ADDR, "-t", "1",
            "--time-limit", "5")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "field 'curtime' is missing" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_cli_solo_refused_connection_and_wrong_credentials_exit_1_clearly(node):
    r = sgm("--solo", "-o", f"http://u:p@127.0.0.1:{free_port()}", "--coinbase-addr",
            REGTEST_ADDR, "-t", "1", "--time-limit", "5")
    assert r.returncode == 1 and "cannot connect to the node" in r.stderr
    assert "Traceback" not in r.stderr
    r = sgm("--solo", "-o", f"http://127.0.0.1:{node.port}", "-u", node.user, "-p", "nope",
            "--coinbase-addr", REGTEST_ADDR, "-t", "1", "--time-limit", "5")
    assert r.returncode == 1 and "refused the RPC credentials" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("address", [MAINNET_ADDR, "1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo",
                                     "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"])
def test_cli_solo_an_address_of_another_network_exits_2_before_mining(node, address):
    """A wrong-network address is a configuration error like a malformed one: exit 2,
    found at start (the node's chain is asked first), nothing hashed or submitted."""
    r = sgm("--solo", "-o", node.url, "--coinbase-addr", address, "-t", "1",
            "--time-limit", "5")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "sgm: error: --coinbase-addr:" in r.stderr and "the node's chain is regtest" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "device " not in r.stdout and node.submitted == []
    assert "getblocktemplate" not in node.methods()


def test_cli_solo_a_segwit_address_on_a_chain_without_segwit_exits_2(node):
    # a Bitcoin SV-like node: no segwit in its soft forks nor in its templates
    node.template = load_template()
    node.template["transactions"] = [t for t in node.template["transactions"] if t["txid"] == t["hash"]]
    node.template.pop("default_witness_commitment")
    node.template.pop("rules")
    node.chaininfo = {"chain": "regtest", "softforks": [
        {"id": "bip34", "version": 2, "reject": {"status": True}}]}
    r = sgm("--solo", "-o", node.url, "--coinbase-addr", REGTEST_ADDR, "-t", "1",
            "--time-limit", "5")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "segwit address" in r.stderr and "base58" in r.stderr
    assert node.submitted == []


def test_cli_solo_mines_the_fake_node_and_writes_blocks_to_the_summary(node, tmp_path):
    out = tmp_path / "summary.json"
    cookie = tmp_path / ".cookie"
    cookie.write_text(f"{node.user}:{node.password}")
    r = sgm("--solo", "-o", f"http://127.0.0.1:{node.port}", "--rpc-cookie", str(cookie),
            "--coinbase-addr", REGTEST_P2PKH, "-t", "1", "--time-limit", "4", "-q",
            "--summary-json", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert summary["blocks_found"] >= 1 and summary["blocks_accepted"] >= 1
    assert node.submitted
    assert "blocks: found" in r.stdout


def test_cli_solo_a_stale_block_is_counted_apart_in_the_summary(node, tmp_path):
    """The node keeps the block off its best chain ("inconclusive"): the summary counts
    it in blocks_stale, not blocks_rejected, and the log says STALE, not REJECTED."""
    node.submit_answer = "inconclusive"
    out = tmp_path / "summary.json"
    r = sgm("--solo", "-o", node.url, "--coinbase-addr", REGTEST_P2PKH, "-t", "1",
            "--time-limit", "4", "--summary-json", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert len(node.submitted) == 1      # the height is taken: no second block on that tip
    assert (summary["blocks_found"], summary["blocks_accepted"], summary["blocks_rejected"],
            summary["blocks_stale"], summary["blocks_unanswered"]) == (1, 0, 0, 1, 0)
    assert "STALE" in r.stdout + r.stderr and "REJECTED" not in r.stdout + r.stderr
    assert " ERROR " not in r.stderr


def test_cli_solo_rejected_blocks_are_counted_in_the_summary(node, tmp_path):
    node.submit_answer = "bad-txnmrklroot"
    out = tmp_path / "summary.json"
    r = sgm("--solo", "-o", node.url, "--coinbase-addr", REGTEST_P2PKH, "-t", "1",
            "--time-limit", "4", "-q", "--summary-json", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(out.read_text())
    assert node.submitted and summary["blocks_accepted"] == summary["blocks_stale"] == 0
    # a block whose submitblock call the stop cut short is found but has no verdict
    assert 1 <= summary["blocks_rejected"] <= summary["blocks_found"] <= len(node.submitted) + 1
    assert summary["blocks_found"] - summary["blocks_rejected"] <= 1


@pytest.mark.parametrize("args,pattern", [
    (["--solo", "-o", "http://u:p@127.0.0.1:1"], "needs --coinbase-addr"),
    (["--solo", "-o", "http://u:p@127.0.0.1:1", "--coinbase-addr", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"],
     "checksum"),
    (["--solo", "-o", "stratum+tcp://127.0.0.1:1", "--coinbase-addr", REGTEST_ADDR], r"http:// or https://"),
    (["--solo", "-o", "http://127.0.0.1:1", "--coinbase-addr", REGTEST_ADDR], "RPC credentials"),
    (["--solo", "-o", "http://127.0.0.1:1", "--coinbase-addr", REGTEST_ADDR, "--rpc-cookie",
      "/nonexistent/.cookie"], "cannot read the RPC cookie file"),
    (["--solo", "--coinbase-addr", REGTEST_ADDR], "needs the node's URL"),
    (["--solo", "-o", "http://u:p@h:1", "-o", "http://u:p@h:2", "--coinbase-addr", REGTEST_ADDR],
     "single -o"),
    (["--solo", "-o", "http://u:p@h:1", "--coinbase-addr", REGTEST_ADDR, "--suggest-diff", "2"],
     "pool option"),
    (["--coinbase-addr", REGTEST_ADDR], "only applies to --solo"),
    (["--rpc-cookie", "/x"], "only applies to --solo"),
])
def test_cli_solo_usage_errors_exit_2(args, pattern, capsys):
    import re

    from sgm.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err), err


def test_solo_keys_in_the_config_file(tmp_path, node):
    from sgm.miner_cli import _parser, build_config

    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"solo": True, "coinbase-addr": REGTEST_P2PKH,
                                "pools": [{"url": f"http://127.0.0.1:{node.port}",
                                           "user": node.user, "pass": node.password}]}))
    config, _ = build_config(_parser().parse_args(["-c", str(path)]))
    assert config.solo is not None and config.pools == []
    assert config.solo.address == REGTEST_P2PKH
    ep = config.solo.endpoint()
    assert (ep.port, ep.user, ep.password) == (node.port, node.user, node.password)
    cookie = tmp_path / "c"
    cookie.write_text("__cookie__:abc")
    path.write_text(json.dumps({"solo": True, "coinbase-addr": REGTEST_P2PKH,
                                "rpc-cookie": str(cookie),
                                "pools": [{"url": f"http://127.0.0.1:{node.port}"}]}))
    config, _ = build_config(_parser().parse_args(["-c", str(path)]))
    assert config.solo.endpoint().cookie_file == str(cookie)
