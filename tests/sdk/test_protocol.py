"""The pure protocol layer: governance-call wording, nonce choice, the budget rewrite rule."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from agentwallet.bindings.artifacts import abi_of
from agentwallet.bindings.vault import vault_calls
from agentwallet.protocol.calls import describe
from agentwallet.protocol.nonces import FULL_WORD, payment_seed, pick_nonce
from agentwallet.protocol.policy import Limits, available, rewrite_tat

DAY = 86_400
A, B, TOKEN = (Account.create().address for _ in range(3))


def _encode(fn: str, *args: object) -> bytes:
    contract = Web3().eth.contract(abi=list(abi_of("IAgentVault")))
    return bytes.fromhex(contract.encode_abi(fn, list(args))[2:])


def _words(fn: str, *args: object) -> str:
    call = vault_calls().decode(_encode(fn, *args))
    assert call is not None
    return describe(call, address=lambda a: {A: "alice", B: "bob"}.get(a, "token"), words=True)


@pytest.mark.parametrize(
    ("fn", "args", "text"),
    [
        ("swapOwner", (A, B), "swapOwner(oldOwner alice, newOwner bob)"),
        ("replaceAgentKey", (A, B), "replaceAgentKey(oldKey alice, newKey bob)"),
        (
            "setRecipientBudget",
            (A, TOKEN, B, 5, 10, DAY),
            "setRecipientBudget(alice, token, recipient bob, maxPerPayment 5, allowance 10, "
            f"period {DAY})",
        ),
        (
            "addSubAgent",
            (A, B, 0, 0, False),
            "addSubAgent(parent alice, child bob, useAllowlist False)",
        ),
        ("invalidateNonces", (A, 1, 5), "invalidateNonces(space alice, wordPos 1, mask 0x5)"),
    ],
)
def test_new_governance_calls_read_in_plain_words(
    fn: str, args: tuple[object, ...], text: str
) -> None:
    assert _words(fn, *args) == text


def test_new_calls_name_the_agent_they_configure() -> None:
    for fn, args, agent in (
        ("addSubAgent", (A, B, 0, 0, False), B),
        ("replaceAgentKey", (A, B), A),
        ("removeRecipientBudget", (A, TOKEN, B), A),
    ):
        call = vault_calls().decode(_encode(fn, *args))
        assert call is not None and call.agent == agent, fn


def test_cosigners_of_one_payment_pick_one_nonce_and_other_payments_another() -> None:
    words = {0: 0b1011}
    bitmap = lambda position: words.get(position, 0)  # noqa: E731
    seed = payment_seed(A, TOKEN, B, 5, bytes(32), 100)
    assert seed == payment_seed(A, TOKEN, B, 5, bytes(32), 100)
    other = payment_seed(A, TOKEN, B, 6, bytes(32), 100)
    assert pick_nonce(bitmap, seed) != pick_nonce(bitmap, other) or seed == other
    assert pick_nonce(bitmap, 0) == 2  # the first free bit at or after the seed
    assert pick_nonce(bitmap, 3) == 4
    words[0] = FULL_WORD
    assert pick_nonce(bitmap, 7) == 256 + 7  # the lowest word with a free bit


@pytest.mark.parametrize(
    ("old", "spent", "new", "left"),
    [
        (Limits(0, 1_000, DAY), 1_000, Limits(0, 1_000, 30 * DAY), 0),  # drained stays drained
        (Limits(0, 1_000, DAY), 500, Limits(0, 600, DAY), 100),
        (Limits(0, 1_000, DAY), 600, Limits(0, 2_000, DAY), 400),
        (Limits(0, 1_000, DAY), 0, Limits(0, 2_000, DAY), 1_000),  # a raise gives nothing at once
    ],
)
def test_new_limits_never_add_to_what_is_left(
    old: Limits, spent: int, new: Limits, left: int
) -> None:
    """docs/contracts.md, "Budgets never come back": the examples, exactly as the contract."""
    now = 10**9
    tat = (now << 8) + spent * (old.period << 8) // old.allowance
    assert available(old, tat, now) == old.allowance - spent
    assert abs(available(new, rewrite_tat(old, tat, new, now), now) - left) <= 1
    assert available(new, rewrite_tat(None, 0, new, now), now) == new.allowance
