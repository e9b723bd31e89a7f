"""AgentVaultFactory's ABI (``createVault`` and its ``VaultCreated`` event) and the creation code
of the vault's five parts and the factory, in the order they are deployed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from hexbytes import HexBytes
from web3.contract import Contract
from web3.logs import DISCARD

from agentwallet.bindings.artifacts import abi_of, load_artifact
from agentwallet.protocol.addresses import as_checksum, checksum

if TYPE_CHECKING:
    from agentwallet.chain import Chain

__all__ = ["ARTIFACT", "VAULT_PARTS", "FactoryBinding", "creation_code"]

ARTIFACT = "AgentVaultFactory"
#: The vault's parts in deployment order: each constructor takes the previous part's address
#: (lens, config(lens), admin(config), core(admin)); the factory then takes the core's.
VAULT_PARTS = (
    "AgentVaultLens",
    "AgentVaultCalls",
    "AgentVaultConfig",
    "AgentVaultAdmin",
    "AgentVault",
)


def creation_code(artifact: str, *args: Any) -> bytes:
    """The creation code of the packaged ``artifact`` with its constructor ``args`` encoded."""
    entry = load_artifact(artifact)
    code = bytes.fromhex(str(entry["bytecode"]).removeprefix("0x"))
    constructor = next((i for i in entry["abi"] if i.get("type") == "constructor"), None)
    types = [str(i["type"]) for i in constructor["inputs"]] if constructor else []
    if len(types) != len(args):
        raise ValueError(f"{artifact}'s constructor takes {len(types)} arguments, got {len(args)}")
    return code + abi_encode(types, list(args)) if types else code


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
