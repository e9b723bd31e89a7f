"""Where things are deployed: ``deployments/<network>.json`` per chain.

The record holds the chain id, the factory (and the vault's five parts behind it), known tokens
and named vaults::

    {"chain_id": 31337,
     "factory": {"address": "0x..", "tx": "0x..", "block": 1,
                 "parts": {"AgentVaultLens": "0x..", ..., "AgentVault": "0x.."}},
     "tokens": {"tUSDC": {"address": "0x..", "decimals": 6}},
     "vaults": {"main": {"address": "0x..", "tx": "0x..", "block": 2, "owners": [..],
                         "threshold": 2, "factory": "0x.."}},
     "artifacts": {"AgentVault": "<sourcesHash>", "AgentVaultAdmin": .., ...}}

``artifacts`` are the source hashes of every contract the factory was deployed from (the four
parts, the factory, the ``IAgentVault`` ABI): a record whose hashes differ from the packaged
artifacts' is stale, and its factory is not used (a new one is deployed and recorded).

The embedded chain lives in this process and is fresh every run, so its record is kept in memory
(attached to the chain connection) and never written to disk.
"""

from __future__ import annotations

import json
import os
import secrets
import weakref
from pathlib import Path
from typing import Any

from agentwallet.chain import ANVIL_CHAIN_ID, Chain
from agentwallet.errors import ChainMismatchError, UnknownTokenError, UnknownVaultError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import ETH_TOKEN, TokenInfo

__all__ = [
    "DEPLOYED_ARTIFACTS",
    "DEPLOYMENTS_ENV",
    "ETH_TOKEN",
    "Deployments",
    "TokenInfo",
    "artifact_hashes",
    "network_name",
]

DEPLOYMENTS_ENV = "AGENTWALLET_DEPLOYMENTS"

#: The embedded chains' records, by their Web3 (shared by Chain.with_broadcaster views).
_MEMORY: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def network_name(chain: Chain) -> str:
    """``"embedded"``, ``"anvil"`` (chain id 31337 over JSON-RPC) or ``"chain-<id>"``."""
    if chain.is_embedded:
        return "embedded"
    if chain.chain_id == ANVIL_CHAIN_ID:
        return "anvil"
    return f"chain-{chain.chain_id}"


#: The artifacts a factory deployment is made of: the vault's parts, the factory, and the ABI
#: every vault is read with.
DEPLOYED_ARTIFACTS = (
    "AgentVaultLens",
    "AgentVaultCalls",
    "AgentVaultConfig",
    "AgentVaultAdmin",
    "AgentVault",
    "AgentVaultFactory",
    "IAgentVault",
)


def artifact_hashes() -> dict[str, str | None]:
    """Source hash of each packaged artifact of a deployment (:data:`DEPLOYED_ARTIFACTS`)."""
    from agentwallet.bindings.artifacts import load_artifact

    return {name: load_artifact(name).get("sourcesHash") for name in DEPLOYED_ARTIFACTS}


def _empty(chain_id: int) -> dict[str, Any]:
    return {"chain_id": chain_id, "factory": None, "tokens": {}, "vaults": {}, "artifacts": {}}


