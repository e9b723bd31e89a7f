"""The one transaction pipeline: every transaction agentwallet sends goes through a
:class:`Transactor`.

    simulate  -> estimate gas; a revert raises the typed ContractRevertError (nothing is sent)
    gas       -> estimate * 1.2 + 10,000, plus ``extra_gas`` for state that may change meanwhile
    fees      -> EIP-1559: 2 * base fee + priority (Chain.fee_params, one quote per 2 s)
    balance   -> the sender can pay gas_limit * max fee + value, else InsufficientGasError
    nonce     -> reserved under a per-(chain, address) lock, counted locally (NonceManager)
    sign      -> locally, by the sender's account
    broadcast -> through the chain's Broadcaster (injectable: a relay, a test double); a
                 "nonce too low" resyncs the counter and sends once more
    wait      -> for the receipt, polled in batches (ReceiptWaiter); status 0 raises
                 TransactionFailedError

Each stage is a public method (:meth:`Transactor.prepare`, :meth:`~Transactor.sign_and_broadcast`,
:meth:`~Transactor.wait`) so a caller with its own bookkeeping between them (the agent's payment
journal) composes the same stages; :meth:`Transactor.send` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from agentwallet.bindings.reverts import decode_revert
from agentwallet.chain.nonces import NONCES, NonceManager
from agentwallet.chain.receipts import ReceiptWaiter, StuckPolicy
from agentwallet.errors import (
    ContractRevertError,
    InsufficientGasError,
    NonceConflictError,
    TransactionFailedError,
)
from agentwallet.protocol.addresses import as_checksum
from agentwallet.units import format_amount as format_units

if TYPE_CHECKING:
    from agentwallet.chain.connection import Chain

__all__ = [
    "RECEIPT_TIMEOUT",
    "Broadcaster",
    "NodeBroadcaster",
    "Transactor",
    "broadcast_fault",
    "gas_limit",
    "revert_data",
]

#: Seconds to wait for a receipt.
RECEIPT_TIMEOUT = 120.0
#: ``format_amount(token, amount)`` for amounts in revert messages ("1.5 tUSDC").
AmountFormatter = Callable[[str, int], str]


class Broadcaster(Protocol):
    """Where signed transactions go. The default sends them to the chain's node; inject another
    (a private relay, a recording or failing test double) with ``connect(broadcaster=...)`` or
    :meth:`Chain.with_broadcaster <agentwallet.chain.Chain.with_broadcaster>`."""

    def broadcast(self, raw_transaction: bytes) -> bytes:
        """Send a signed raw transaction; return its hash."""
        ...


class NodeBroadcaster:
    """``eth_sendRawTransaction`` on the node behind ``w3``."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def __repr__(self) -> str:
        return "NodeBroadcaster()"

    def broadcast(self, raw_transaction: bytes) -> bytes:
        return bytes(self.w3.eth.send_raw_transaction(raw_transaction))


def gas_limit(estimate: int, extra_gas: int = 0) -> int:
    """The gas limit for an estimate: plus 20 % and 10,000, plus ``extra_gas``."""
    return int(estimate * 1.2) + 10_000 + extra_gas


def revert_data(exc: BaseException) -> bytes | None:
    """Raw revert data carried by a web3 exception, if any."""
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if data is None and isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            data = error.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    return None


def broadcast_fault(exc: BaseException) -> str | None:
    """What a node's refusal of ``eth_sendRawTransaction`` means for a transaction sent again
    (after a crash or a timeout): ``"known"`` (it is already in the pool: wait for it),
    ``"nonce"`` (its nonce is used: it or another transaction with that nonce was mined),
    ``"underpriced"`` (another transaction with the same nonce is pending and pays more), or
    None (anything else: geth, anvil, reth and py-evm wordings)."""
    text = str(exc).lower()
    if "already known" in text or "known transaction" in text or "already imported" in text:
        return "known"
    if (
        "nonce too low" in text
        or "nonce is too low" in text
        or "invalid nonce" in text
        or "invalid transaction nonce" in text  # py-evm
    ):
        return "nonce"
    if "underpriced" in text:
        return "underpriced"
    return None


