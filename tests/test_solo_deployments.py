"""Segwit from the node, not from the template alone (issue 16, defect 1).

btcd with an empty mempool sends a template with no ``rules`` and no
``default_witness_commitment`` although segwit is active; sgm used to refuse a segwit
payout address there.  It now asks ``getblockchaininfo`` (and ``getdeploymentinfo`` on
Bitcoin Core >= 23, which moved the soft forks there) in each node's shape.  The block it
then builds has no witness commitment, which BIP 141 allows when no transaction has a
witness ("If all transactions in a block do not have witness data, the commitment is
optional"; btcd's ValidateWitnessCommitment and sgm's check_block both apply that).
"""
from __future__ import annotations

import asyncio
import copy
import json

import pytest

from sgm import _native
from sgm.jobs import make_share, prepare_work
from sgm.solo.address import decode_address
from sgm.solo.block import Block, check_block, find_witness_commitment
from sgm.solo.client import SoloClient, SoloConfig, SoloConfigError
from sgm.solo.deployments import deployment_active
from tests.solo_helpers import btcd_node, load_template, sgm

SEGWIT_ADDR = "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9"
P2PKH_ADDR = "mfhE6jAUwjUDNZhaX1PAsDTKfneQF2Nshc"
#: btcd's super-majority forks, as a build whose JSON encoder printed the 'softforks' list
BTCD_ISM = [{"id": f, "version": v, "reject": {"status": True}}
            for f, v in (("bip34", 2), ("bip66", 3), ("bip65", 4))]


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def _bip9(status: str) -> dict:
    return {"status": status, "startTime": 1199145601, "timeout": 1230767999, "since": 432}


# ------------------------------------------------------------ the answer shapes
@pytest.mark.parametrize("info,expected", [
    # Bitcoin Core 0.19 … 22: softforks keyed by name, "active" per entry
    ({"chain": "regtest", "softforks": {
        "bip34": {"type": "buried", "active": True, "height": 500},
        "segwit": {"type": "buried", "active": True, "height": 0},
        "testdummy": {"type": "bip9", "bip9": {"status": "started", "bit": 28}, "active": False}}},
     True),
    ({"chain": "main", "softforks": {"segwit": {"type": "buried", "active": False,
                                                "height": 481824}}}, False),
    ({"softforks": {"segwit": {"type": "bip9", "bip9": {"status": "active"}}}}, True),
    ({"softforks": {"csv": {"type": "buried", "active": True}}}, False),
    # Bitcoin Core 0.13 … 0.18: a list of super-majority forks, BIP 9 ones by name
    ({"chain": "main", "softforks": BTCD_ISM,
      "bip9_softforks": {"csv": _bip9("active"), "segwit": _bip9("active")}}, True),
    ({"softforks": BTCD_ISM, "bip9_softforks": {"segwit": _bip9("locked_in")}}, False),
    ({"softforks": BTCD_ISM, "bip9_softforks": {"segwit": _bip9("started")}}, False),
    # Bitcoin Core 0.12.1: bip9_softforks was a list
    ({"softforks": BTCD_ISM, "bip9_softforks": [{"id": "csv", "status": "defined"}]}, False),
    ({"bip9_softforks": [{"id": "segwit", "status": "active"}]}, True),
    # btcd: bip9_softforks keyed by name, status in lower case ("lockedin")
    ({"chain": "regtest", "bip9_softforks": {"segwit": {"status": "lockedin", "bit": 1}}}, False),
    # Bitcoin SV: only super-majority forks, no segwit at all
    ({"chain": "regtest", "softforks": BTCD_ISM + [{"id": "csv", "version": 5,
                                                    "reject": {"status": False}}]}, False),
    # Bitcoin Core >= 23: nothing in getblockchaininfo …
    ({"chain": "main", "blocks": 800000, "warnings": ""}, None),
    # … and getdeploymentinfo's deployments
    ({"hash": "00" * 32, "height": 800000,
      "deployments": {"segwit": {"type": "buried", "active": True, "height": 481824}}}, True),
    # not answers at all
    (None, None), ([], None), ({"softforks": "segwit"}, None),
])
def test_segwit_is_read_from_each_nodes_shape(info, expected):
    assert deployment_active(info, "segwit") is expected


def test_the_recorded_btcd_answers_say_segwit_and_the_template_does_not():
    rec = load_template("btcd_regtest_empty.json")
    assert "softforks" not in rec["getblockchaininfo"]
    assert deployment_active(rec["getblockchaininfo"], "segwit") is True
    tmpl = rec["getblocktemplate"]
    assert "rules" not in tmpl and "default_witness_commitment" not in tmpl
    assert tmpl["transactions"] == []


# ------------------------------------------------- btcd, empty mempool, segwit address
def _share(job, start: int = 0):
    prepared = prepare_work(job, 0)
    res = _native.scan(prepared.midstate, prepared.tail, start, 1 << 16, job.target)
    return make_share(job, prepared, res.nonces[0])