class Deployments:
    """The deployment record of one chain.

    ``directory`` defaults to ``$AGENTWALLET_DEPLOYMENTS`` or ``./deployments``. On the embedded
    chain nothing is written; the record lives as long as the :class:`Chain` object.
    """

    def __init__(self, chain: Chain, directory: Path | None = None) -> None:
        self.chain = chain
        self.network = network_name(chain)
        env = os.environ.get(DEPLOYMENTS_ENV)
        self.directory = Path(directory or env or Path.cwd() / "deployments")
        self.path: Path | None = (
            None if chain.is_embedded else self.directory / f"{self.network}.json"
        )

    def __repr__(self) -> str:
        return f"Deployments({self.network}, {self.path or 'in memory'})"

    # ------------------------------------------------------------------ storage

    def data(self) -> dict[str, Any]:
        """The whole record (a fresh empty one if none exists yet)."""
        if self.path is None:
            return _MEMORY.setdefault(self.chain.w3, _empty(self.chain.chain_id))
        if not self.path.is_file():
            return _empty(self.chain.chain_id)
        record: dict[str, Any] = json.loads(self.path.read_text())
        recorded = record.get("chain_id")
        if recorded != self.chain.chain_id:
            raise ChainMismatchError(
                f"{self.path} was written for chain id {recorded}, but the connected chain has "
                f"id {self.chain.chain_id}: connect to the right node (--rpc) or point "
                f"{DEPLOYMENTS_ENV} at another directory"
            )
        for key, value in _empty(self.chain.chain_id).items():
            record.setdefault(key, value)
        return record

    def _save(self, record: dict[str, Any]) -> None:
        if self.path is None:
            _MEMORY[self.chain.w3] = record
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    # ------------------------------------------------------------------ factory

    def factory(self) -> str | None:
        """The recorded factory address, or None if none is recorded, it has no code on the
        chain (e.g. a restarted dev node, or a reverted snapshot), or it is stale: recorded
        from other contracts than the packaged artifacts (its vaults would not speak this
        ABI)."""
        record = self.data()
        entry = record.get("factory")
        if not entry:
            return None
        address = checksum(entry["address"])
        if record.get("artifacts") != artifact_hashes() or not self.chain.code(address):
            return None
        return address

    def record_factory(
        self,
        address: str,
        tx: str | None = None,
        block: int | None = None,
        parts: dict[str, str] | None = None,
    ) -> None:
        """Record the factory, the vault parts behind it (name -> address) and the source
        hashes of every artifact they were built from."""
        record = self.data()
        record["factory"] = {
            "address": checksum(address),
            "tx": tx,
            "block": block,
            "parts": {name: checksum(a) for name, a in (parts or {}).items()},
        }
        record["artifacts"] = artifact_hashes()
        self._save(record)

    # ------------------------------------------------------------------ vaults

    def record_vault(
        self,
        name: str,
        address: str,
        *,
        tx: str | None = None,
        block: int | None = None,
        owners: list[str] | None = None,
        threshold: int | None = None,
        factory: str | None = None,
    ) -> None:
        """Record vault ``name`` (replacing an earlier record of that name)."""
        record = self.data()
        record["vaults"][name] = {
            "address": checksum(address),
            "tx": tx,
            "block": block,
            "owners": [checksum(o) for o in owners or []],
            "threshold": threshold,
            "factory": factory,
        }
        self._save(record)

    def vault_block(self, address: str) -> int | None:
        """The block a recorded vault was created in (None if not recorded)."""
        wanted = checksum(address)
        for entry in self.data()["vaults"].values():
            if entry.get("address") == wanted and entry.get("block") is not None:
                return int(entry["block"])
        return None

    def vaults(self) -> dict[str, dict[str, Any]]:
        """Recorded vaults by name."""
        return dict(self.data()["vaults"])

    def vault_address(self, name_or_address: str) -> str:
        """A vault's address from its recorded name, or the address itself (checksummed).

        :class:`UnknownVaultError` lists the known names.
        """
        if name_or_address.startswith("0x"):
            return checksum(name_or_address, "vault address")
        vaults = self.data()["vaults"]
        if name_or_address in vaults:
            return checksum(vaults[name_or_address]["address"])
        known = ", ".join(sorted(vaults)) or "none"
        where = self.path or "memory (embedded chain)"
        raise UnknownVaultError(
            f"no vault named {name_or_address!r} in {where} (known: {known}): create one with "
            "`agentwallet deploy` or give its address"
        )

    # ------------------------------------------------------------------ tokens

    def record_token(self, symbol: str, address: str, decimals: int) -> None:
        """Record a token under ``symbol``."""
        record = self.data()
        record["tokens"][symbol] = {"address": checksum(address), "decimals": int(decimals)}
        self._save(record)

    def tokens(self) -> dict[str, TokenInfo]:
        """Recorded tokens by symbol (ETH included)."""
        result = {"ETH": ETH_TOKEN}
        for symbol, entry in self.data()["tokens"].items():
            result[symbol] = TokenInfo(checksum(entry["address"]), symbol, int(entry["decimals"]))
        return result

    def token(self, symbol_or_address: str | None) -> TokenInfo:
        """None/"ETH"/the zero address -> ETH; a recorded symbol (case-insensitive); or an
        address (recorded, else its ``symbol()``/``decimals()`` are read from the chain)."""
        if symbol_or_address is None or symbol_or_address.upper() == "ETH":
            return ETH_TOKEN
        tokens = self.tokens()
        if symbol_or_address.startswith("0x"):
            address = checksum(symbol_or_address, "token address")
            for info in tokens.values():
                if info.address == address:
                    return info
            return self._read_token(address)
        for symbol, info in tokens.items():
            if symbol.lower() == symbol_or_address.lower():
                return info
        known = ", ".join(sorted(tokens))
        raise UnknownTokenError(
            f"unknown token {symbol_or_address!r} (known: {known}): give its address or "
            "record it in the deployments file"
        )

    def _read_token(self, address: str) -> TokenInfo:
        from agentwallet.bindings.erc20 import Erc20Binding

        token = Erc20Binding(self.chain, address)
        try:
            symbol, decimals = token.symbol(), token.decimals()
        except Exception:  # noqa: BLE001 - any failure means "not an ERC-20"
            raise UnknownTokenError(
                f"{address} does not answer symbol()/decimals(): is it an ERC-20 token?"
            ) from None
        return TokenInfo(address, symbol, decimals)
