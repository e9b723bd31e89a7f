"""A minimal ERC-20 ABI (balanceOf, decimals, symbol, transfer, approve, allowance, Transfer):
every token is read through it, not through the test token's ABI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.contract import Contract
from web3.types import BlockIdentifier

from agentwallet.bindings.artifacts import abi_of
from agentwallet.protocol.addresses import as_checksum, checksum

if TYPE_CHECKING:
    from agentwallet.chain import Chain

__all__ = ["ERC20_ABI", "TEST_TOKEN_ARTIFACT", "Erc20Binding"]


def _fn(name: str, inputs: list[tuple[str, str]], outputs: list[str], view: bool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": "", "type": t} for t in outputs],
        "stateMutability": "view" if view else "nonpayable",
    }


ERC20_ABI: list[dict[str, Any]] = [
    _fn("balanceOf", [("account", "address")], ["uint256"], True),
    _fn("decimals", [], ["uint8"], True),
    _fn("symbol", [], ["string"], True),
    _fn("allowance", [("owner", "address"), ("spender", "address")], ["uint256"], True),
    _fn("transfer", [("to", "address"), ("value", "uint256")], ["bool"], False),
    _fn("approve", [("spender", "address"), ("value", "uint256")], ["bool"], False),
    {
        "type": "event",
        "name": "Transfer",
        "anonymous": False,
        "inputs": [
            {"name": "from", "type": "address", "indexed": True},
            {"name": "to", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
]

#: The development test token (``deploy --test-token``, the faucet mints it).
TEST_TOKEN_ARTIFACT = "TestUSDC"


class Erc20Binding:
    """An ERC-20 token at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = checksum(address, "token address")
        self.contract: Contract = chain.w3.eth.contract(
            address=as_checksum(self.address), abi=ERC20_ABI
        )

    def __repr__(self) -> str:
        return f"Erc20Binding({self.address})"

    def balance_of(self, holder: str, block: BlockIdentifier = "latest") -> int:
        return int(
            self.contract.functions.balanceOf(as_checksum(holder)).call(block_identifier=block)
        )

    def allowance(self, owner: str, spender: str) -> int:
        fn = self.contract.functions.allowance(as_checksum(owner), as_checksum(spender))
        return int(fn.call())

    def symbol(self) -> str:
        return str(self.contract.functions.symbol().call())

    def decimals(self) -> int:
        return int(self.contract.functions.decimals().call())

    def metadata(self) -> tuple[str, int | None]:
        """(symbol, decimals), tolerating tokens that answer badly: a ``bytes32`` symbol is
        decoded, a missing one is the short address, missing decimals are None."""
        symbol = self.address[:10]
        decimals: int | None = None
        w3 = self.chain.w3
        target = as_checksum(self.address)
        try:
            raw = bytes(w3.eth.call({"to": target, "data": HexBytes(keccak(text="symbol()")[:4])}))
            try:
                symbol = str(abi_decode(["string"], raw)[0])
            except Exception:  # noqa: BLE001 - some old tokens return bytes32
                symbol = raw[:32].rstrip(b"\0").decode("utf-8", "replace") or symbol
        except Exception:  # noqa: BLE001 - no symbol(): keep the short address
            pass
        try:
            raw = bytes(
                w3.eth.call({"to": target, "data": HexBytes(keccak(text="decimals()")[:4])})
            )
            decimals = int.from_bytes(raw[:32], "big") if len(raw) >= 32 else None
        except Exception:  # noqa: BLE001 - no decimals(): amounts stay in base units
            decimals = None
        return symbol, decimals

    def encode_approve(self, spender: str, amount: int) -> bytes:
        return bytes(
            HexBytes(self.contract.encode_abi("approve", args=[as_checksum(spender), amount]))
        )

    def encode_transfer(self, to: str, amount: int) -> bytes:
        return bytes(HexBytes(self.contract.encode_abi("transfer", args=[as_checksum(to), amount])))

    def encode_mint(self, to: str, amount: int) -> bytes:
        """``mint(to, amount)`` of the development test token (not part of ERC-20)."""
        test_token = self.chain.w3.eth.contract(abi=list(abi_of(TEST_TOKEN_ARTIFACT)))
        return bytes(HexBytes(test_token.encode_abi("mint", args=[as_checksum(to), amount])))
