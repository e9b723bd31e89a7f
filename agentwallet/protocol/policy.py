"""The budget rule, exactly as AgentVault computes it: one Python implementation, used by the
what-if replay and by anyone who needs the contract's answer without asking the contract.

An agent's budget for one token is a GCRA (generic cell rate algorithm) whose theoretical
arrival time ``tat`` is kept in 1/256 s (``TIME_SCALE_BITS``): a payment of ``amount`` costs
``ceil(amount * period * 256 / allowance)``; it runs iff ``max(tat, now * 256) + cost <= now *
256 + period * 256``; period 0 means the token is not in scope. The functions mirror
``_evaluate``, ``_available`` and ``_rewritePolicy`` in ``contracts/AgentVault.sol``.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentwallet.protocol.constants import MAX_LIMIT, MAX_PERIOD, TIME_SCALE_BITS, Reason

__all__ = ["Limits", "available", "evaluate", "rewrite_tat", "rewrite_tat_raw"]


@dataclass(frozen=True)
class Limits:
    """One token's limits, base units and seconds; ``period`` 0 = not in scope."""

    max_per_payment: int
    allowance: int
    period: int

    def problem(self) -> str | None:
        """Why the contract would refuse these limits, or None."""
        for name in ("max_per_payment", "allowance"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_LIMIT:
                return f"{name} {value} must be within 0..2^88-1 base units"
        if not 0 <= self.period <= MAX_PERIOD:
            return f"period {self.period} must be within 0..2^32-1 seconds"
        return None


def evaluate(limits: Limits | None, tat: int, amount: int, now: int) -> tuple[Reason, int]:
    """The contract's ``_evaluate``: (reasons, new tat). ``tat`` is unchanged unless the payment
    runs (reasons 0). The allowlist bit is the caller's business."""
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
    return Reason(0), new_tat


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
    now_scaled = now << TIME_SCALE_BITS
    if old_tat <= now_scaled:
        return 0
    scaled_period = new_period << TIME_SCALE_BITS
    left = old_tat - now_scaled
    used = left
    if old_period != 0:
        old_scaled = old_period << TIME_SCALE_BITS
        used = -(-(left * scaled_period) // old_scaled)
        if new_allowance == 0:
            by_amount = scaled_period
        else:
            by_amount = -(-(left * old_allowance * scaled_period) // (old_scaled * new_allowance))
        used = max(used, by_amount)
    return now_scaled + min(used, scaled_period)
