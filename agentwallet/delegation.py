"""Delegation: sub-agents, scoped contract calls and per-recipient budgets.

* :class:`AgentDelegation`: an agent key acting as a parent (adds sub-agents, sets their limits,
  recipients and call grants; as an ancestor revokes, lowers or narrows any agent below it) and
  making scoped calls (:meth:`AgentDelegation.scoped_call`).
* :class:`OwnerDelegation`: the owners' side, through governance proposals for what adds risk
  and one owner's transaction for what reduces it.
* Views (:mod:`agentwallet.delegation_views`): :func:`delegation_chain`,
  :func:`delegation_tree`, :func:`call_grants`, :func:`recipient_budgets`.

Every rule the contract applies to these calls is checked first and raises the same typed error
(:class:`~agentwallet.errors.ContractRevertError` subclasses) before anything is signed; the
pipeline's simulation backs the rest.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from eth_account.signers.base import BaseAccount
from web3.types import TxReceipt

from agentwallet import request_log
from agentwallet.delegation_views import (
    LIVE,
    ancestors,
    call_grants,
    check_attenuated,
    check_forbidden,
    check_grant_within,
    check_limits,
    check_new_child,
    check_tighter_budget,
    check_window,
    delegation_chain,
    delegation_tree,
    find_call,
    not_delegator,
    read_grant,
    recipient_budgets,
    revert_with,
)
from agentwallet.errors import AgentWalletError, ContractRevertError, InsufficientFundsError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import PER_WORD_GAS, ZERO_ADDRESS, AgentStatus, Reason
from agentwallet.protocol.delegation import (
    FORBIDDEN_SELECTORS,
    MAX_DEPTH,
    MAX_SUB_AGENTS,
    NOT_GRANTED,
    CallCheck,
    Called,
    CallEncodingError,
    CallEscalated,
    CallGrant,
    CallOutcome,
    CallRefReusedError,
    DelegationNode,
    RecipientBudget,
    encode_call,
    selector_of,
)
from agentwallet.protocol.models import RequestRef, TokenInfo, TxResult
from agentwallet.protocol.refs import ref_text, to_ref
from agentwallet.protocol.requests import CallRequest
from agentwallet.units import format_amount

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet
    from agentwallet.vault import Vault

__all__ = [
    "FORBIDDEN_SELECTORS",
    "MAX_DEPTH",
    "MAX_SUB_AGENTS",
    "AgentDelegation",
    "CallCheck",
    "CallEncodingError",
    "CallEscalated",
    "CallRefReusedError",
    "CallGrant",
    "CallOutcome",
    "Called",
    "DelegationNode",
    "OwnerDelegation",
    "RecipientBudget",
    "call_grants",
    "delegation_chain",
    "delegation_tree",
    "encode_call",
    "recipient_budgets",
    "selector_of",
]


def _send(vault: Vault, sender: BaseAccount, fn: str, *args: Any, extra_gas: int = 0) -> TxReceipt:
    def fmt(token: str, amount: int) -> str:
        try:
            return vault.format(token, amount)
        except AgentWalletError:
            return f"{amount} base units of {token}"

    data = vault.bindings.encode(fn, *args)
    return vault.chain.transactor.send(
        sender, vault.address, data, format_amount=fmt, extra_gas=extra_gas
    )


def _budget_key(
    vault: Vault, agent: str, token: str | None, recipient: str | None
) -> tuple[str, str, str]:
    """(agent, token address, recipient) of a per-recipient budget (recipient None: the default
    for every recipient without its own, the zero address)."""
    to = checksum(recipient, "recipient") if recipient else ZERO_ADDRESS
    return checksum(agent, "agent address"), vault.token(token).address, to


class AgentDelegation:
    """An agent key of ``vault`` acting as a parent and making scoped calls. ``signer`` is the
    agent's eth-account ``BaseAccount`` (a :class:`~agentwallet.keys.Signer`)."""

    def __init__(self, vault: Vault, signer: BaseAccount) -> None:
        self.vault = vault
        self.signer = signer
        self.address = checksum(str(signer.address))

    @classmethod
    def of(cls, wallet: AgentWallet) -> AgentDelegation:
        """The delegation side of an :class:`~agentwallet.agent.AgentWallet`."""
        return cls(wallet.vault, wallet.signer)

    def __repr__(self) -> str:
        return f"AgentDelegation(agent={self.address}, vault={self.vault.address})"

    def _tx(self, fn: str, *args: Any, extra_gas: int = 0) -> TxResult:
        return TxResult.from_receipt(_send(self.vault, self.signer, fn, *args, extra_gas=extra_gas))

    def _as_parent_of(self, child: str) -> str:
        child = checksum(child, "sub-agent address")
        record = self.vault.bindings.agent(self.address)
        if (
            self.vault.bindings.agent(child).parent != self.address
            or record.status != AgentStatus.ACTIVE
        ):
            raise revert_with(
                "NotOwner",
                {"caller": self.address},
                f"{self.address} is not the active parent of {child}",
            )
        return child

    def _as_ancestor_of(self, agent: str) -> str:
        agent = checksum(agent, "agent address")
        if self.address not in ancestors(self.vault, agent) or (
            self.vault.bindings.agent(self.address).status not in LIVE
        ):
            raise not_delegator(self.vault, self.address, agent)
        return agent

    # ------------------------------------------------------------------ as a parent

    def add_sub_agent(
        self,
        child: str,
        *,
        valid_after: int | None = None,
        valid_until: int | None = None,
        allowlist: bool = False,
    ) -> TxResult:
        """Add ``child`` under this agent (window default: this agent's own). Then give it
        limits with :meth:`set_sub_agent_limits`: it starts with none."""
        child = checksum(child, "sub-agent address")
        me = self.vault.bindings.agent(self.address)
        if me.status != AgentStatus.ACTIVE:
            raise revert_with(
                "NotOwner",
                {"caller": self.address},
                f"{self.address} is {AgentStatus.text_of(me.status)}: only an active agent "
                "adds sub-agents",
            )
        after = me.valid_after if valid_after is None else valid_after
        until = me.valid_until if valid_until is None else valid_until
        check_new_child(self.vault, self.address, child)
        check_window(self.vault, self.address, after, until)
        return self._tx("addSubAgent", self.address, child, after, until, allowlist)

    def set_sub_agent_limits(
        self, child: str, token: str | None, max_per_payment: int, allowance: int, period: int
    ) -> TxResult:
        """Set a sub-agent's limits in ``token``: no wider than this agent's (``ExceedsParent``)."""
        child, info = self._as_parent_of(child), self.vault.token(token)
        check_attenuated(self.vault, child, info.address, max_per_payment, allowance, period)
        limits = (max_per_payment, allowance, period)
        return self._tx("setSubAgentLimits", child, info.address, *limits)

    def allow_sub_agent_recipient(self, child: str, recipient: str) -> TxResult:
        """Add ``recipient`` to a sub-agent's allowlist (this agent's own still applies)."""
        child = self._as_parent_of(child)
        return self._tx("allowSubAgentRecipient", child, checksum(recipient, "recipient"))

    def grant_sub_agent_call(
        self,
        child: str,
        target: str,
        selector: str | bytes,
        max_value: int = 0,
        value_allowance: int = 0,
        period: int = 86400,
    ) -> TxResult:
        """Grant a sub-agent a call this agent holds itself, no wider."""
        child, target = self._as_parent_of(child), checksum(target, "call target")
        sel = selector_of(selector)
        limits = (max_value, value_allowance, period)
        check_grant_within(self.vault, child, target, sel, *limits)
        return self._tx("grantSubAgentCall", child, target, sel, *limits)

    # ------------------------------------------------------------------ as an ancestor

    def revoke(self, agent: str) -> TxResult:
        """Revoke a sub-agent below this agent, and its whole subtree."""
        agent = self._as_ancestor_of(agent)
        words = sum(len(n.agent.policies) for n in delegation_tree(self.vault, agent).walk())
        return self._tx("revokeAgent", agent, extra_gas=PER_WORD_GAS * words)

    def reduce_limits(
        self, agent: str, token: str | None, max_per_payment: int, allowance: int
    ) -> TxResult:
        """Lower a descendant's limits in ``token`` (each value <= the current one)."""
        agent, info = self._as_ancestor_of(agent), self.vault.token(token)
        current = self.vault.bindings.policy(agent, info.address)
        if current.period == 0:
            raise ContractRevertError.from_error(
                "TokenNotInScope", {"agent": agent, "token": info.address}
            )
        for now, new in (
            (current.max_per_payment, max_per_payment),
            (current.allowance, allowance),
        ):
            if new > now:
                raise ContractRevertError.from_error(
                    "LimitNotReduced", {"current": now, "proposed": new}
                )
        return self._tx("reduceLimits", agent, info.address, max_per_payment, allowance)

    def remove_token(self, agent: str, token: str | None) -> TxResult:
        """Take ``token`` out of a descendant's scope."""
        agent, info = self._as_ancestor_of(agent), self.vault.token(token)
        return self._tx("removeToken", agent, info.address)

    def remove_recipient(self, agent: str, recipient: str) -> TxResult:
        """Remove ``recipient`` from a descendant's allowlist."""
        agent = self._as_ancestor_of(agent)
        return self._tx("removeRecipient", agent, checksum(recipient, "recipient"))

    def revoke_call(self, agent: str, target: str, selector: str | bytes) -> TxResult:
        """Revoke a descendant's call grant."""
        agent = self._as_ancestor_of(agent)
        return self._tx("revokeCall", agent, checksum(target, "call target"), selector_of(selector))

    def limit_recipient(
        self,
        agent: str,
        token: str | None,
        recipient: str | None,
        max_per_payment: int,
        allowance: int,
        period: int,
    ) -> TxResult:
        """Add or tighten a descendant's budget for payments to ``recipient`` (None: the default
        for every recipient without its own); never looser than the one that applies now."""
        agent, token_address, to = _budget_key(
            self.vault, self._as_ancestor_of(agent), token, recipient
        )
        limits = (max_per_payment, allowance, period)
        check_tighter_budget(self.vault, agent, token_address, to, *limits)
        return self._tx("limitRecipient", agent, token_address, to, *limits)

    # ------------------------------------------------------------------ scoped calls

    def _call_reasons(
        self, target: str, selector: bytes, value: int, token: TokenInfo, amount: int
    ) -> tuple[str, ...]:
        vault, bindings = self.vault, self.vault.bindings
        if bindings.paused():
            raise ContractRevertError.from_error("VaultIsPaused")
        now = vault.chain.timestamp()
        for key in (self.address, *ancestors(vault, self.address)):
            a = bindings.agent(key)
            if a.status != AgentStatus.ACTIVE:
                args = {"agent": key, "status": int(a.status)}
                raise ContractRevertError.from_error("AgentNotActive", args)
            if now + 1 < a.valid_after:
                raise ContractRevertError.from_error(
                    "AgentNotYetValid", {"agent": key, "validAfter": a.valid_after}
                )
            if a.valid_until and now >= a.valid_until:
                raise ContractRevertError.from_error(
                    "AgentExpired", {"agent": key, "validUntil": a.valid_until}
                )
            grant = read_grant(vault, key, target, selector)
            if grant.period == 0:
                return (NOT_GRANTED,)
            bits = Reason(0)
            if value > grant.max_per_payment:
                bits |= Reason.OVER_PER_PAYMENT
            if value > grant.available:
                bits |= Reason.OVER_ALLOWANCE
            if bits:
                return tuple(f"ETH value {t}" for t in bits.texts)
        if amount:
            return bindings.check_payment(self.address, token.address, target, amount).texts
        return ()

    def check_call(
        self,
        target: str,
        data: bytes,
        value: int = 0,
        spend_token: str | None = None,
        spend_amount: int = 0,
    ) -> CallCheck:
        """What :meth:`scoped_call` would do now, without sending: raises the typed error for a
        forbidden call (:class:`~agentwallet.errors.ForbiddenCallError`), a paused vault, an
        agent (or an ancestor) that may not act, a vault that cannot cover a direct call."""
        return self._prepare(target, data, value, spend_token, spend_amount, bytes(32))[0]

    def _prepare(
        self,
        target: str,
        data: bytes,
        value: int,
        spend_token: str | None,
        amount: int,
        ref: bytes,
    ) -> tuple[CallCheck, TokenInfo, bytes]:
        target = checksum(target, "call target")
        for what, number in (("value", value), ("spend amount", amount)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise CallEncodingError(f"{what} {number!r} must be an int of base units >= 0")
        if amount and spend_token is None:
            raise CallEncodingError("a spend amount needs its spend token")
        data = bytes(data)
        selector = data[:4].ljust(4, b"\x00")
        check_forbidden(self.vault, target, selector)
        info = self.vault.token(spend_token)
        reasons = self._call_reasons(target, selector, value, info, amount)
        if not reasons:
            for needed, token in ((value, self.vault.token(None)), (amount, info)):
                held = self.vault.balance(token)
                if needed > held:
                    raise InsufficientFundsError(
                        f"vault {self.vault.address} holds {format_amount(held, token.decimals)} "
                        f"{token.symbol}, less than the {format_amount(needed, token.decimals)} "
                        f"{token.symbol} the call needs: ask an owner to fund it"
                    )
        call = self.vault.bindings.encode(
            "scopedCall", target, value, data, info.address, amount, ref
        )
        self.vault.chain.transactor.prepare(self.address, self.vault.address, call)
        return CallCheck(not reasons, reasons), info, call

    def scoped_call(
        self,
        target: str,
        data: bytes,
        value: int = 0,
        spend_token: str | None = None,
        spend_amount: int = 0,
        ref: str | bytes | None = None,
    ) -> CallOutcome:
        """Call ``target`` with ``data`` through the vault, sending ``value`` wei and letting it
        pull at most ``spend_amount`` of ``spend_token``. Inside the grants and limits the call
        runs now (:class:`Called`); outside, a call request waits for the owners
        (:class:`CallEscalated`). Every error is raised before anything is sent.

        ``ref`` is an idempotency key: if this agent already made a call with it (found in the
        vault's ``CallExecuted``/``CallRequested`` events), that result is returned and nothing
        is sent; the same ref with another target, function, value or token is
        :class:`CallRefReusedError`."""
        target = checksum(target, "call target")
        ref_bytes = to_ref(ref if ref is not None else "awc-" + secrets.token_hex(14))
        call_key = (target, bytes(data), value, self.vault.token(spend_token).address)
        with self.vault.chain.transactor.exclusive():
            earlier = find_call(self.vault, self.address, ref_bytes) if ref is not None else None
            if earlier is not None:
                selector = bytes(data)[:4].ljust(4, b"\x00")
                if (
                    earlier.key != (target, selector, *call_key[2:])
                    or earlier.data not in (None, bytes(data))
                    or earlier.spend_amount not in (None, spend_amount)
                ):
                    raise CallRefReusedError(
                        f"ref {ref_text(ref_bytes)!r} was used by this agent for another call "
                        f"(tx {earlier.tx_hash}): use a new ref for a new call"
                    )
                receipt = self.vault.chain.transactor.receipt(bytes.fromhex(earlier.tx_hash[2:]))
                if receipt is None:  # pragma: no cover - a log's transaction is mined
                    raise CallRefReusedError(f"ref {ref_text(ref_bytes)!r}: tx not found")
                return self._outcome(receipt, call_key, spend_amount, ref_bytes, ())
            check, _, call = self._prepare(
                target, data, value, spend_token, spend_amount, ref_bytes
            )
            receipt = self.vault.chain.transactor.send(self.signer, self.vault.address, call)
        return self._outcome(receipt, call_key, spend_amount, ref_bytes, check.reasons)

    def _outcome(
        self,
        receipt: TxReceipt,
        call_key: tuple[str, bytes, int, str],
        spend_amount: int,
        ref: bytes,
        reasons: tuple[str, ...],
    ) -> CallOutcome:
        """The call's result from its receipt (``reasons``: the dry run's, if any)."""
        target, data, value, token = call_key
        tx, info = TxResult.from_receipt(receipt), self.vault.token(token)
        selector = "0x" + data[:4].hex()
        created = self.vault.bindings.created_requests(receipt)
        request_log.remember(self.vault, created, receipt)
        for request in created:
            if isinstance(request, CallRequest):
                texts = reasons or request.reasons.texts
                return CallEscalated(
                    tx.tx_hash,
                    tx.gas_used,
                    request.id,
                    texts,
                    target,
                    selector,
                    value,
                    info,
                    spend_amount,
                    ref_text(ref),
                )
        spent = 0
        for log in receipt["logs"]:
            decoded = self.vault.bindings.decode_log(log)
            if decoded is not None and decoded[0] == "CallExecuted":
                spent = int(decoded[1]["spent"])
        return Called(tx.tx_hash, tx.gas_used, target, selector, value, info, spent, ref_text(ref))


class OwnerDelegation:
    """The owners' side of delegation on ``vault``: what adds risk is a governance proposal
    (the proposer's approval counts; with threshold 1 it runs at once), what reduces it is one
    owner's transaction. Lowering, pausing and revoking any agent are :class:`Vault` methods."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def __repr__(self) -> str:
        return f"OwnerDelegation(vault={self.vault.address})"

    def _propose(
        self, sender: BaseAccount, fn: str, *args: Any, ref: str | bytes | None
    ) -> RequestRef:
        return self.vault.propose(sender, fn, *args, ref=ref)

    def propose_add_sub_agent(
        self,
        sender: BaseAccount,
        parent: str,
        child: str,
        *,
        valid_after: int | None = None,
        valid_until: int | None = None,
        allowlist: bool = False,
        ref: str | bytes | None = None,
    ) -> RequestRef:
        """Propose adding ``child`` under ``parent`` (window default: the parent's)."""
        parent, child = checksum(parent, "parent address"), checksum(child, "sub-agent address")
        p = self.vault.bindings.agent(parent)
        if p.status not in LIVE:
            raise ContractRevertError.from_error(
                "AgentNotActive", {"agent": parent, "status": int(p.status)}
            )
        after = p.valid_after if valid_after is None else valid_after
        until = p.valid_until if valid_until is None else valid_until
        check_new_child(self.vault, parent, child)
        check_window(self.vault, parent, after, until)
        return self._propose(sender, "addSubAgent", parent, child, after, until, allowlist, ref=ref)

    def propose_set_sub_agent_limits(
        self,
        sender: BaseAccount,
        child: str,
        token: str | None,
        max_per_payment: int,
        allowance: int,
        period: int,
        ref: str | bytes | None = None,
        parent: str | None = None,
    ) -> RequestRef:
        """Propose a sub-agent's limits (no wider than its parent's; ``parent`` when the
        sub-agent's own proposal has not executed yet)."""
        child, info = checksum(child, "sub-agent address"), self.vault.token(token)
        limits = (max_per_payment, allowance, period)
        check_attenuated(self.vault, child, info.address, *limits, parent=parent)
        return self._propose(sender, "setSubAgentLimits", child, info.address, *limits, ref=ref)

    def propose_allow_sub_agent_recipient(
        self, sender: BaseAccount, child: str, recipient: str, ref: str | bytes | None = None
    ) -> RequestRef:
        """Propose adding ``recipient`` to a sub-agent's allowlist."""
        args = (checksum(child, "sub-agent address"), checksum(recipient, "recipient"))
        return self._propose(sender, "allowSubAgentRecipient", *args, ref=ref)

    def propose_grant_call(
        self,
        sender: BaseAccount,
        agent: str,
        target: str,
        selector: str | bytes,
        max_value: int = 0,
        value_allowance: int = 0,
        period: int = 86400,
        ref: str | bytes | None = None,
    ) -> RequestRef:
        """Propose granting ``agent`` calls of ``selector`` on ``target`` (for a sub-agent, no
        wider than its parent's grant)."""
        agent, target = checksum(agent, "agent address"), checksum(target, "call target")
        sel, limits = selector_of(selector), (max_value, value_allowance, period)
        if self.vault.bindings.agent(agent).parent != ZERO_ADDRESS:
            check_grant_within(self.vault, agent, target, sel, *limits)
            return self._propose(sender, "grantSubAgentCall", agent, target, sel, *limits, ref=ref)
        check_forbidden(self.vault, target, sel)
        check_limits(*limits)
        return self._propose(sender, "grantCall", agent, target, sel, *limits, ref=ref)

    def revoke_call(
        self, sender: BaseAccount, agent: str, target: str, selector: str | bytes
    ) -> TxResult:
        """Revoke a call grant at once (one owner)."""
        args = (checksum(agent, "agent address"), checksum(target, "call target"))
        return TxResult.from_receipt(
            _send(self.vault, sender, "revokeCall", *args, selector_of(selector))
        )

    def limit_recipient(
        self,
        sender: BaseAccount,
        agent: str,
        token: str | None,
        recipient: str | None,
        max_per_payment: int,
        allowance: int,
        period: int,
    ) -> TxResult:
        """Add or tighten a per-recipient budget at once (one owner; ``recipient`` None: the
        default). Never looser than the budget that applies now."""
        agent, token_address, to = _budget_key(self.vault, agent, token, recipient)
        limits = (max_per_payment, allowance, period)
        check_tighter_budget(self.vault, agent, token_address, to, *limits)
        return TxResult.from_receipt(
            _send(self.vault, sender, "limitRecipient", agent, token_address, to, *limits)
        )

    def propose_set_recipient_budget(
        self,
        sender: BaseAccount,
        agent: str,
        token: str | None,
        recipient: str | None,
        max_per_payment: int,
        allowance: int,
        period: int,
        ref: str | bytes | None = None,
    ) -> RequestRef:
        """Propose a per-recipient budget of any value (raising one adds risk)."""
        agent, token_address, to = _budget_key(self.vault, agent, token, recipient)
        check_limits(max_per_payment, allowance, period)
        args = (agent, token_address, to, max_per_payment, allowance, period)
        return self._propose(sender, "setRecipientBudget", *args, ref=ref)

    def propose_remove_recipient_budget(
        self,
        sender: BaseAccount,
        agent: str,
        token: str | None,
        recipient: str | None,
        ref: str | bytes | None = None,
    ) -> RequestRef:
        """Propose removing a per-recipient budget."""
        agent, token_address, to = _budget_key(self.vault, agent, token, recipient)
        return self._propose(sender, "removeRecipientBudget", agent, token_address, to, ref=ref)
