"""sgm.bitcoin: the Bitcoin primitives, checked against real data.

* script numbers: the numeric-push cases of Bitcoin Core's script test vectors
  (script_valid.json: "128" is ``0x02 0x8000``, "-1" is ``0x01 0x81``, ...);
* transactions and merkle trees: the coinbases of mainnet blocks 0, 1 and 881423, whose
  txids must fold to the merkle roots of the real headers in tests/data/headers.json;
* BIP 34: the heights in real mainnet and testnet coinbases (tests/data/stratum_shares.json);
* witness commitment: the recorded getblocktemplate answers in tests/data/solo, whose
  txid / hash / default_witness_commitment fields were computed with hashlib alone.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import sgm.hashing
from sgm import bitcoin
from sgm.bitcoin import (
    DEFAULT_VERSION_MASK,
    bip34_height_script,
    commitment_script,
    decode_script_num,
    merkle_branch,
    merkle_root,
    merkle_root_from_branch,
    parse_bip34_height,
    push_data,
    push_int,
    read_varint,
    script_num,
    strip_witness,
    txid,
    varint,
    witness_commitment,
    wtxid,
)
from tests.conftest import load_vectors

SOLO_DATA = Path(__file__).parent / "data" / "solo"

# The genesis block's only transaction and block 1's coinbase, as every node stores them:
# their txids are the merkle roots of the genesis and block-1 headers in headers.json.
GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04"
    "ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e20"
    "6272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01"
    "000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4c"
    "ef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000")
BLOCK1_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0704"
    "ffff001d0104ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae1390813a"
    "627c66fb8be7947be63c52da7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c858ee"
    "ac00000000")


def dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def header_by_height(height: int) -> dict:
    return next(h for h in load_vectors("headers.json")["headers"] if h["height"] == height)


def header_merkle_root(height: int) -> bytes:
    """The merkle root field of a real header (internal order), cut from its 80 bytes."""
    return bytes.fromhex(header_by_height(height)["header_hex"])[36:68]


def stratum_share(share_id: str) -> dict:
    return next(s for s in load_vectors("stratum_shares.json")["shares"] if s["id"] == share_id)


def coinbase_script_sig(coinbase: bytes) -> bytes:
    """The scriptSig of a one-input transaction without witness (version, 1 input, prevout)."""
    length, pos = read_varint(coinbase, 4 + 1 + 36)
    return coinbase[pos:pos + length]


# ------------------------------------------------------------------------ CompactSize
@pytest.mark.parametrize("value, encoded", [
    (0, "00"), (0xFC, "fc"), (0xFD, "fdfd00"), (0xFFFF, "fdffff"), (0x10000, "fe00000100"),
    (0xFFFFFFFF, "feffffffff"), (0x1_0000_0000, "ff0000000001000000"),
    ((1 << 64) - 1, "ffffffffffffffffff"),
])
def test_compactsize_switches_width_at_its_boundaries_and_reads_back(value, encoded):
    assert varint(value).hex() == encoded
    data = b"\xaa" + bytes.fromhex(encoded) + b"\xbb"
    assert read_varint(data, 1) == (value, 1 + len(encoded) // 2)


@pytest.mark.parametrize("data", ["fdfc00", "feffff0000", "ffffffffff00000000", "ff0000000000000000"])
def test_a_longer_than_needed_compactsize_is_refused(data):
    # nodes refuse a value that fits a shorter form ("non-canonical ReadCompactSize()")
    with pytest.raises(ValueError, match="non-canonical"):
        read_varint(bytes.fromhex(data))


def test_compactsize_errors_name_the_problem():
    with pytest.raises(ValueError, match="truncated"):
        read_varint(b"\xfe\x01\x02")
    with pytest.raises(ValueError, match="no data"):
        read_varint(b"", 0)
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError):
            varint(bad)


# --------------------------------------------------------------------- script numbers
# Bitcoin Core's script_valid.json, numeric pushes: "<number>" equals "<push> <bytes>"
CORE_SCRIPT_NUMBERS = [
    (1, "01"), (127, "7f"), (128, "8000"), (32767, "ff7f"), (32768, "008000"),
    (8388607, "ffff7f"), (8388608, "00008000"), (2147483647, "ffffff7f"),
    (2147483648, "0000008000"),
    (-1, "81"), (-127, "ff"), (-128, "8080"), (-32767, "ffff"), (-32768, "008080"),
    (-8388607, "ffffff"), (-8388608, "00008080"), (-2147483647, "ffffffff"),
    (-2147483648, "0000008080"),
]


@pytest.mark.parametrize("number, encoded", CORE_SCRIPT_NUMBERS)
def test_script_numbers_encode_as_bitcoin_core_does(number, encoded):
    assert script_num(number).hex() == encoded
    assert decode_script_num(bytes.fromhex(encoded), max_size=5) == number


@pytest.mark.parametrize("encoded, number", [
    # script_valid.json: "0x02 0x0100 NUMEQUAL" 1, "0x01 0x80" and "0x02 0x0080" equal 0,
    # "0x03 0x100080" equals "0x04 0x10000080", "0x4c 0x03 0x0b0000" equals 11
    ("0100", 1), ("80", 0), ("0080", 0), ("000080", 0), ("00000080", 0),
    ("100080", -16), ("10000080", -16), ("100000", 16), ("0b0000", 11),
])
def test_non_minimal_script_numbers_decode_to_their_value_and_are_refused_when_minimal(encoded, number):
    assert decode_script_num(bytes.fromhex(encoded), minimal=False) == number
    with pytest.raises(ValueError, match="not minimally encoded"):
        decode_script_num(bytes.fromhex(encoded))


def test_script_numbers_longer_than_allowed_are_refused():
    # script_invalid.json: "2147483648 0 ADD" -- arithmetic operands are at most 4 bytes
    with pytest.raises(ValueError, match="at most 4"):
        decode_script_num(script_num(2147483648))
    assert script_num(0) == b"" and decode_script_num(b"") == 0


@pytest.mark.parametrize("size, prefix", [
    (0, "00"), (1, "01"), (75, "4b"), (76, "4c4c"), (255, "4cff"), (256, "4d0001"),
    (65535, "4dffff"), (65536, "4e00000100"),
])
def test_pushes_use_the_smallest_opcode(size, prefix):
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert push_data(data) == bytes.fromhex(prefix) + data


@pytest.mark.parametrize("number, script", [
    (0, "00"), (-1, "4f"), (1, "51"), (16, "60"), (17, "0111"), (-2, "0182"), (128, "028000"),
])
def test_small_integers_are_single_opcodes(number, script):
    assert push_int(number).hex() == script


# ---------------------------------------------------------------------------- BIP 34
@pytest.mark.parametrize("height", range(1, 17))
def test_heights_1_to_16_are_op1_to_op16_not_a_one_byte_push(height):
    # Bitcoin Core compares the scriptSig with CScript() << height: OP_N for 1..16; the
    # push "01 0N" that a plain script-number push would give is refused (bad-cb-height)
    assert bip34_height_script(height) == bytes([0x50 + height])
    assert bip34_height_script(height) != push_data(script_num(height))
    assert parse_bip34_height(bip34_height_script(height) + b"\x04sgm!") == height


@pytest.mark.parametrize("height, script", [
    (0, "00"), (17, "0111"), (127, "017f"), (128, "028000"), (255, "02ff00"), (256, "020001"),
    (32767, "02ff7f"), (32768, "03008000"), (65535, "03ffff00"), (8388607, "03ffff7f"),
    (8388608, "0400008000"), (227931, "035b7a03"), (840000, "0340d10c"),
])
def test_larger_heights_are_minimal_number_pushes(height, script):
    assert bip34_height_script(height).hex() == script
    assert parse_bip34_height(bytes.fromhex(script) + b"\xaa\xbb") == height


@pytest.mark.parametrize("share_id, height", [
    ("sri-cpuminer-testnet3-2023-03-28", 2426222),
    ("public-pool-bitaxe-testnet3-version-rolling", 2442185),
    ("mujina-bitaxe-gamma-public-pool-mainnet-2025-06-19", 901936),
    ("esp-miner-slush-mainnet-diff683", 791433),
    ("block-881423-as-stratum-job", 881423),
])
def test_real_coinbases_start_with_the_height_script(share_id, height):
    notify = stratum_share(share_id)["notify"]
    script_sig = coinbase_script_sig(bytes.fromhex(notify["coinb1"]))
    assert parse_bip34_height(script_sig) == height
    assert script_sig.startswith(bip34_height_script(height))


def test_block_881423s_coinbase_height_is_its_header_vectors_height():
    assert header_by_height(881423)["name"].startswith("block 881423")
    raw = bytes.fromhex(stratum_share("block-881423-as-stratum-job")["segwit_coinbase_as_stored_in_source"])
    assert parse_bip34_height(coinbase_script_sig(strip_witness(raw))) == 881423


@pytest.mark.parametrize("script_sig, message", [
    (b"", "empty"), (b"\x03\x01\x02", "truncated"), (b"\x06" + bytes(6), "does not start"),
    (b"\x4c\x01\x01", "does not start"), (b"\x01\x81", "negative"),
])
def test_a_scriptsig_without_a_height_is_refused_with_a_reason(script_sig, message):
    with pytest.raises(ValueError, match=message):
        parse_bip34_height(script_sig)


def test_heights_outside_the_script_number_range_are_refused():
    for bad in (-1, 1 << 31):
        with pytest.raises(ValueError, match="out of range"):
            bip34_height_script(bad)


# ----------------------------------------------------------------- transactions, merkle
@pytest.mark.parametrize("height, coinbase", [(0, GENESIS_COINBASE), (1, BLOCK1_COINBASE)])
def test_a_one_transaction_blocks_merkle_root_is_its_coinbase_txid(height, coinbase):
    assert strip_witness(coinbase) == coinbase                 # no witness: unchanged
    assert txid(coinbase) == wtxid(coinbase) == dsha(coinbase)
    assert merkle_root([txid(coinbase)]) == header_merkle_root(height)
    assert merkle_branch([]) == []
    assert merkle_root_from_branch(txid(coinbase), []) == header_merkle_root(height)


def test_a_real_segwit_coinbase_folds_to_its_blocks_merkle_root():
    """Block 881423: the coinbase as stored with its witness; its txid (witness stripped)
    is what the Stratum job's coinb1 ‖ extranonce ‖ coinb2 hash to, and it folds up the
    job's branch to the merkle root of the real header."""
    share = stratum_share("block-881423-as-stratum-job")
    raw = bytes.fromhex(share["segwit_coinbase_as_stored_in_source"])
    notify, sub = share["notify"], share["subscribe_result"]
    stripped = bytes.fromhex(notify["coinb1"] + sub["extranonce1"] + share["submit"]["extranonce2"]
                             + notify["coinb2"])
    assert raw[4:6] == b"\x00\x01"                             # BIP 144 marker and flag
    assert strip_witness(raw) == stripped
    assert txid(raw) == txid(stripped) == dsha(stripped)
    assert wtxid(raw) == dsha(raw) != txid(raw)
    branch = [bytes.fromhex(b) for b in notify["merkle_branch"]]
    assert merkle_root_from_branch(txid(raw), branch) == header_merkle_root(881423)
    assert merkle_root_from_branch(txid(raw), branch).hex() == share["expected_merkle_root_internal"]


