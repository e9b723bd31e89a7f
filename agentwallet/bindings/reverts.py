"""Raw revert data to the typed :class:`~agentwallet.errors.ContractRevertError` it means,
decoded against the packaged artifacts' custom errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentwallet.errors import ContractRevertError

__all__ = ["DECODED_ARTIFACTS", "decode_revert"]

#: The artifacts whose errors :func:`decode_revert` knows: the vault's one ABI first, then its
#: parts (for the OpenZeppelin errors they raise: reentrancy, SafeERC20), the factory, the test
#: token.
DECODED_ARTIFACTS = (
    "IAgentVault",
    "AgentVault",
    "AgentVaultAdmin",
    "AgentVaultFactory",
    "TestUSDC",
)

_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_ERROR_SELECTOR = bytes.fromhex("08c379a0")


def decode_revert(
    data: bytes | str | None,
    abis: list[list[dict[str, object]]] | list[dict[str, object]] | None = None,
    *,
    format_amount: Callable[[str, int], str] | None = None,
) -> ContractRevertError:
    """Decode raw revert ``data`` against the custom errors of ``abis`` (default: the vault's
    ABI ``IAgentVault``, the OpenZeppelin errors its parts may raise, the factory and TestUSDC)
    into the matching :class:`ContractRevertError` subclass.

    ``format_amount(token, amount)`` renders token amounts for messages (e.g. "1.5 tUSDC").
    Unknown data gives a plain :class:`ContractRevertError`.
    """
    from eth_abi.abi import decode
    from eth_utils.crypto import keccak

    if isinstance(data, str):
        text = data[2:] if data.startswith("0x") else data
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return ContractRevertError(f"the contract reverted: {data}", data=b"")
    else:
        raw = bytes(data or b"")
    if abis is None:
        from agentwallet.bindings.artifacts import abi_of

        abis = [list(abi_of(n)) for n in DECODED_ARTIFACTS]
    entries: list[dict[str, Any]] = []
    for item in abis:
        if isinstance(item, list):
            entries.extend(item)
        else:
            entries.append(item)
    selector = raw[:4]
    if selector == _ERROR_SELECTOR:
        try:
            (reason,) = decode(["string"], raw[4:])
        except Exception:  # noqa: BLE001 - malformed reason
            reason = raw[4:].hex()
        return ContractRevertError(
            f"the contract reverted: {reason}",
            error_name="Error",
            args_by_name={"reason": reason},
            data=raw,
        )
    if selector == _PANIC_SELECTOR:
        try:
            (code,) = decode(["uint256"], raw[4:])
        except Exception:  # noqa: BLE001
            code = -1
        return ContractRevertError(
            f"the contract panicked (code {hex(code)})",
            error_name="Panic",
            args_by_name={"code": code},
            data=raw,
        )
    for entry in entries:
        if entry.get("type") != "error":
            continue
        inputs = entry.get("inputs", [])
        types = [i["type"] for i in inputs]
        name = str(entry["name"])
        if keccak(text=f"{name}({','.join(types)})")[:4] != selector:
            continue
        try:
            values = decode(types, raw[4:])
        except Exception:  # noqa: BLE001 - selector clash with other arguments
            continue
        args = {i["name"]: v for i, v in zip(inputs, values, strict=True)}
        return ContractRevertError.from_error(name, args, data=raw, format_amount=format_amount)
    shown = "0x" + raw.hex() if raw else "no data"
    return ContractRevertError(f"the contract reverted ({shown})", data=raw)
