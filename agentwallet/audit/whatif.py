"""What-if: replay an agent's recorded payments against proposed limits.

The rule checker is the contract's exact integer math (``_evaluate`` in AgentVault.sol): the
budget is a GCRA whose theoretical arrival time ``tat`` is kept in 1/256 s; a payment of
``amount`` costs ``ceil(amount * period * 256 / allowance)``; it runs iff
``max(tat, now * 256) + cost <= now * 256 + period * 256``; period 0 = token not in scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from agentwallet.audit.errors import WhatIfError
from agentwallet.audit.events import EventFilter
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.reports import Amounts, iso
from agentwallet.protocol.constants import (
    ETH,
    MAX_LIMIT,
    MAX_PERIOD,
    TIME_SCALE_BITS,
    Reason,
    reason_texts,
)


@dataclass(frozen=True)
class Limits:
    """One token's limits, base units and seconds; ``period`` 0 = not in scope."""

    max_per_payment: int
    allowance: int
    period: int

    def __post_init__(self) -> None:
        for name in ("max_per_payment", "allowance"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_LIMIT:
                raise WhatIfError(f"{name} {value} must be within 0..2^88-1 base units")
        if not 0 <= self.period <= MAX_PERIOD:
            raise WhatIfError(f"period {self.period} must be within 0..2^32-1 seconds")


def evaluate(limits: Limits | None, tat: int, amount: int, now: int) -> tuple[int, int]:
    """The contract's ``_evaluate``: (reasons bitmask, new tat). ``tat`` is unchanged unless the
    payment runs (reasons 0). The allowlist bit is the caller's business."""
    if limits is None or limits.period == 0:
        return Reason.TOKEN_NOT_IN_SCOPE, tat
    reasons = Reason.OVER_PER_PAYMENT if amount > limits.max_per_payment else Reason(0)
    allowance = limits.allowance
    if amount > allowance:
        return reasons | Reason.OVER_ALLOWANCE, tat
    scaled_period = limits.period << TIME_SCALE_BITS
    now_scaled = now << TIME_SCALE_BITS
    start = max(tat, now_scaled)
    new_tat = start + (amount * scaled_period + allowance - 1) // allowance
    if new_tat > now_scaled + scaled_period:
        return reasons | Reason.OVER_ALLOWANCE, tat
    if reasons:
        return reasons, tat
    return 0, new_tat


def available(limits: Limits | None, tat: int, now: int) -> int:
    """The contract's ``_available``: what one payment could spend now (ignoring max)."""
    if limits is None or limits.period == 0:
        return 0
    scaled_period = limits.period << TIME_SCALE_BITS
    now_scaled = now << TIME_SCALE_BITS
    start = max(tat, now_scaled)
    if start >= now_scaled + scaled_period:
        return 0
    return (now_scaled + scaled_period - start) * limits.allowance // scaled_period


def rewrite_tat(old: Limits | None, old_tat: int, new: Limits, now: int) -> int:
    """The contract's ``_rewritePolicy`` for ``tat``: new limits never add to what is available
    now; the budget in use stays in use (as a fraction of the period or as an amount, whichever
    is larger), capped at one new period. ``old`` None or period 0: a removed token (tat kept)."""
    old_period = 0 if old is None else old.period
    old_allowance = 0 if old is None else old.allowance
    return rewrite_tat_raw(old_period, old_allowance, old_tat, new.period, new.allowance, now)


def rewrite_tat_raw(
    old_period: int, old_allowance: int, old_tat: int, new_period: int, new_allowance: int, now: int
) -> int:
    """:func:`rewrite_tat` on plain integers (the contract's arithmetic, 1/256 s units)."""
    now_scaled = now << 8
    if old_tat <= now_scaled:
        return 0
    scaled_period = new_period << 8
    left = old_tat - now_scaled
    used = left
    if old_period != 0:
        old_scaled = old_period << 8
        used = -(-(left * scaled_period) // old_scaled)
        if new_allowance == 0:
            by_amount = scaled_period
        else:
            by_amount = -(-(left * old_allowance * scaled_period) // (old_scaled * new_allowance))
        used = max(used, by_amount)
    return now_scaled + min(used, scaled_period)


@dataclass(frozen=True)
class WhatIfRow:
    block: int
    time: str
    token: str
    to: str
    amount: str
    actual: str  #: "paid" or "escalated (reasons)"
    proposed: str  #: "pays", "escalates" or "refused"
    reasons: str
    changed: bool


def whatif(
    index: AuditIndex,
    chain_id: int,
    vault: str,
    agent: str,
    limits: Mapping[str, Limits],
    *,
    allowlist: set[str] | None = None,
    valid_after: int = 0,
    valid_until: int = 0,
) -> list[WhatIfRow]:
    """Replay the agent's payment attempts (direct payments and escalated payment requests, in
    order, at their block times) against ``limits`` (token address → Limits; tokens missing are
    out of scope), an optional recipient ``allowlist`` and validity window.

    Outcomes: ``pays`` (inside every proposed limit; consumes the proposed budget),
    ``escalates`` (with reasons; an owner would have had to approve it), ``refused`` (the
    contract would revert the payment: outside the validity window). Executions of escalated
    requests do not consume the budget, exactly as on-chain.
    """
    agent = to_checksum_address(agent)
    norm = {to_checksum_address(k) if k != "ETH" else ETH: v for k, v in limits.items()}
    allowed = None if allowlist is None else {to_checksum_address(a) for a in allowlist}
    events = index.events(
        chain_id,
        EventFilter(
            vaults=(to_checksum_address(vault),),
            agent=agent,
            names=("PaymentExecuted", "RequestCreated"),
        ),
    )
    amounts = Amounts(index, chain_id)
    tats: dict[str, int] = {}
    rows = []
    for e in events:
        if e.name == "PaymentExecuted":
            if e.request_id:  # execution of an escalated request: its attempt is replayed
                continue
            actual = "paid"
        elif e.kind == "payment":
            actual = "escalated (" + ", ".join(reason_texts(int(e.args["reasons"]))) + ")"
        else:
            continue
        token = e.token or ETH
        to = e.recipient or ""
        amount = int(e.amount or 0)
        now = e.block_time
        if now < valid_after or (valid_until and now > valid_until):
            outcome, reasons = "refused", "outside the agent's validity window"
        else:
            bits, new_tat = evaluate(norm.get(token), tats.get(token, 0), amount, now)
            if allowed is not None and to not in allowed:
                bits |= Reason.RECIPIENT_NOT_ALLOWED
            if bits == 0:
                tats[token] = new_tat
                outcome, reasons = "pays", ""
            else:
                outcome, reasons = "escalates", ", ".join(reason_texts(bits))
        rows.append(
            WhatIfRow(
                block=e.block_number,
                time=iso(now),
                token=amounts.meta(token).symbol,
                to=to,
                amount=amounts.text(amount, token),
                actual=actual,
                proposed=outcome,
                reasons=reasons,
                changed=(actual == "paid") != (outcome == "pays"),
            )
        )
    return rows