def _is_insufficient_funds(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "insufficient funds" in text or "cannot afford" in text


class Transactor:
    """Sends transactions on ``chain``; see the module docstring for the stages.

    ``decode_reverts`` (on each call) chooses what a revert in simulation raises: the typed
    :class:`ContractRevertError` decoded against agentwallet's ABIs (the default, used by the
    SDK), or web3's own ``ContractLogicError`` unchanged (``Chain.send_transaction`` for any
    contract, whose callers read ``.data`` themselves).
    """

    def __init__(
        self,
        chain: Chain,
        broadcaster: Broadcaster | None = None,
        nonces: NonceManager | None = None,
    ) -> None:
        self.chain = chain
        self.broadcaster: Broadcaster = broadcaster or NodeBroadcaster(chain.w3)
        self.nonces = nonces or NONCES
        #: Receipt polling shared by the threads sending on this chain (batched).
        self.receipts = ReceiptWaiter(chain)
        #: When an agent's pending payment is sent again or replaced.
        self.stuck = StuckPolicy()

    def __repr__(self) -> str:
        return f"Transactor({self.chain!r}, {self.broadcaster!r})"

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the embedded chain's lock (eth-tester is not thread-safe); no-op elsewhere."""
        with self.nonces.exclusive(self.chain):
            yield

    # ------------------------------------------------------------------ stages

    def simulate(
        self,
        sender: str,
        to: str | None,
        data: bytes,
        value: int = 0,
        *,
        decode_reverts: bool = True,
        format_amount: AmountFormatter | None = None,
    ) -> int:
        """Estimate gas for a call from ``sender``; a revert raises the decoded typed error."""
        tx: dict[str, Any] = {"from": as_checksum(sender), "data": HexBytes(data), "value": value}
        if to is not None:
            tx["to"] = as_checksum(to)
        try:
            return int(self.chain.w3.eth.estimate_gas(cast(Any, tx)))
        except (ContractLogicError, Web3RPCError) as exc:
            if not decode_reverts:
                raise
            raw = revert_data(exc)
            if raw is not None:
                raise decode_revert(raw, format_amount=format_amount) from None
            if _is_insufficient_funds(exc):
                raise InsufficientGasError(
                    f"{sender} cannot pay for this transaction: send it gas with "
                    "`agentwallet faucet` or a transfer"
                ) from None
            raise ContractRevertError(f"the transaction would fail: {exc}") from None
        except Exception as exc:
            if decode_reverts and _is_insufficient_funds(exc):  # py-evm: "cannot afford txn gas"
                raise InsufficientGasError(
                    f"{sender} has not enough ETH for gas: send it gas with "
                    "`agentwallet faucet` or a transfer"
                ) from None
            raise

    def prepare(
        self,
        sender: str,
        to: str | None,
        data: bytes,
        value: int = 0,
        *,
        gas: int | None = None,
        extra_gas: int = 0,
        fees: Mapping[str, int] | None = None,
        fields: Mapping[str, Any] | None = None,
        decode_reverts: bool = True,
        format_amount: AmountFormatter | None = None,
    ) -> dict[str, Any]:
        """Simulate, then a complete transaction without its nonce, after checking ``sender``
        can pay for it (:class:`InsufficientGasError` otherwise; nothing is sent).

        A given ``gas`` skips the simulation: the caller fixed the limit on purpose (a
        transaction that must be mined even if it reverts). ``fees`` default to
        :meth:`Chain.fee_params`; ``fields`` (``accessList``, a ``chainId``...) are copied into
        the transaction as given."""
        if gas is None:
            estimate = self.simulate(
                sender,
                to,
                data,
                value,
                decode_reverts=decode_reverts,
                format_amount=format_amount,
            )
            gas = gas_limit(estimate, extra_gas)
        fee_fields = dict(fees) if fees else self.chain.fee_params()
        tx: dict[str, Any] = {
            "chainId": self.chain.chain_id,
            "data": HexBytes(data),
            "value": value,
            "gas": gas,
            **fee_fields,
        }
        if to is not None:
            tx["to"] = as_checksum(to)
        tx.update(fields or {})
        max_fee = int(fee_fields.get("maxFeePerGas", fee_fields.get("gasPrice", 0)))
        balance = int(self.chain.w3.eth.get_balance(as_checksum(sender)))
        cost = gas * max_fee + value
        if balance < cost:
            need, have = format_units(cost, 18), format_units(balance, 18)
            raise InsufficientGasError(
                f"{sender} has {have} ETH but this transaction may cost up to {need} ETH: send "
                "it gas with `agentwallet faucet` or a transfer"
            )
        return tx

    def broadcast(self, raw_transaction: bytes) -> bytes:
        """Hand a signed transaction to the broadcaster; return its hash."""
        return self.broadcaster.broadcast(raw_transaction)

    def sign_and_broadcast(
        self, account: BaseAccount, tx: Mapping[str, Any], *, nonce: int | None = None
    ) -> bytes:
        """Sign ``tx`` with the next nonce of ``account`` (or ``nonce``) under the address's
        lock, and broadcast it; return the hash."""
        address = str(account.address)
        if nonce is not None:
            with self.nonces.lock(self.chain, address):
                signed = account.sign_transaction(cast(Any, {**tx, "nonce": nonce}))
                return self.broadcast(bytes(signed.raw_transaction))
        for attempt in (1, 2):
            try:
                with self.nonces.reserve(self.chain, address) as slot:
                    signed = account.sign_transaction(cast(Any, {**tx, "nonce": slot.nonce}))
                    try:
                        slot.tx_hash = self.broadcast(bytes(signed.raw_transaction))
                    except Exception:
                        self.nonces.resync(self.chain, address)  # ask the node next time
                        raise
                return slot.tx_hash
            except Exception as exc:
                if broadcast_fault(exc) != "nonce":
                    raise
                if attempt == 2:  # the node's own count was stale too: someone else is sending
                    raise NonceConflictError(
                        f"nonce {slot.nonce} of {address} was taken by another transaction "
                        "twice in a row (another process signing with this key?); this "
                        "transaction was not sent: retry it"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(
        self,
        tx_hash: bytes,
        *,
        timeout: float = RECEIPT_TIMEOUT,
        check: bool = True,
        also: Sequence[bytes] = (),
    ) -> TxReceipt:
        """The receipt of ``tx_hash`` (or of the first mined of ``also``: transactions it
        replaced) once mined, polled with the other waiting threads' in one batch
        (:class:`~agentwallet.chain.receipts.ReceiptWaiter`); ``TimeExhausted`` after
        ``timeout`` seconds. With ``check``, status 0 raises :class:`TransactionFailedError`."""
        receipt = self.receipts.wait_any([bytes(tx_hash), *also], timeout)
        if receipt is None:
            raise TimeExhausted(
                f"transaction {HexBytes(tx_hash).to_0x_hex()} is not in the chain after "
                f"{timeout} seconds"
            )
        if check and receipt["status"] != 1:
            raise TransactionFailedError(
                f"transaction {HexBytes(tx_hash).to_0x_hex()} was mined but reverted (status "
                "0): simulate it with eth_call to see the revert reason",
                receipt=receipt,
            )
        return receipt

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of ``tx_hash`` if it is mined, else None."""
        try:
            return self.chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    # ------------------------------------------------------------------ all of them

    def send(
        self,
        account: BaseAccount,
        to: str | None,
        data: bytes = b"",
        value: int = 0,
        *,
        gas: int | None = None,
        extra_gas: int = 0,
        nonce: int | None = None,
        fees: Mapping[str, int] | None = None,
        fields: Mapping[str, Any] | None = None,
        check: bool = True,
        timeout: float = RECEIPT_TIMEOUT,
        decode_reverts: bool = True,
        format_amount: AmountFormatter | None = None,
    ) -> TxReceipt:
        """Simulate, sign with a managed nonce, broadcast and wait; return the receipt.

        Reverts raise the typed :class:`ContractRevertError` before anything is sent; a mined
        transaction with status 0 raises :class:`TransactionFailedError` (unless not ``check``).
        """
        with self.exclusive():
            tx = self.prepare(
                str(account.address),
                to,
                data,
                value,
                gas=gas,
                extra_gas=extra_gas,
                fees=fees,
                fields=fields,
                decode_reverts=decode_reverts,
                format_amount=format_amount,
            )
            tx_hash = self.sign_and_broadcast(account, tx, nonce=nonce)
            return self.wait(tx_hash, timeout=timeout, check=check)
