"""Sequences the property tests found, replayed as example tests (shortest form).

A sequence that breaks a documented rule of the vault stays here as a strict xfail until the
contract is fixed (then it passes, the xfail fails, and the marker goes); the state machines
leave the sequence out meanwhile (see test_properties_delegation.py) so that they keep checking
everything else.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from tests.contracts.conftest import (
    PERIOD,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    fresh_address,
)


@pytest.mark.xfail(
    strict=True,
    reason="contract bug: a rotation moves only the words of tokens in scope; a removed "
    "token's word (its spent budget) stays with the old key, so re-granting the token to the "
    "new key starts from a full budget",
)
def test_a_removed_token_re_granted_after_a_rotation_keeps_its_spent_budget(env: Env) -> None:
    """docs/contracts.md, "Budgets never come back": a word keeps its budget state when the
    token leaves the scope, and rotation moves the budget state. So: spend half, remove the
    token, rotate the key, grant the same limits again: half is left, not all of it."""
    usdc, agent = env.usdc.address, env.agent.address
    for _ in range(USDC_ALLOWANCE // USDC_MAX // 2):
        env.pay(usdc, fresh_address("found-1"), USDC_MAX)
    spent = env.available(usdc)
    assert spent <= USDC_ALLOWANCE // 2 + USDC_ALLOWANCE // 100  # a few seconds of refill
    env.send(env.vault.functions.removeToken(agent, usdc), env.owners[0])
    new = Account.from_key(Web3.keccak(text="properties-found-1")).address
    env.govern("replaceAgentKey", agent, new)
    env.govern("setLimits", new, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    assert env.available(usdc, new) <= spent + USDC_ALLOWANCE // 100
