"""The budget rule, exactly as AgentVault computes it: one Python implementation, used by the
what-if replay and by anyone who needs the contract's answer without asking the contract.

An agent's budget for one token is a GCRA (generic cell rate algorithm) whose theoretical
arrival time ``tat`` is kept in 1/256 s (``TIME_SCALE_BITS``): a payment of ``amount`` costs
``ceil(amount * period * 256 / allowance)``; it runs iff ``max(tat, now * 256) + cost <= now *
256 + period * 256``; period 0 means the token is not in scope. The functions mirror
``evaluate``, ``budget`` and ``rewrite`` in ``contracts/libraries/PolicyWord.sol`` (per-recipient
budgets and sub-agents' shared budgets are not modelled here).
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
            return f"period {self.period} must be within 0..2^29-1 seconds"
        return None


def evaluate(limits: Limits | None, tat: int, amount: int, now: int) -> tuple[Reason, int]:
    """The contract's ``PolicyWord.evaluate``: (reasons, new tat). ``tat`` is unchanged unless
    the payment runs (reasons 0). The allowlist bit is the caller's business."""
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
    """The contract's ``PolicyWord.available``: what one payment could spend now (ignoring max)."""
    if limits is None or limits.period == 0:
        return 0
    scaled_period = limits.period << TIME_SCALE_BITS
    now_scaled = now << TIME_SCALE_BITS
    start = max(tat, now_scaled)
    if start >= now_scaled + scaled_period:
        return 0
    return (now_scaled + scaled_period - start) * limits.allowance // scaled_period


def rewrite_tat(old: Limits | None, old_tat: int, new: Limits, now: int) -> int:
    """The contract's ``PolicyWord.rewrite`` for ``tat``: no change of limits ever increases what
    the agent can spend at that instant. With ``A0`` the old allowance and ``b0`` what the old
    budget holds now, the new budget is ``min(b0, max(0, A1 - (A0 - b0)))`` (what was spent stays
    spent), then refills at the new rate. ``old`` is the limits the word holds, also for a token
    taken out of scope (the word keeps them); None or period 0: a word that never had limits,
    which starts full."""
    old_period = 0 if old is None else old.period
    old_allowance = 0 if old is None else old.allowance
    return rewrite_tat_raw(old_period, old_allowance, old_tat, new.period, new.allowance, now)


def rewrite_tat_raw(
    old_period: int, old_allowance: int, old_tat: int, new_period: int, new_allowance: int, now: int
) -> int:
    """:func:`rewrite_tat` on plain integers (the contract's arithmetic, 1/256 s units)."""
    if old_period == 0:
        return 0
    b0 = available(Limits(0, old_allowance, old_period), old_tat, now)
    spent = old_allowance - b0
    target = min(b0, max(0, new_allowance - spent))
    if target >= new_allowance:
        return 0
    # the smallest tat whose budget is <= target (rounded against the agent)
    scaled_period = new_period << TIME_SCALE_BITS
    return (now << TIME_SCALE_BITS) + scaled_period - target * scaled_period // new_allowance