@pytest.mark.parametrize("ism_list", [False, True], ids=["as-btcd-prints-it", "with-softforks-list"])
def test_btcd_with_an_empty_mempool_takes_a_segwit_address(ism_list):
    node = btcd_node()
    if ism_list:
        node.chaininfo["softforks"] = copy.deepcopy(BTCD_ISM)
    node.advance_on_block = False

    async def main():
        jobs: list = []
        client = SoloClient(SoloConfig(url=node.url, address=SEGWIT_ADDR, poll_interval=0.1),
                            on_job=jobs.append)
        await client.start()
        try:
            assert client.node_segwit is True and client.current.template.segwit
            assert client.current.template.witness_commitment is None
            verdict = await client.submit(_share(jobs[0]))
            assert verdict.accepted is True, verdict
        finally:
            await client.close()

    with node:
        run(main())
    tmpl = node.template
    raw = bytes.fromhex(node.submitted[0])
    block = Block.parse(raw)
    # valid under BIP 141 with no witness anywhere: no commitment, no reserved value,
    # and the plain (non-witness) serialization
    check_block(block, height=tmpl["height"], target=int(tmpl["target"], 16),
                coinbase_value=tmpl["coinbasevalue"], segwit=True)
    coinbase = block.txs[0]
    assert len(block.txs) == 1 and find_witness_commitment(coinbase) is None
    assert not any(coinbase.witnesses)
    assert block.serialize(with_witness=False) == raw
    assert coinbase.outputs[0].script_pubkey == decode_address(SEGWIT_ADDR).script
    assert coinbase.outputs[0].value == tmpl["coinbasevalue"]


def test_sgm_solo_mines_btcd_with_an_empty_mempool_to_a_segwit_address(tmp_path):
    out = tmp_path / "summary.json"
    with btcd_node() as node:
        r = sgm("--solo", "-o", node.url, "--coinbase-addr", SEGWIT_ADDR, "-t", "1",
                "--time-limit", "4", "-q", "--summary-json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(out.read_text())
    assert summary["blocks_accepted"] >= 1 and summary["rejected"] == 0
    for block_hex in node.submitted:
        block = Block.parse(bytes.fromhex(block_hex))
        assert block.txs[0].outputs[0].script_pubkey == decode_address(SEGWIT_ADDR).script
        check_block(block, height=block_height(block), segwit=True)


def block_height(block: Block) -> int:
    """The BIP 34 height in the coinbase (the fake node moves its tip per block)."""
    script = block.txs[0].inputs[0].script_sig
    if 0x51 <= script[0] <= 0x60:
        return script[0] - 0x50
    return int.from_bytes(script[1:1 + script[0]], "little")


def test_a_node_that_says_segwit_is_not_active_refuses_a_segwit_address_exit_2():
    node = btcd_node()
    node.chaininfo["bip9_softforks"]["segwit"]["status"] = "started"
    with node:
        r = sgm("--solo", "-o", node.url, "--coinbase-addr", SEGWIT_ADDR, "-t", "1",
                "--time-limit", "4")
        assert r.returncode == 2, r.stdout + r.stderr
        assert "segwit address" in r.stderr and "not active" in r.stderr
        assert "base58" in r.stderr and "Traceback" not in r.stderr
        assert node.submitted == [] and "device " not in r.stdout   # nothing hashed
        # a base58 address mines that chain
        r = sgm("--solo", "-o", node.url, "--coinbase-addr", P2PKH_ADDR, "-t", "1",
                "--time-limit", "3", "-q")
        assert r.returncode == 0, r.stderr
        assert node.submitted


def test_core_23_answers_from_getdeploymentinfo():
    """Bitcoin Core >= 23 has no soft forks in getblockchaininfo: when the template does
    not show segwit either, getdeploymentinfo decides."""
    node = btcd_node()
    node.chaininfo = {"chain": "regtest", "blocks": 1299, "warnings": ""}

    async def start(address: str) -> SoloClient:
        client = SoloClient(SoloConfig(url=node.url, address=address), on_job=lambda j: None)
        try:
            await client.start()
        finally:
            await client.close()
        return client

    with node:
        with pytest.raises(SoloConfigError, match="says nothing about segwit"):
            run(start(SEGWIT_ADDR))
        assert "getdeploymentinfo" in node.methods()
        node.answers["getdeploymentinfo"] = {
            "hash": node.template["previousblockhash"], "height": 1299,
            "deployments": {"segwit": {"type": "buried", "active": True, "height": 0}}}
        client = run(start(SEGWIT_ADDR))
        assert client.node_segwit is True
        # a base58 address needs no such question
        calls = len(node.calls)
        run(start(P2PKH_ADDR))
        assert "getdeploymentinfo" not in node.methods()[calls:]
