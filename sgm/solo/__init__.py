"""Solo mining against a Bitcoin node: getblocktemplate → jobs, found blocks → submitblock.

* :mod:`sgm.solo.rpc` -- asyncio JSON-RPC over HTTP (basic auth, cookie file);
* :mod:`sgm.solo.address` -- bech32/bech32m/base58check addresses → scriptPubKey;
* :mod:`sgm.solo.block` -- transactions, blocks, merkle, witness commitment, block checks;
* :mod:`sgm.solo.template` -- template validation, the coinbase, the Job;
* :mod:`sgm.solo.client` -- :class:`SoloClient`, the work source the Miner uses.
"""
from __future__ import annotations

from sgm.solo.client import SoloClient, SoloConfig, SoloError, SoloEvent

__all__ = ["SoloClient", "SoloConfig", "SoloError", "SoloEvent"]
