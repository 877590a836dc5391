"""Stratum v1: message codec, a socket-free protocol state machine, and an asyncio client."""
from sgm.stratum.client import PoolEndpoint, StratumClient, parse_pool_url
from sgm.stratum.messages import MAX_LINE_BYTES, Request, Response, StratumError
from sgm.stratum.protocol import StratumProtocol

__all__ = [
    "MAX_LINE_BYTES", "Request", "Response", "StratumError", "StratumProtocol",
    "PoolEndpoint", "StratumClient", "parse_pool_url",
]
