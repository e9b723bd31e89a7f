"""What-if: replay an agent's recorded payments against proposed limits.

The rule checker is :mod:`agentwallet.protocol.policy`, the contract's exact integer math
(re-exported here: ``evaluate``, ``available``, ``rewrite_tat``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from agentwallet.audit.errors import WhatIfError
from agentwallet.audit.events import EventFilter
from agentwallet.audit.format import Amounts, iso
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.spend import agent_keys
from agentwallet.protocol import policy
from agentwallet.protocol.constants import ETH, Reason, reason_texts
from agentwallet.protocol.policy import available, evaluate, rewrite_tat, rewrite_tat_raw

__all__ = [
    "Limits",
    "WhatIfRow",
    "available",
    "evaluate",
    "rewrite_tat",
    "rewrite_tat_raw",
    "whatif",
]


@dataclass(frozen=True)
class Limits(policy.Limits):
    """One token's proposed limits, base units and seconds; ``period`` 0 = not in scope.
    Limits the contract would refuse raise :class:`WhatIfError`."""

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise WhatIfError(problem)


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
    requests do not consume the budget, exactly as on-chain; a relayed intent's fee
    (``RelayFeePaid`` in its transaction) is charged with its amount, as the contract does.
    Scoped calls are replayed as their token spend (``CallExecuted.spent`` of its spend token,
    what left the vault; the contract charged the approved amount, at least that; escalated
    ``CallRequested`` with their ``spendAmount``); their ETH value counts against the call
    grant, not the token limits. The agent is followed across key rotations (its lineage).
    Per-recipient budgets and a sub-agent's parents' budgets are not replayed.
    """
    agent = to_checksum_address(agent)
    norm = {to_checksum_address(k) if k != "ETH" else ETH: v for k, v in limits.items()}
    allowed = None if allowlist is None else {to_checksum_address(a) for a in allowlist}
    vault = to_checksum_address(vault)
    events = index.events(
        chain_id,
        EventFilter(
            vaults=(vault,),
            names=(
                "PaymentExecuted",
                "PaymentRequested",
                "RelayFeePaid",
                "CallExecuted",
                "CallRequested",
            ),
        ),
        agents=agent_keys(index, chain_id, vault, agent),
    )
    fees: dict[str, int] = {
        e.tx_hash: int(e.amount or 0) for e in events if e.name == "RelayFeePaid"
    }
    amounts = Amounts(index, chain_id)
    tats: dict[str, int] = {}
    rows = []
    for e in events:
        if e.name in ("PaymentExecuted", "CallExecuted"):
            if e.request_id:  # execution of an escalated request: its attempt is replayed
                continue
            if e.name == "CallExecuted" and not e.amount:  # spent no token: no token budget
                continue
            actual = "paid"
        elif e.name in ("PaymentRequested", "CallRequested"):
            actual = "escalated (" + ", ".join(reason_texts(int(e.args["reasons"]))) + ")"
        else:
            continue
        token = e.token or ETH
        to = e.recipient or ""
        amount = int(e.amount or 0)
        charge = amount + (fees.get(e.tx_hash, 0) if actual == "paid" else 0)
        now = e.block_time
        if now < valid_after or (valid_until and now > valid_until):
            outcome, reasons = "refused", "outside the agent's validity window"
        else:
            bits, new_tat = evaluate(norm.get(token), tats.get(token, 0), charge, now)
            if allowed is not None and to not in allowed and not e.name.startswith("Call"):
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
