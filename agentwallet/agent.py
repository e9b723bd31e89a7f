"""The agent's side: pay from a vault inside limits, or escalate to the owners.

``AgentWallet.pay`` is idempotent per ``ref``: before broadcasting, the signed transaction is
journaled under ``$AGENTWALLET_HOME/journal/``; a retry with the same ref (same or new process,
after a crash or a timeout) re-broadcasts or looks up that exact transaction instead of signing a
new one, so one ref pays at most once. A ref already used on-chain by this agent is answered
with the earlier result when the payment is the same (token, recipient, amount); a ref reused
for a different payment raises :class:`~agentwallet.errors.RefReusedError` and sends nothing.
Nonces come from a per-(chain, address) lock and counter, so threads can pay concurrently.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_account.signers.base import BaseAccount
from web3.exceptions import TimeExhausted
from web3.types import TxReceipt

from agentwallet import intents
from agentwallet.bindings.vault import AgentRecord
from agentwallet.chain import Chain
from agentwallet.chain.tx import broadcast_fault
from agentwallet.errors import (
    AgentWalletError,
    AmountError,
    ContractRevertError,
    InsufficientFundsError,
    IntentRefusedError,
    PaymentOutcomeUnknownError,
    PaymentPendingError,
    RefReusedError,
    TransactionFailedError,
)
from agentwallet.faults import guard_pay
from agentwallet.hotpath import DEFAULT_MAX_AGE, PolicyCache
from agentwallet.journal import Journal
from agentwallet.keys import home_dir
from agentwallet.paysend import send_journaled, unknown_error, wait_paid
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import AgentStatus
from agentwallet.protocol.models import (
    Escalated,
    Paid,
    PaymentCheck,
    PaymentOutcome,
    PaymentState,
    Remaining,
    SignedIntent,
    TokenInfo,
    TxResult,
)
from agentwallet.protocol.refs import ref_text, to_ref
from agentwallet.protocol.requests import PaymentRequest
from agentwallet.ref_index import RefIndex, earlier_payment, lookup
from agentwallet.retry import close_nonce_gap
from agentwallet.units import format_amount
from agentwallet.vault import Vault


class AgentWallet:
    """An agent key bound to a vault. ``signer`` is any eth-account ``BaseAccount`` (a
    :class:`~agentwallet.keys.Signer`, a ``LocalAccount``); ``journal_dir`` defaults to
    ``$AGENTWALLET_HOME/journal``."""

    def __init__(
        self,
        chain: Chain,
        vault: Vault,
        signer: BaseAccount,
        journal_dir: Path | None = None,
        *,
        policy_max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.chain = chain
        self.vault = vault
        self.signer = signer
        self.address = checksum(str(signer.address))
        self.journal = Journal(journal_dir or home_dir() / "journal")
        #: which refs this agent's payments used on-chain (a cache next to the journal)
        self.refs = RefIndex(self.journal.directory / "refs.sqlite")
        #: The vault's state for this agent, checked locally on the hot path (``docs/sdk.md``);
        #: ``policy_max_age=0`` checks every payment in full.
        self.policy_cache = PolicyCache(chain, vault, self.address, policy_max_age)

    def __repr__(self) -> str:
        return f"AgentWallet(agent={self.address}, vault={self.vault.address})"

    # ------------------------------------------------------------------ checks

    def _token(self, token: str | TokenInfo | None) -> TokenInfo:
        return token if isinstance(token, TokenInfo) else self.vault.token(token)

    @staticmethod
    def _amount(amount: int) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise AmountError(
                f"amount {amount!r} must be an int in base units: convert text with "
                "agentwallet.units.parse_amount"
            )
        if amount <= 0:
            raise AmountError(f"amount {amount} must be greater than zero")
        return amount

    def _check_agent_state(self) -> tuple[AgentRecord, int]:
        """Raise what the contract would for a paused vault or an agent that may not pay now
        (checked first, so the dry run's other errors do not hide it); else the agent's record
        and the latest block's timestamp."""
        if self.vault.bindings.paused():
            raise ContractRevertError.from_error("VaultIsPaused")
        record = self.vault.bindings.agent(self.address)
        if record.status != AgentStatus.ACTIVE:
            args = {"agent": self.address, "status": int(record.status)}
            raise ContractRevertError.from_error("AgentNotActive", args)
        now = self.chain.timestamp()
        if now + 1 < record.valid_after:  # the payment lands in the next block at the earliest
            args = {"agent": self.address, "validAfter": record.valid_after}
            raise ContractRevertError.from_error("AgentNotYetValid", args)
        if record.valid_until and now >= record.valid_until:
            args = {"agent": self.address, "validUntil": record.valid_until}
            raise ContractRevertError.from_error("AgentExpired", args)
        return record, now

    def check(self, to: str, amount: int, token: str | None = None) -> PaymentCheck:
        """What paying ``amount`` (base units) of ``token`` to ``to`` would do, without sending.

        Raises the typed error for a paused vault, an inactive/expired agent, a vault that
        cannot cover a direct payment (:class:`InsufficientFundsError`) or an agent without gas
        (:class:`InsufficientGasError`). The reasons are the contract's own ``checkPayment``;
        then pay is dry-run.
        """
        to = checksum(to, "recipient address")
        amount = self._amount(amount)
        return self._prepare(to, amount, self._token(token), b"\x01" * 32)[0]

    def _prepare(
        self, to: str, amount: int, info: TokenInfo, ref: bytes, *, learn: bool = False
    ) -> tuple[PaymentCheck, dict[str, Any]]:
        """:meth:`check`, plus the unsigned transaction (no nonce) paying with ``ref``. With
        ``learn``, a direct payment's reads fill :attr:`policy_cache` and reserve ``amount``
        in it (the caller sends the transaction or releases the reservation)."""
        block = self.chain.block_number() if learn else 0
        record, now = self._check_agent_state()
        bindings = self.vault.bindings
        bits = bindings.check_payment(self.address, info.address, to, amount)
        policy = bindings.policy(self.address, info.address)
        balance = 0
        if bits == 0:
            balance = self.vault.balance(info)
            if balance < amount:
                raise InsufficientFundsError(
                    f"vault {self.vault.address} holds {format_amount(balance, info.decimals)} "
                    f"{info.symbol}, less than the {format_amount(amount, info.decimals)} "
                    f"{info.symbol} to pay: ask an owner to fund it"
                )
        data = self._pay_data(info, to, amount, ref)
        tx = self.chain.transactor.prepare(  # the dry run of pay, and the gas check
            self.address, self.vault.address, data, format_amount=self.vault._fmt
        )
        check = PaymentCheck(bits == 0, bits.texts, policy.available, policy.max_per_payment)
        if learn and bits == 0:
            self.policy_cache.learn(block, info, to, amount, policy, balance, tx, (record, now))
        return check, tx

    def remaining(self) -> dict[str, Remaining]:
        """The agent's budget per token symbol, for every token in its scope."""
        view = self.vault.agent(self.address)
        result = {}
        for address, p in view.policies.items():
            info = self.vault.token(address)
            result[info.symbol] = Remaining(
                info, p.available, p.max_per_payment, p.allowance, p.period
            )
        return result

    # ------------------------------------------------------------------ paying

    def _pay_data(self, token: TokenInfo, to: str, amount: int, ref: bytes) -> bytes:
        return self.vault.bindings.encode("pay", token.address, to, amount, ref)

    def pay(
        self,
        to: str,
        amount: int,
        token: str | None = None,
        ref: str | bytes | None = None,
        *,
        relay: str | None = None,
        fee: int = 0,
        exactly_once: bool = False,
    ) -> PaymentOutcome:
        """Pay ``amount`` base units of ``token`` (default ETH) to ``to``.

        Inside the limits the money moves now (:class:`Paid`); otherwise a request is created
        for the owners (:class:`Escalated`). ``ref`` is the idempotency key (a random one if
        None): a retry with the same ref never pays twice, and a ref reused for a different
        payment raises :class:`RefReusedError`. Errors are raised before anything is sent;
        :class:`PaymentPendingError` means it was broadcast but not confirmed yet: retry with
        the same ref.

        With ``relay`` (a relay's URL, ``agentwallet relay``) the agent signs an intent instead
        and the relay submits it and pays the gas, taking ``fee`` (also the intent's
        ``maxFee``) in the same token. Its nonce is chosen so that the ref pays at most once on
        this chain from any machine running the SDK; ``exactly_once`` derives it from the ref
        itself, so no one can ever run that ref twice (about 17,000 more gas; docs/sdk.md,
        "Exactly once"). A direct payment's ref is guarded by the journal and the vault's logs;
        ``exactly_once`` without a relay submits that intent from the agent (:mod:`.once`).
        """
        to = checksum(to, "recipient address")
        amount = self._amount(amount)
        with guard_pay(self, ref):  # a node fault: typed, saying whether it may have been sent
            info = self._token(token)
            if relay is not None:
                return self._pay_relayed(relay, to, amount, info, ref, fee, exactly_once)
            from agentwallet.once import pay_exactly_once

            with self.chain.transactor.exclusive():  # eth-tester is not thread-safe
                if exactly_once:
                    return pay_exactly_once(self, to, amount, info, ref)
                return self._pay(to, amount, info, ref)

    def _pay(
        self, to: str, amount: int, info: TokenInfo, ref: str | bytes | None
    ) -> PaymentOutcome:
        ref_bytes, key, entry = self._journaled_entry(ref, info, to, amount)
        if entry is not None:
            if entry.get("kind") == "intent":
                return self._intent_result(entry, ref_bytes)
            recovered = self._recover(entry, ref_bytes)
            if recovered is not None:
                return recovered
        polled_to = None
        if ref is not None:  # a freshly generated ref cannot be on-chain yet: skip the log scan
            earlier, polled_to = lookup(self, ref_bytes)  # its log read serves the cache too
            if earlier is not None:
                onchain = (earlier.token.address, earlier.to, earlier.amount)
                self._same_payment(ref_bytes, onchain, earlier, info, to, amount)
                return earlier
        tx, reserved = self._payment_tx(to, amount, info, ref_bytes, polled_to)
        try:
            tx_hash, signed = send_journaled(self, tx, key, info, to, amount)
        except PaymentOutcomeUnknownError:
            self.policy_cache.clear()  # it may have been sent: read the vault again
            raise
        except BaseException:
            if reserved:  # nothing was sent
                self.policy_cache.release(info, to, amount)
            raise
        if reserved:
            self.policy_cache.sent(tx_hash, info, amount)
        try:
            outcome = self._finish(tx_hash, info, to, amount, ref_bytes, signed)
        except TransactionFailedError:
            if reserved:
                self.policy_cache.settled(info, amount, paid=False)
            raise
        if reserved:
            self.policy_cache.settled(info, amount, paid=isinstance(outcome, Paid))
        return outcome

    def _journaled_entry(
        self, ref: str | bytes | None, info: TokenInfo, to: str, amount: int
    ) -> tuple[bytes, tuple[int, str, str, bytes], dict[str, Any] | None]:
        """Every path's first step for ``ref`` (a random one if None): its bytes, its journal
        key and its journal entry (None if not journaled). A journaled entry for another
        payment raises :class:`RefReusedError` (nothing is sent)."""
        ref_bytes = to_ref(ref if ref is not None else "aw-" + secrets.token_hex(14))
        key = (self.chain.chain_id, self.vault.address, self.address, ref_bytes)
        with self.chain.transactor.nonces.lock(self.chain, self.address):
            entry = self.journal.get(*key)
        if entry is not None:
            journaled = (entry["token"], entry["to"], int(entry["amount"]))
            if journaled != (info.address, to, amount):
                self._same_payment(ref_bytes, journaled, self._journaled(entry), info, to, amount)
        return ref_bytes, key, entry

    def _payment_tx(
        self, to: str, amount: int, info: TokenInfo, ref: bytes, polled_to: int | None
    ) -> tuple[dict[str, Any], bool]:
        """The unsigned payment (no nonce) and whether :attr:`policy_cache` reserved it: from
        the cache when it approves (no reads, no dry run), else through the full check."""
        data = self._pay_data(info, to, amount, ref)
        fast = self.policy_cache.approve(info, to, amount, polled_to)
        if fast is not None:
            tx = {"chainId": self.chain.chain_id, "to": self.vault.address, "data": data}
            return {**tx, "value": 0, **fast}, True
        check, tx = self._prepare(to, amount, info, ref, learn=True)
        return tx, check.will_pay and self.policy_cache.max_age > 0  # learn() reserved it

    def _same_payment(
        self,
        ref: bytes,
        earlier: tuple[str, str, int],
        outcome: PaymentOutcome | str,
        info: TokenInfo,
        to: str,
        amount: int,
    ) -> None:
        """Raise :class:`RefReusedError` unless ``earlier`` (token, recipient, amount) is the
        payment asked for now: an idempotency key names one payment."""
        token, earlier_to, earlier_amount = earlier
        if (token.lower(), earlier_to.lower(), earlier_amount) == (
            info.address.lower(),
            to.lower(),
            amount,
        ):
            return
        old = self.vault.token(token)
        what = f"{format_amount(earlier_amount, old.decimals)} {old.symbol} to {earlier_to}"
        if isinstance(outcome, Escalated):
            what += f", request {outcome.request_id} in tx {outcome.tx_hash}"
        elif isinstance(outcome, Paid):
            what += f", paid in tx {outcome.tx_hash}"
        else:
            what += f", tx {outcome}"
        raise RefReusedError(
            f"ref {ref_text(ref)!r} was already used by agent {self.address} for another "
            f"payment ({what}); nothing was sent: use a new ref for a new payment",
            earlier=outcome,
        )

    def _journaled(self, entry: dict[str, Any]) -> PaymentOutcome | str:
        """A journaled payment's outcome if mined (nothing is re-sent), else its tx hash."""
        if entry.get("kind") == "intent":
            found = self._onchain_result(bytes.fromhex(entry["ref"][2:]))
            return found if found is not None else f"(intent nonce {entry['intent']['nonce']})"
        receipt = self.chain.transactor.receipt(bytes.fromhex(entry["tx_hash"][2:]))
        if receipt is None or receipt["status"] != 1:
            return str(entry["tx_hash"])
        info = self.vault.token(entry["token"])
        ref = bytes.fromhex(entry["ref"][2:])
        return self._result(receipt, info, entry["to"], int(entry["amount"]), ref)

    def _finish(  # noqa: PLR0913
        self,
        tx_hash: bytes,
        info: TokenInfo,
        to: str,
        amount: int,
        ref: bytes,
        tx: dict[str, Any] | None = None,
        replaced: Sequence[bytes] = (),
    ) -> PaymentOutcome:
        key = (self.chain.chain_id, self.vault.address, self.address, ref)
        try:  # sent again, then replaced (with ``tx``) while pending: paysend.wait_paid
            receipt = wait_paid(self, [tx_hash, *replaced], key, tx)
        except TimeExhausted:
            raise self._unknown(ref, tx_hash, "it is not mined yet") from None
        except OSError as exc:  # requests' ConnectionError/Timeout: the node went away
            what = f"the node stopped answering while waiting ({type(exc).__name__})"
            raise self._unknown(ref, tx_hash, what) from None
        return self._result(receipt, info, to, amount, ref)

    _unknown = staticmethod(unknown_error)

    def _result(
        self, receipt: TxReceipt, info: TokenInfo, to: str, amount: int, ref: bytes
    ) -> PaymentOutcome:
        tx = TxResult.from_receipt(receipt)
        if receipt["status"] != 1:
            raise TransactionFailedError(
                f"payment {tx.tx_hash} was mined but reverted; retry with a new ref",
                receipt=receipt,
            )
        return intents.outcome(self.vault, receipt, info, to, amount, ref)

    def _recover(self, entry: dict[str, Any], ref: bytes) -> PaymentOutcome | None:
        """Finish a journaled payment: look up or re-broadcast its exact signed transaction.
        None if that transaction can never be mined (its nonce went to another one)."""
        tx_hash = bytes.fromhex(entry["tx_hash"][2:])
        replaced = [bytes.fromhex(h[2:]) for h in entry.get("replaced", [])]  # one may be mined
        info = self.vault.token(entry["token"])
        to, amount = entry["to"], int(entry["amount"])
        transactor = self.chain.transactor
        for receipt in transactor.receipts.fetch([tx_hash, *replaced]).values():
            return self._result(receipt, info, to, amount, ref)
        with transactor.nonces.lock(self.chain, self.address):
            if self.chain.nonce(self.address) > int(entry["nonce"]):
                for receipt in transactor.receipts.fetch([tx_hash, *replaced]).values():
                    return self._result(receipt, info, to, amount, ref)
                # the nonce was used by another transaction: this one is dead
                self.journal.delete(self.chain.chain_id, self.vault.address, self.address, ref)
                return None
            close_nonce_gap(self, int(entry["nonce"]))  # the node lost earlier nonces: resend
            try:
                transactor.broadcast(bytes.fromhex(entry["raw_tx"][2:]))
            except Exception as exc:  # noqa: BLE001 - the journaled tx may be in a pool already
                fault = broadcast_fault(exc)
                if fault == "underpriced":
                    what = f"another transaction with its nonce {entry['nonce']} is pending"
                    raise self._unknown(ref, tx_hash, what) from None
                if fault is None:
                    what = f"sending it again failed ({type(exc).__name__})"
                    raise self._unknown(ref, tx_hash, what) from None
        return self._finish(tx_hash, info, to, amount, ref, replaced=replaced)

    def _onchain_result(self, ref: bytes) -> PaymentOutcome | None:
        """An earlier payment or request of this agent with ``ref`` (:func:`earlier_payment`)."""
        return earlier_payment(self, ref)

    # ------------------------------------------------------------------ intents

    def sign_intent(
        self,
        to: str,
        amount: int,
        token: str | None = None,
        ref: str | bytes | None = None,
        nonce: int | None = None,
        deadline: int | None = None,
        max_fee: int = 0,
        *,
        exactly_once: bool = False,
    ) -> SignedIntent:
        """Sign a payment anyone may submit (``payWithIntent``, a relay, an ERC-7710
        redeemer): nothing is sent. ``nonce`` defaults to a free one chosen from ``ref`` (a
        random ref if None), or with ``exactly_once`` the one derived from the ref so it can
        never execute twice (+17k gas); ``deadline`` to one hour from now."""
        to = checksum(to, "recipient address")
        amount = self._amount(amount)
        ref_bytes = to_ref(ref if ref is not None else "aw-" + secrets.token_hex(14))
        return intents.sign_intent(
            self.vault,
            self.signer,
            to,
            amount,
            self._token(token),
            ref_bytes,
            nonce=nonce,
            deadline=deadline,
            max_fee=max_fee,
            exactly_once=exactly_once,
        )

    def _pay_relayed(  # noqa: PLR0913
        self,
        url: str,
        to: str,
        amount: int,
        info: TokenInfo,
        ref: str | bytes | None,
        fee: int,
        exactly_once: bool,
    ) -> PaymentOutcome:
        from agentwallet.relay.client import RelayClient

        ref_bytes, key, entry = self._journaled_entry(ref, info, to, amount)
        if entry is not None:
            if entry.get("kind") != "intent":  # sent directly before: finish that one
                with self.chain.transactor.exclusive():
                    return self._pay(to, amount, info, ref_bytes)
        # sign (reads the nonce bitmap) BEFORE the log lookup: an intent with this ref mined
        # after the lookup must have taken the nonce this one picks (intents module docstring)
        signed = intents.sign_intent(
            self.vault, self.signer, to, amount, info, ref_bytes, max_fee=fee,
            exactly_once=exactly_once,
        )  # fmt: skip
        if ref is not None:
            earlier = self._onchain_result(ref_bytes)
            if earlier is not None:
                onchain = (earlier.token.address, earlier.to, earlier.amount)
                self._same_payment(ref_bytes, onchain, earlier, info, to, amount)
                return earlier
        self._check_agent_state()
        self.journal.put(
            *key,
            {
                "kind": "intent",
                "relay": url,
                "intent": json.loads(signed.to_json()),
                "ref": "0x" + ref_bytes.hex(),
                "token": info.address,
                "to": to,
                "amount": str(amount),
                "created": time.time(),
            },
        )
        client = RelayClient(url)
        try:
            record = client.wait(client.submit_intent(signed, fee)["id"])
        except IntentRefusedError as exc:
            earlier = self._onchain_result(ref_bytes) if exc.code == "nonce_used" else None
            if earlier is None:
                raise
            onchain = (earlier.token.address, earlier.to, earlier.amount)
            self._same_payment(ref_bytes, onchain, earlier, info, to, amount)
            return earlier
        if record.get("status") == "failed" or not record.get("tx_hash"):
            raise TransactionFailedError(
                f"relay {url} reports intent {record.get('id')} failed: "
                f"{record.get('error', 'no reason given')}; retry pay with the same ref"
            )
        receipt = self.chain.transactor.wait(bytes.fromhex(record["tx_hash"][2:]), check=False)
        return self._result(receipt, info, to, amount, ref_bytes)

    def _intent_result(self, entry: dict[str, Any], ref: bytes) -> PaymentOutcome:
        earlier = self._onchain_result(ref)
        if earlier is not None:
            return earlier
        how = f"through relay {entry.get('relay')}: retry pay with relay= and the same ref"
        if entry.get("submitter"):  # agentwallet.once: an exactly-once intent it submitted
            how = "as an exactly-once intent: retry pay with exactly_once=True and the same ref"
        raise PaymentPendingError(
            f"payment ref {ref_text(ref)!r} was sent {how} (it is not mined yet)"
        )

    def payment_state(self, ref: str | bytes) -> PaymentState:
        """What became of ``ref``: paid / escalated (with the outcome), pending (journaled, not
        mined), pending_elsewhere (not journaled here, but an exactly-once payment of it is in
        the node's pool: ``pay`` raises :class:`RefPendingElsewhereError`), cancelled (its
        ref-derived intent nonce is spent without a payment) or unknown. ``guarantee``:
        ``"chain"`` when the ref-derived nonce is spent (no intent can ever pay this ref again),
        ``"logs"`` when the answer comes from the vault's events (every SDK retry gets it),
        ``"pool"`` when from the node's pending block, ``"journal"`` when only this machine's
        journal knows."""
        from agentwallet.once import used_in_pending_block

        ref_bytes = to_ref(ref)
        text, nonce = ref_text(ref_bytes), intents.ref_nonce(ref_bytes)
        spent = self.vault.bindings.is_nonce_used(self.address, nonce)
        earlier = self._onchain_result(ref_bytes)
        if earlier is not None:
            guarantee = "chain" if spent else "logs"
            return PaymentState(text, earlier.status, guarantee, earlier, earlier.tx_hash)
        if spent:
            return PaymentState(text, "cancelled", "chain", nonce=nonce)
        entry = self.journal.get(self.chain.chain_id, self.vault.address, self.address, ref_bytes)
        if entry is not None:
            tx_hash = entry.get("tx_hash")
            nonce_used = entry.get("intent", {}).get("nonce")
            return PaymentState(text, "pending", "journal", tx_hash=tx_hash, nonce=nonce_used)
        if used_in_pending_block(self, nonce):  # the check pay makes before it sends
            return PaymentState(text, "pending_elsewhere", "pool", nonce=nonce)
        return PaymentState(text, "unknown", "journal")

    def invalidate_nonces(self, nonces: list[int]) -> list[TxResult]:
        """Cancel intents (and rotations) signed over ``nonces`` of this key: one transaction
        per bitmap word. An intent's nonce is :attr:`SignedIntent.nonce`."""
        return intents.invalidate_nonces(self.vault, self.signer, self.address, nonces)

    def rotate_key(self, new_signer: BaseAccount, relay: str | None = None) -> TxResult:
        """Move this agent's rights (limits, budget, open requests) to ``new_signer``: both keys
        sign ``RotateKey``; the old key submits (it pays the gas) or, with ``relay``, a relay
        does. Afterwards this wallet signs with the new key and the old key is dead."""
        rotation = intents.sign_rotation(self.vault, self.signer, new_signer)
        if relay is not None:
            from agentwallet.relay.client import RelayClient

            client = RelayClient(relay)
            record = client.wait(client.submit_rotation(rotation)["id"])
            if record.get("status") != "done":
                raise TransactionFailedError(
                    f"relay {relay} reports the rotation failed: {record.get('error')}"
                )
            tx_hash = bytes.fromhex(record["tx_hash"][2:])
            result = TxResult.from_receipt(self.chain.transactor.wait(tx_hash))
        else:
            try:
                result = intents.submit_rotation(self.vault, self.signer, rotation)
            except IntentRefusedError as exc:
                if isinstance(exc.__cause__, ContractRevertError):
                    raise exc.__cause__ from None
                raise
        self.signer = new_signer
        self.address = rotation.new_key
        return result

    # ------------------------------------------------------------------ requests

    def cancel(self, request_id: int) -> TxResult:
        """Withdraw one of this agent's own pending payment requests (``cancelPayment``)."""
        request = self.vault.find_request(request_id)
        if not isinstance(request, PaymentRequest):
            raise AgentWalletError(
                f"request {request_id} is a governance proposal: an agent cancels only its own "
                "payment requests"
            )
        return TxResult.from_receipt(self.vault.request_call(self.signer, "cancel", request_id))


__all__ = [
    "AgentWallet",
    "Escalated",
    "Journal",
    "Paid",
    "PaymentCheck",
    "Remaining",
]
