"""Payout addresses: the BIP 173 / BIP 350 vectors, base58(check) vectors, Bitcoin Core's
key_io addresses, and the network check against the node's chain."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgm.solo.address import (
    NETWORKS,
    AddressError,
    Encoding,
    address_script,
    b58check_decode,
    b58check_encode,
    b58decode,
    b58encode,
    bech32_decode,
    decode_address,
    decode_segwit_address,
    encode_segwit_address,
    network_for_chain,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "solo" / "address_vectors.json").read_text())


@pytest.mark.parametrize("text", VECTORS["bech32_valid"])
def test_bip173_valid_bech32_strings(text):
    hrp, data, enc = bech32_decode(text)
    assert enc is Encoding.BECH32
    assert hrp == text.lower()[:text.rfind("1")]


@pytest.mark.parametrize("text", VECTORS["bech32m_valid"])
def test_bip350_valid_bech32m_strings(text):
    _, _, enc = bech32_decode(text)
    assert enc is Encoding.BECH32M


@pytest.mark.parametrize("text,reason", VECTORS["bech32_invalid"] + VECTORS["bech32m_invalid"])
def test_bip173_bip350_invalid_strings(text, reason):
    with pytest.raises(AddressError):
        bech32_decode(text)


@pytest.mark.parametrize("address,script", VECTORS["segwit_valid"])
def test_bip350_valid_segwit_addresses(address, script):
    hrp = address.lower()[:address.rfind("1")]
    version, program = decode_segwit_address(hrp, address)
    op = 0 if version == 0 else 0x50 + version
    assert (bytes([op, len(program)]) + program).hex() == script
    assert decode_address(address).script.hex() == script
    # and back: the encoder writes the canonical (lower-case) form
    assert encode_segwit_address(hrp, version, program) == address.lower()


#: the vectors' reasons → words of the error sgm gives for them
_REASON_WORDS = [("instead of Bech32m", "needs a bech32m"), ("instead of Bech32", "needs a bech32"),
                 ("requires bech32m", "needs a bech32m"), ("Mixed case", "mixed case"),
                 ("program length", "program"), ("padding", "padding"),
                 ("witness version", "witness version"), ("Empty data", "empty data"),
                 ("human-readable", "prefix"), ("character in checksum", "character"),
                 ("Invalid checksum", "checksum")]


@pytest.mark.parametrize("address,reason", VECTORS["segwit_invalid"])
def test_bip173_bip350_invalid_segwit_addresses(address, reason):
    words = next(w for r, w in _REASON_WORDS if r in reason)
    with pytest.raises(AddressError, match=words):
        decode_address(address)
    for hrp in ("bc", "tb"):
        with pytest.raises(AddressError):
            decode_segwit_address(hrp, address)


@pytest.mark.parametrize("hex_data,text", VECTORS["base58"])
def test_base58_vectors(hex_data, text):
    data = bytes.fromhex(hex_data)
    assert b58encode(data) == text
    assert b58decode(text) == data


def test_base58check_round_trip_and_checksum():
    payload = bytes.fromhex("6f") + bytes(range(20))
    text = b58check_encode(payload)
    assert b58check_decode(text) == payload
    broken = text[:-1] + ("2" if text[-1] != "2" else "3")
    with pytest.raises(AddressError, match="checksum"):
        b58check_decode(broken)
    with pytest.raises(AddressError, match="invalid character"):
        b58decode("0OIl")


@pytest.mark.parametrize("address,script,chain", VECTORS["addresses"])
def test_key_io_addresses_decode_to_their_script_on_their_chain(address, script, chain):
    assert address_script(address, chain) == bytes.fromhex(script)
    assert chain in decode_address(address).networks


@pytest.mark.parametrize("address,script,chain", VECTORS["addresses"])
def test_key_io_addresses_upper_case_bech32_is_the_same_address(address, script, chain):
    if decode_address(address).is_segwit:
        assert address_script(address.upper(), chain) == bytes.fromhex(script)


def test_a_mainnet_address_is_refused_on_regtest_and_the_message_says_why():
    main_addrs = [a for a, _, c in VECTORS["addresses"] if c == "main"]
    assert len(main_addrs) >= 4
    for address in main_addrs:
        with pytest.raises(AddressError, match=r"mainnet address, but the node's chain is regtest"):
            address_script(address, "regtest")


def test_regtest_and_testnet_addresses_are_refused_on_mainnet():
    for address, _, chain in VECTORS["addresses"]:
        if chain != "main":
            with pytest.raises(AddressError, match="node's chain is main"):
                address_script(address, "main")


def test_testnet_base58_works_on_regtest_but_tb1_does_not():
    # base58 prefixes are shared by testnet and regtest (as in Bitcoin Core); bech32 differs
    assert address_script("mzK2FFDEhxqHcmrJw1ysqFkVyhUULo45hZ", "regtest")
    with pytest.raises(AddressError, match="chain is regtest"):
        address_script("tb1qcrh3yqn4nlleplcez2yndq2ry8h9ncg3qh7n54", "regtest")


def test_a_segwit_address_on_a_chain_without_segwit_is_refused():
    with pytest.raises(AddressError, match="no segwit"):
        address_script("tb1qcrh3yqn4nlleplcez2yndq2ry8h9ncg3qh7n54", "stn")


def test_btcds_chain_names_are_the_same_networks():
    """btcd's getblockchaininfo names its chains mainnet and testnet3 (Core: main, test)."""
    assert network_for_chain("mainnet") is NETWORKS["main"]
    assert network_for_chain("testnet3") is NETWORKS["test"]
    assert address_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "mainnet")
    assert address_script("mzK2FFDEhxqHcmrJw1ysqFkVyhUULo45hZ", "testnet3")
    with pytest.raises(AddressError, match="mainnet address, but the node's chain is test"):
        address_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "testnet3")


def test_unknown_chain_and_garbage():
    with pytest.raises(AddressError, match="unknown chain"):
        network_for_chain("bogus")
    for bad in ("", "   ", "hello", "1111", "bc1", "zz1qqqqqqqqqqq", "3" * 40):
        with pytest.raises(AddressError):
            decode_address(bad)
    # a valid base58check payload of the wrong size or with an unknown version byte
    with pytest.raises(AddressError, match="21"):
        decode_address(b58check_encode(b"\x00" + bytes(19)))
    with pytest.raises(AddressError, match="version byte"):
        decode_address(b58check_encode(b"\x42" + bytes(20)))


def test_every_network_has_distinct_known_prefixes():
    assert NETWORKS["main"].bech32_hrp == "bc" and NETWORKS["regtest"].bech32_hrp == "bcrt"
    assert NETWORKS["main"].p2pkh_prefix == 0 and NETWORKS["main"].p2sh_prefix == 5
    assert {n.p2pkh_prefix for n in NETWORKS.values() if n.name != "main"} == {0x6F}
