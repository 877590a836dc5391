"""Payout addresses → scriptPubKey, with the checksum verified and the network checked.

Supported: base58check P2PKH / P2SH (BIP 13) and native segwit addresses -- bech32 for
witness version 0 (BIP 173: P2WPKH, P2WSH) and bech32m for versions 1..16 (BIP 350: P2TR
and future versions).  The encoders and decoders follow the BIPs' descriptions and are
tested against their published vectors.

The network of an address is checked against the chain the node reports
(``getblockchaininfo`` → ``chain``): a mainnet address on a regtest node is an
:class:`AddressError`, never a block paying to nowhere.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "AddressError", "Network", "NETWORKS", "network_for_chain", "Address", "decode_address",
    "address_script", "Encoding", "bech32_encode", "bech32_decode", "convertbits",
    "encode_segwit_address", "decode_segwit_address", "b58encode", "b58decode",
    "b58check_encode", "b58check_decode",
]


class AddressError(ValueError):
    """An address that is malformed, has a bad checksum or belongs to another network."""


# ------------------------------------------------------------------------- networks
@dataclass(frozen=True)
class Network:
    """Address prefixes of one chain (as named by ``getblockchaininfo``)."""

    name: str
    bech32_hrp: str | None          # None: the chain has no segwit addresses
    p2pkh_prefix: int
    p2sh_prefix: int
    description: str

    def __str__(self) -> str:
        return self.description


#: Chains by the name nodes report (Bitcoin Core: main/test/testnet4/signet/regtest;
#: Bitcoin SV also stn, its scaling test network, which uses testnet prefixes).
NETWORKS: dict[str, Network] = {
    "main": Network("main", "bc", 0x00, 0x05, "mainnet"),
    "test": Network("test", "tb", 0x6F, 0xC4, "testnet"),
    "testnet4": Network("testnet4", "tb", 0x6F, 0xC4, "testnet4"),
    "signet": Network("signet", "tb", 0x6F, 0xC4, "signet"),
    "regtest": Network("regtest", "bcrt", 0x6F, 0xC4, "regtest"),
    "stn": Network("stn", None, 0x6F, 0xC4, "scaling test network"),
}


#: Other names nodes give the same chains (btcd: mainnet, testnet3).
CHAIN_ALIASES: dict[str, str] = {"mainnet": "main", "testnet3": "test"}


def network_for_chain(chain: str) -> Network:
    """The :class:`Network` of a chain name as the node reports it."""
    net = NETWORKS.get(CHAIN_ALIASES.get(chain, chain))
    if net is None:
        raise AddressError(f"unknown chain {chain!r} (known: {', '.join(NETWORKS)})")
    return net


# --------------------------------------------------------------------------- bech32
class Encoding(Enum):
    BECH32 = 1
    BECH32M = 0x2BC830A3


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(_CHARSET)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_encode(hrp: str, data: list[int], encoding: Encoding) -> str:
    """Encode 5-bit ``data`` under ``hrp`` with a bech32 or bech32m checksum."""
    values = _hrp_expand(hrp) + data
    mod = _polymod(values + [0] * 6) ^ encoding.value
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def bech32_decode(text: str) -> tuple[str, list[int], Encoding]:
    """Split and verify a bech32/bech32m string: (hrp, 5-bit data, encoding)."""
    if not isinstance(text, str):
        raise AddressError("a bech32 string must be text")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise AddressError("bech32: character out of range")
    if text.lower() != text and text.upper() != text:
        raise AddressError("bech32: mixed case")
    if len(text) > 90:
        raise AddressError(f"bech32: {len(text)} characters is longer than 90")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1:
        raise AddressError("bech32: no separator or empty human-readable part")
    if pos + 7 > len(text):
        raise AddressError("bech32: checksum too short")
    hrp, rest = text[:pos], text[pos + 1:]
    try:
        data = [_CHARSET_REV[c] for c in rest]
    except KeyError as exc:
        raise AddressError(f"bech32: invalid data character {exc.args[0]!r}") from None
    const = _polymod(_hrp_expand(hrp) + data)
    for enc in Encoding:
        if const == enc.value:
            return hrp, data[:-6], enc
    raise AddressError("bech32: checksum mismatch")


def convertbits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    """Regroup a sequence of ``frombits``-bit values into ``tobits``-bit values."""
    acc, bits, out = 0, 0, []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise AddressError("bech32: value out of range")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits:
        raise AddressError("bech32: more than 4 bits of padding")
    elif (acc << (tobits - bits)) & maxv:
        raise AddressError("bech32: non-zero padding")
    return out


def decode_segwit_address(hrp: str, address: str) -> tuple[int, bytes]:
    """(witness version, program) of a segwit address with the expected ``hrp``."""
    got_hrp, data, enc = bech32_decode(address)
    if got_hrp != hrp:
        raise AddressError(f"segwit address: human-readable part {got_hrp!r}, expected {hrp!r}")
    return _witness_from_data(data, enc)


def _witness_from_data(data: list[int], enc: Encoding) -> tuple[int, bytes]:
    if not data:
        raise AddressError("segwit address: empty data section")
    version = data[0]
    if version > 16:
        raise AddressError(f"segwit address: invalid witness version {version}")
    program = bytes(convertbits(data[1:], 5, 8, False))
    if not 2 <= len(program) <= 40:
        raise AddressError(f"segwit address: invalid program length {len(program)}")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError(f"segwit address: version 0 program must be 20 or 32 bytes, "
                           f"got {len(program)}")
    expected = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    if enc is not expected:
        raise AddressError(f"segwit address: witness version {version} needs a "
                           f"{expected.name.lower()} checksum, got {enc.name.lower()}")
    return version, program


def encode_segwit_address(hrp: str, version: int, program: bytes) -> str:
    enc = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    address = bech32_encode(hrp, [version] + convertbits(program, 8, 5, True), enc)
    decode_segwit_address(hrp, address)   # refuses what it should not encode
    return address


# --------------------------------------------------------------------------- base58
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_REV = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        digit = _B58_REV.get(c)
        if digit is None:
            raise AddressError(f"base58: invalid character {c!r}")
        n = n * 58 + digit
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + _checksum(payload))


def b58check_decode(text: str) -> bytes:
    raw = b58decode(text)
    if len(raw) < 5:
        raise AddressError("base58check: too short")
    payload, check = raw[:-4], raw[-4:]
    if _checksum(payload) != check:
        raise AddressError("base58check: checksum mismatch")
    return payload


# -------------------------------------------------------------------------- addresses
@dataclass(frozen=True)
class Address:
    """A decoded address: its kind, output script and the chains it belongs to."""

    text: str
    kind: str                        # p2pkh, p2sh, p2wpkh, p2wsh, p2tr, witness_vN
    script: bytes                    # the scriptPubKey it pays to
    networks: frozenset[str]         # chain names that use its prefix / hrp

    @property
    def is_segwit(self) -> bool:
        return self.kind not in ("p2pkh", "p2sh")

    def check_network(self, chain: str) -> None:
        """Raise AddressError unless the address belongs to ``chain``."""
        net = network_for_chain(chain)
        if net.name in self.networks:
            return
        owners = sorted({NETWORKS[n].description for n in self.networks})
        if self.is_segwit and net.bech32_hrp is None:
            raise AddressError(f"address {self.text} is a segwit address, but the node's "
                               f"chain ({net}) has no segwit: use a base58 (P2PKH/P2SH) address")
        raise AddressError(f"address {self.text} is a {'/'.join(owners)} address, but the "
                           f"node's chain is {net.name} ({net})")


def _witness_script(version: int, program: bytes) -> bytes:
    op = 0 if version == 0 else 0x50 + version
    return bytes([op, len(program)]) + program


def decode_address(text: str) -> Address:
    """Decode a base58check or bech32/bech32m address (any known network)."""
    if not isinstance(text, str) or not text.strip():
        raise AddressError("address is empty")
    text = text.strip()
    hrps = {n.bech32_hrp for n in NETWORKS.values() if n.bech32_hrp}
    lower = text.lower()
    sep = lower.rfind("1")
    if sep > 0 and lower[:sep] in hrps:
        hrp, data, enc = bech32_decode(text)
        version, program = _witness_from_data(data, enc)
        kind = {(0, 20): "p2wpkh", (0, 32): "p2wsh", (1, 32): "p2tr"}.get(
            (version, len(program)), f"witness_v{version}")
        nets = frozenset(n.name for n in NETWORKS.values() if n.bech32_hrp == hrp)
        return Address(text, kind, _witness_script(version, program), nets)
    try:
        payload = b58check_decode(text)
    except AddressError as exc:
        if sep > 0 and all(c in _CHARSET for c in lower[sep + 1:]):
            raise AddressError(f"address {text}: unknown bech32 prefix {lower[:sep]!r} "
                               f"(known: {', '.join(sorted(hrps))})") from None
        raise AddressError(f"address {text}: {exc}") from None
    if len(payload) != 21:
        raise AddressError(f"address {text}: base58 payload of {len(payload)} bytes, expected 21")
    prefix, h160 = payload[0], payload[1:]
    p2pkh = frozenset(n.name for n in NETWORKS.values() if n.p2pkh_prefix == prefix)
    p2sh = frozenset(n.name for n in NETWORKS.values() if n.p2sh_prefix == prefix)
    if p2pkh:
        return Address(text, "p2pkh", b"\x76\xa9\x14" + h160 + b"\x88\xac", p2pkh)
    if p2sh:
        return Address(text, "p2sh", b"\xa9\x14" + h160 + b"\x87", p2sh)
    raise AddressError(f"address {text}: unknown base58 version byte {prefix:#04x}")


def address_script(text: str, chain: str) -> bytes:
    """The scriptPubKey ``text`` pays to, after checking that it belongs to ``chain``."""
    addr = decode_address(text)
    addr.check_network(chain)
    return addr.script
