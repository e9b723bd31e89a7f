"""AgentVaultFactory's ABI: the creation code, ``createVault`` and its ``VaultCreated`` event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3.contract import Contract
from web3.logs import DISCARD

from agentwallet.bindings.artifacts import abi_of, load_artifact
from agentwallet.protocol.addresses import as_checksum, checksum

if TYPE_CHECKING:
    from agentwallet.chain import Chain

__all__ = ["FactoryBinding", "factory_creation_code"]

ARTIFACT = "AgentVaultFactory"


def factory_creation_code() -> bytes:
    """The factory's creation code (it deploys its AgentVault implementation too)."""
    return bytes.fromhex(load_artifact(ARTIFACT)["bytecode"].removeprefix("0x"))


class FactoryBinding:
    """AgentVaultFactory at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.address = checksum(address, "factory address")
        self.contract: Contract = chain.w3.eth.contract(
            address=as_checksum(self.address), abi=list(abi_of(ARTIFACT))
        )

    def __repr__(self) -> str:
        return f"FactoryBinding({self.address})"

    def encode_create_vault(
        self,
        owners: Sequence[str],
        threshold: int,
        request_expiry: int,
        max_open_requests: int,
        salt: bytes,
    ) -> bytes:
        """Calldata of ``createVault``."""
        data = self.contract.encode_abi(
            "createVault",
            args=[
                [as_checksum(o) for o in owners],
                threshold,
                request_expiry,
                max_open_requests,
                salt,
            ],
        )
        return bytes(HexBytes(data))

    def created_vaults(self, receipt: Mapping[str, Any]) -> list[str]:
        """Addresses of the vaults this factory created in ``receipt``."""
        events = self.contract.events.VaultCreated().process_receipt(receipt, errors=DISCARD)
        return [checksum(str(e["args"]["vault"])) for e in events if e["address"] == self.address]