@pytest.mark.parametrize("n", range(0, 12))
def test_the_coinbase_branch_folds_to_the_root_of_the_full_tree(n):
    txids = [dsha(bytes([i])) for i in range(n)]
    leaf = dsha(b"coinbase")
    level = [leaf, *txids]                     # the full tree, built here from scratch
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    assert merkle_root_from_branch(leaf, merkle_branch(txids)) == level[0]
    assert merkle_root([leaf, *txids]) == level[0]
    assert len(merkle_branch(txids)) == (n).bit_length()


def test_a_real_stratum_branch_folds_to_the_recorded_root():
    for v in load_vectors("aux_vectors.json")["vectors"]:
        if v["kind"] != "merkle_root" or "coinb1" not in v:
            continue
        coinbase = bytes.fromhex(v["coinb1"] + v["extranonce1"] + v["extranonce2"] + v["coinb2"])
        branch = [bytes.fromhex(b) for b in v["merkle_branch"]]
        assert merkle_root_from_branch(txid(coinbase), branch).hex() == v["expected_merkle_root_internal"]


@pytest.mark.parametrize("name", ["core_regtest_template.json", "btcd_simnet_template.json"])
def test_txids_wtxids_and_the_witness_commitment_match_the_templates(name):
    tmpl = json.loads((SOLO_DATA / name).read_text())
    txs = [bytes.fromhex(t["data"]) for t in tmpl["transactions"]]
    segwit = [raw for raw in txs if raw[4:6] == b"\x00\x01"]
    assert segwit and len(segwit) < len(txs)                   # both kinds are covered
    for t, raw in zip(tmpl["transactions"], txs, strict=True):
        if "txid" in t:                                        # Bitcoin Core: txid and hash
            assert txid(raw)[::-1].hex() == t["txid"]
            assert wtxid(raw)[::-1].hex() == t["hash"]
        else:                                                  # btcd: hash is the txid
            assert txid(raw)[::-1].hex() == t["hash"]
        assert (txid(raw) == wtxid(raw)) == (raw not in segwit)
    commitment = witness_commitment([wtxid(raw) for raw in txs])
    expected = tmpl["default_witness_commitment"]
    assert (commitment_script(commitment) if len(expected) == 76 else commitment).hex() == expected


