"""Is a soft fork (segwit) active?  Read from the node's ``getblockchaininfo`` answer.

A template alone cannot always tell: btcd sends no ``rules`` and sends
``default_witness_commitment`` only when one of the template's transactions has a witness,
so an empty mempool on a segwit chain looks exactly like a chain without segwit.  The node's
chain state can tell, but its shape differs between nodes and versions:

* Bitcoin Core 0.19 … 22: ``softforks`` is an object keyed by name, each entry
  ``{"type": "buried"|"bip9", "active": bool, "height": int, "bip9": {"status": …}}``.
* Bitcoin Core 0.13 … 0.18: ``softforks`` is a list of the super-majority forks
  (``{"id": "bip34", "version": 2, "reject": {"status": bool}}``) and ``bip9_softforks`` an
  object keyed by name (``{"status": "defined"|"started"|"locked_in"|"active"|"failed"}``);
  0.12.1 had ``bip9_softforks`` as a list of ``{"id": …, "status": …}``.
* btcd: the same two fields as Core 0.13 … 0.18 (``bip9_softforks`` keyed by name, its
  status in lower case: ``lockedin``).
* Bitcoin SV: a ``softforks`` list without segwit (it has none).
* Bitcoin Core 23 and later: no soft-fork fields in ``getblockchaininfo`` at all; the same
  per-name entries as 0.19 … 22 sit in ``getdeploymentinfo``'s ``deployments``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["deployment_active"]


def _unified_entry(entry: Mapping[str, Any]) -> bool | None:
    """An entry of Core's name-keyed ``softforks`` / ``deployments`` object."""
    if isinstance(entry.get("active"), bool):
        return bool(entry["active"])
    bip9 = entry.get("bip9")
    if isinstance(bip9, Mapping) and isinstance(bip9.get("status"), str):
        return bool(bip9["status"] == "active")
    return None


def deployment_active(info: Any, name: str = "segwit") -> bool | None:
    """Whether the node's answer says the soft fork ``name`` is active.

    ``info``: a ``getblockchaininfo`` (or ``getdeploymentinfo``) result.  True or False
    when the answer lists soft forks (a list that does not name ``name`` means the chain
    does not have it); None when it carries no soft-fork information to go by."""
    if not isinstance(info, Mapping):
        return None
    seen = False
    for key in ("softforks", "deployments"):
        forks = info.get(key)
        if isinstance(forks, Mapping):               # Core >= 0.19 (23: getdeploymentinfo)
            seen = True
            entry = forks.get(name)
            if isinstance(entry, Mapping):
                verdict = _unified_entry(entry)
                if verdict is not None:
                    return verdict
        elif isinstance(forks, list):                # super-majority forks: Core < 0.19, btcd, BSV
            seen = True
            for entry in forks:
                if isinstance(entry, Mapping) and entry.get("id") == name:
                    reject = entry.get("reject")
                    if isinstance(reject, Mapping) and isinstance(reject.get("status"), bool):
                        return bool(reject["status"])
    bip9 = info.get("bip9_softforks")
    entries: list[Any] = []
    if isinstance(bip9, Mapping):                    # Core 0.13 … 0.18, btcd
        seen = True
        entries = [bip9.get(name)]
    elif isinstance(bip9, list):                     # Core 0.12.1
        seen = True
        entries = [e for e in bip9 if isinstance(e, Mapping) and e.get("id") == name]
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("status"), str):
            return bool(entry["status"].lower() == "active")
    return False if seen else None
