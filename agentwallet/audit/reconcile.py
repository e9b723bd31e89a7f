"""Reconcile a vault's balances with its events: balance now vs deposits - executed payments."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from agentwallet.audit.events import EventFilter
from agentwallet.audit.format import Amounts, format_units
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.spend import outflows, totals
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.chain import Chain
from agentwallet.protocol.constants import ETH


@dataclass(frozen=True)
class ReconcileRow:
    """One token. ``difference`` = actual - expected, in base units."""

    token: str
    symbol: str
    deposits: str
    payments: str
    expected: str
    actual: str
    difference: str
    difference_base_units: int
    block: int
    note: str


def token_balance(chain: Chain, vault: str, token: str, block: int) -> int:
    """``vault``'s balance of ``token`` (ETH: the zero address) at ``block``."""
    if token == ETH:
        return chain.balance(vault, block)
    return Erc20Binding(chain, token).balance_of(vault, block)


def reconcile(
    index: AuditIndex, chain: Chain, vault: str, block: int | None = None
) -> list[ReconcileRow]:
    """Per token seen in the vault's events, the vault's balance at ``block`` (default: the
    last synced block, so events and balance describe the same state) against deposits minus
    executed payments from events.

    A positive difference is money that arrived without a Deposited event (a plain ERC-20
    transfer to the vault, ETH forced in by selfdestruct or as a block reward). A negative
    difference is money that left without a (Signed)PaymentExecuted, RelayFeePaid or
    CallExecuted event (a fee-on-transfer or rebasing token, or a token that can move the
    vault's balance by itself). A scoped call counts what it spent of its spend token and the
    ETH value it sent.
    """
    vault = to_checksum_address(vault)
    chain_id = chain.chain_id
    if block is None:
        states = [s for s in index.states(chain_id) if vault in s.vaults]
        if not states:
            from agentwallet.audit.errors import AuditIndexError

            raise AuditIndexError(
                f"vault {vault} is not in the index for chain {chain_id}: run "
                f"`agentwallet audit sync --vault {vault}` first"
            )
        block = max(s.last_block for s in states)
    deposits: dict[str, int] = defaultdict(int)
    for e in index.events(
        chain_id, EventFilter(vaults=(vault,), names=("Deposited",), to_block=block)
    ):
        deposits[e.token or ETH] += int(e.amount or 0)
    payments: dict[str, int] = defaultdict(
        int, totals(outflows(index, chain_id, vault, to_block=block))
    )
    amounts = Amounts(index, chain_id)
    rows = []
    for token in sorted(set(deposits) | set(payments) | {ETH}):
        meta = amounts.meta(token)
        expected = deposits[token] - payments[token]
        actual = token_balance(chain, vault, token, block)
        diff = actual - expected
        if diff > 0:
            note = "more than the events explain: funds arrived without a Deposited event"
        elif diff < 0:
            note = (
                "less than the events explain: funds left without a PaymentExecuted, "
                "SignedPaymentExecuted, RelayFeePaid or CallExecuted event "
                "(fee-on-transfer/rebasing token?)"
            )
        else:
            note = "ok"
        d = meta.decimals
        rows.append(
            ReconcileRow(
                token=token,
                symbol=meta.symbol,
                deposits=format_units(deposits[token], d),
                payments=format_units(payments[token], d),
                expected=format_units(expected, d),
                actual=format_units(actual, d),
                difference=format_units(diff, d),
                difference_base_units=diff,
                block=block,
                note=note,
            )
        )
    return rows
