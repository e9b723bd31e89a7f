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

Where records live (:func:`deployments_dir`), the first that applies:

1. ``$AGENTWALLET_DEPLOYMENTS``;
2. ``deployments/`` of the agentwallet checkout the working directory is in (any subdirectory
   of it: the checkout is found by walking up to the folder holding ``pyproject.toml``, the
   ``agentwallet/`` package and ``deployments/``);
3. ``$AGENTWALLET_HOME/deployments`` (default ``~/.agentwallet/deployments``).

A name resolves to a recorded address only if there is code there: a record whose contract is
gone (a development node restarted without its state) raises :class:`StaleRecordError` saying
so and what to do. Recording a vault under a name that is taken needs ``replace=True``
(:meth:`Deployments.check_vault_name` lets a caller refuse before deploying anything).
"""

from __future__ import annotations

import json
import os
import secrets
import weakref
from pathlib import Path
from typing import Any

from agentwallet.chain import ANVIL_CHAIN_ID, Chain
from agentwallet.errors import (
    ChainMismatchError,
    ConfigurationError,
    UnknownTokenError,
    UnknownVaultError,
)
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import ETH_TOKEN, TokenInfo

__all__ = [
    "DEPLOYED_ARTIFACTS",
    "DEPLOYMENTS_ENV",
    "ETH_TOKEN",
    "Deployments",
    "StaleRecordError",
    "TokenInfo",
    "VaultNameTakenError",
    "artifact_hashes",
    "deployments_dir",
    "network_name",
]

DEPLOYMENTS_ENV = "AGENTWALLET_DEPLOYMENTS"


class StaleRecordError(ConfigurationError):
    """A recorded vault or token whose address has no code on the connected chain (typically a
    development node restarted without its state)."""


class VaultNameTakenError(ConfigurationError):
    """A vault name that is already recorded, without asking to replace it."""


def project_root(start: Path | None = None) -> Path | None:
    """The agentwallet checkout ``start`` (default: the working directory) is in: the nearest
    folder holding ``pyproject.toml``, the ``agentwallet/`` package and ``deployments/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (
            (folder / "deployments").is_dir()
            and (folder / "pyproject.toml").is_file()
            and (folder / "agentwallet" / "__init__.py").is_file()
        ):
            return folder
    return None


def deployments_dir() -> Path:
    """Where deployment records live: ``$AGENTWALLET_DEPLOYMENTS``, else the ``deployments/``
    of the agentwallet checkout the working directory is in, else
    ``$AGENTWALLET_HOME/deployments``."""
    from agentwallet.keys import home_dir

    env = os.environ.get(DEPLOYMENTS_ENV)
    if env:
        return Path(env).expanduser()
    root = project_root()
    if root is not None:
        return root / "deployments"
    return home_dir() / "deployments"


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

    ``directory`` defaults to :func:`deployments_dir`. On the embedded chain nothing is
    written; the record lives as long as the :class:`Chain` object.
    """

    def __init__(self, chain: Chain, directory: Path | None = None) -> None:
        self.chain = chain
        self.network = network_name(chain)
        self.directory = Path(directory) if directory is not None else deployments_dir()
        self.path: Path | None = (
            None if chain.is_embedded else self.directory / f"{self.network}.json"
        )
        self._live: set[str] = set()  #: recorded addresses seen to have code

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
        replace: bool = True,
    ) -> None:
        """Record vault ``name``; an earlier record of that name is replaced, unless
        ``replace`` is false (then :class:`VaultNameTakenError`)."""
        self.check_vault_name(name, replace=replace)
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

    def check_vault_name(self, name: str, *, replace: bool = False) -> None:
        """Raise :class:`VaultNameTakenError` if ``name`` is recorded and ``replace`` is false:
        call it before deploying, so a refused name costs nothing."""
        entry = self.data()["vaults"].get(name)
        if entry is None or replace:
            return
        state = "" if self.chain.code(checksum(entry["address"])) else " (stale: no code there)"
        raise VaultNameTakenError(
            f"a vault named {name!r} is already recorded in {self._where()} at "
            f"{entry['address']}{state}: choose another --name, or pass --replace to record the "
            "new vault under this name instead"
        )

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "memory (embedded chain)"

    def _live_address(self, kind: str, name: str, address: str, how_to_fix: str) -> str:
        """``address`` (recorded for ``kind`` ``name``) if there is code there, else
        :class:`StaleRecordError`."""
        if address not in self._live:
            if not self.chain.code(address):
                raise StaleRecordError(
                    f"the record of {kind} {name!r} in {self._where()} is stale: there is no "
                    f"contract at {address} on chain {self.chain.chain_id} (was the node "
                    f"restarted without its state?): restart the node with the state file it "
                    f"ran with (`agentwallet node --state FILE`), or {how_to_fix}"
                )
            self._live.add(address)
        return address

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

        :class:`UnknownVaultError` lists the known names; :class:`StaleRecordError` if the
        recorded address has no code.
        """
        if name_or_address.startswith("0x"):
            return checksum(name_or_address, "vault address")
        vaults = self.data()["vaults"]
        if name_or_address in vaults:
            return self._live_address(
                "vault",
                name_or_address,
                checksum(vaults[name_or_address]["address"]),
                f"deploy it again: `agentwallet deploy --name {name_or_address} --replace ...`",
            )
        known = ", ".join(sorted(vaults)) or "none"
        raise UnknownVaultError(
            f"no vault named {name_or_address!r} in {self._where()} (known: {known}): create one "
            "with `agentwallet deploy` or give its address"
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
                self._live_address(
                    "token",
                    symbol,
                    info.address,
                    "deploy it again (`agentwallet deploy --test-token` for tUSDC) or record "
                    "the token's new address",
                )
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
