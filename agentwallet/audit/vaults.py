"""Checks that an address is an AgentVault, and token metadata, for the audit index's sync."""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agentwallet.audit.errors import NotAVaultAddressError
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.chain import Chain

__all__ = ["check_vaults", "read_token_meta"]

_THRESHOLD = keccak(text="threshold()")[:4]
_REQUEST_COUNT = keccak(text="requestCount()")[:4]


def _word_call(chain: Chain, address: str, selector: bytes) -> int:
    """A view call returning one uint word."""
    if chain.is_embedded:
        result = bytes(chain.w3.eth.call({"to": to_checksum_address(address), "data": selector}))
        return _one_word(result)
    call = {"to": to_checksum_address(address), "data": "0x" + selector.hex()}
    # raw: web3's eth_call validation asks the node for its chain id on every call
    response = chain.raw_request("eth_call", [call, "latest"])
    if not isinstance(response, dict) or "result" not in response:
        raise ValueError(f"eth_call failed: {response}")
    raw = response["result"]
    return _one_word(bytes.fromhex(str(raw).removeprefix("0x")))


def _one_word(result: bytes) -> int:
    if len(result) != 32:
        raise ValueError(f"expected one word, got {len(result)} bytes")
    return int.from_bytes(result, "big")


def check_vaults(chain: Chain, vaults: Sequence[str]) -> tuple[str, ...]:
    """Checksummed vault addresses; raises :class:`NotAVaultAddressError` for an address that has
    no code or does not answer ``threshold()`` and ``requestCount()`` like an AgentVault."""
    out = []
    if not vaults:
        raise NotAVaultAddressError("no vault given: pass at least one vault address")
    for vault in vaults:
        try:
            address = to_checksum_address(vault)
        except ValueError:
            raise NotAVaultAddressError(f"{vault!r} is not an address") from None
        if not chain.code(address):
            raise NotAVaultAddressError(
                f"{address} has no code on chain {chain.chain_id}: it is not a vault (wrong "
                "address, or wrong chain?)"
            )
        try:
            # two plain eth_calls (building a web3 contract costs more than the whole check)
            _word_call(chain, address, _REQUEST_COUNT)
            if _word_call(chain, address, _THRESHOLD) == 0:
                raise ValueError("threshold 0: not initialised")
        except Exception:  # noqa: BLE001 - any failure: it does not behave like a vault
            raise NotAVaultAddressError(
                f"{address} does not answer threshold()/requestCount() like an initialised "
                "AgentVault: it is not a vault"
            ) from None
        out.append(address)
    return tuple(out)


def read_token_meta(chain: Chain, address: str) -> tuple[str, int | None]:
    """(symbol, decimals) of an ERC-20, read from the token; a token that does not answer gets
    its short address and unknown decimals."""
    return Erc20Binding(chain, address).metadata()