def test_malformed_transactions_are_refused_not_misread():
    raw = bytes.fromhex(json.loads((SOLO_DATA / "core_regtest_template.json").read_text())
                        ["transactions"][0]["data"])
    for bad, message in ((raw[:-1], "truncated"), (raw + b"\x00", "after the locktime"),
                         (raw[:8], "too short"), (raw[:40], "no data")):
        with pytest.raises(ValueError, match=message):
            strip_witness(bad)
    with pytest.raises(ValueError, match="32 bytes"):
        commitment_script(bytes(31))
    with pytest.raises(ValueError):
        merkle_root([])


# ---------------------------------------------------------------- defined once
def test_the_target_helpers_are_the_ones_in_sgm_hashing():
    for name in ("sha256d", "nbits_to_target", "target_to_nbits", "difficulty_to_target",
                 "target_to_difficulty", "meets_target"):
        assert getattr(bitcoin, name) is getattr(sgm.hashing, name)
    for h in load_vectors("headers.json")["headers"]:
        header = bytes.fromhex(h["header_hex"])
        assert bitcoin.meets_target(bitcoin.sha256d(header), bitcoin.nbits_to_target(int(h["nbits"], 16)))


def test_version_rolling_mask_is_bip320s_general_purpose_bits():
    assert DEFAULT_VERSION_MASK == sum(1 << b for b in range(13, 29))
    import sgm.pool
    import sgm.stratum.protocol
    assert sgm.pool.DEFAULT_VERSION_MASK is sgm.stratum.protocol.DEFAULT_VERSION_MASK


def test_no_module_defines_the_primitives_again():
    """Drift guard: the primitives live in sgm/bitcoin.py (and sha256d in sgm/hashing.py).
    sgm/pool/shares.py keeps its own few lines on purpose: the pool re-derives the header
    independently, so that it and the miner check each other."""
    names = ("varint", "read_varint", "script_num", "push_data", "bip34_height_script",
             "merkle_root", "merkle_branch", "merkle_root_from_branch", "witness_commitment",
             "double_sha256", "sha256d", "_sha256d")
    pattern = re.compile(rf"^def ({'|'.join(names)})\(", re.MULTILINE)
    root = Path(bitcoin.__file__).parent
    allowed = {"bitcoin.py": {"varint", "read_varint", "script_num", "push_data",
                              "bip34_height_script", "merkle_root", "merkle_branch",
                              "merkle_root_from_branch", "witness_commitment"},
               "hashing.py": {"sha256d"},
               "pool/shares.py": {"_sha256d", "merkle_root"}}
    found = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        defined = set(pattern.findall(path.read_text(encoding="utf-8"))) - allowed.get(rel, set())
        if defined:
            found[rel] = sorted(defined)
    assert found == {}
