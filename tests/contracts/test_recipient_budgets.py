"""Per-recipient budgets: inside an agent's allowance, a budget per recipient, so a leaked key
cannot send a whole cap to one address. Agents without them pay the plain path.

Who gains if it breaks: a leaked agent key draining its allowance into one address."""

from __future__ import annotations

import itertools

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from .conftest import DAY, ETHER, USDC, Env, expect_revert, fresh_address

REASON_OVER_RECIPIENT_BUDGET = 16
ANY = "0x0000000000000000000000000000000000000000"
_nonces = itertools.count(9_000)


def agent_with_budget(env: Env, label: str) -> LocalAccount:
    k = Account.from_key(Web3.keccak(text=f"rbudget-{label}"))
    env.send_eth(env.deployer, k.address, ETHER)
    env.govern_signed(
        [
            ("addAgent", (k.address, 0, 0, False)),
            ("setLimits", (k.address, env.usdc.address, 100 * USDC, 1_000 * USDC, DAY)),
        ],
        nonce=next(_nonces),
    )
    return k


def pay(env: Env, agent: LocalAccount, to: str, amount: int) -> int:
    return env.pay(env.usdc.address, to, amount, agent=agent)[1]


def test_one_owner_caps_what_one_recipient_can_get(env: Env) -> None:
    agent = agent_with_budget(env, "one")
    api = fresh_address("api-provider")
    receipt = env.send(
        env.vault.functions.limitRecipient(
            agent.address, env.usdc.address, api, 5 * USDC, 5 * USDC, DAY
        ),
        env.owners[1],
    )
    assert env.event(receipt, "RecipientBudgetChanged")["by"] == env.owners[1].address
    assert pay(env, agent, api, 5 * USDC) == 0
    rid = pay(env, agent, api, 1 * USDC)
    assert env.request(rid)["reasons"] == REASON_OVER_RECIPIENT_BUDGET
    # other recipients still get the agent's own budget
    assert pay(env, agent, fresh_address("other"), 90 * USDC) == 0


def test_a_default_budget_applies_to_every_recipient_separately(env: Env) -> None:
    agent = agent_with_budget(env, "default")
    env.send(
        env.vault.functions.limitRecipient(
            agent.address, env.usdc.address, ANY, 20 * USDC, 20 * USDC, DAY
        ),
        env.owners[0],
    )
    a, b = fresh_address("rcpt-a"), fresh_address("rcpt-b")
    assert pay(env, agent, a, 20 * USDC) == 0
    assert pay(env, agent, b, 20 * USDC) == 0  # b has its own 20
    assert env.request(pay(env, agent, a, 1 * USDC))["reasons"] == REASON_OVER_RECIPIENT_BUDGET
    view = env.vault.functions.getRecipientBudget(agent.address, env.usdc.address, a).call()
    assert view[1] == 20 * USDC and view[3] < 1 * USDC


def test_one_owner_can_only_tighten_the_threshold_can_raise(env: Env) -> None:
    agent = agent_with_budget(env, "tighten")
    api = fresh_address("api")
    env.send(
        env.vault.functions.limitRecipient(
            agent.address, env.usdc.address, api, 5 * USDC, 5 * USDC, DAY
        ),
        env.owners[1],
    )
    for looser in (
        (6 * USDC, 5 * USDC, DAY),
        (5 * USDC, 6 * USDC, DAY),
        (5 * USDC, 5 * USDC, DAY - 1),
    ):
        with expect_revert("LimitNotReduced"):
            env.send(
                env.vault.functions.limitRecipient(agent.address, env.usdc.address, api, *looser),
                env.owners[2],
            )
    with expect_revert("OnlyVault"):
        env.send(
            env.vault.functions.setRecipientBudget(
                agent.address, env.usdc.address, api, 50 * USDC, 50 * USDC, DAY
            ),
            env.owners[2],
        )
    env.govern_signed(
        [("setRecipientBudget", (agent.address, env.usdc.address, api, 50 * USDC, 50 * USDC, DAY))],
        nonce=next(_nonces),
    )
    # raising adds nothing at once (the budget rule holds here too); it refills at the new rate
    assert pay(env, agent, api, 6 * USDC) != 0
    env.chain.increase_time(DAY // 2)
    assert pay(env, agent, api, 25 * USDC) == 0
    env.govern_signed(
        [("removeRecipientBudget", (agent.address, env.usdc.address, api))], nonce=next(_nonces)
    )
    assert pay(env, agent, api, 60 * USDC) == 0
    # a leaked key cannot loosen its own budgets
    with expect_revert("NotOwner"):
        env.send(
            env.vault.functions.limitRecipient(agent.address, env.usdc.address, api, 1, 1, DAY),
            agent,
        )


def test_a_budget_on_a_token_out_of_scope_is_refused(env: Env) -> None:
    agent = agent_with_budget(env, "scope")
    with expect_revert("TokenNotInScope", agent.address, ANY):
        env.send(
            env.vault.functions.limitRecipient(agent.address, ANY, ANY, 1, 1, DAY), env.owners[0]
        )


def test_per_recipient_budgets_bind_relayed_intents_and_survive_rotation(env: Env) -> None:
    agent = agent_with_budget(env, "intent")
    api = fresh_address("api-intent")
    env.send(
        env.vault.functions.limitRecipient(
            agent.address, env.usdc.address, api, 5 * USDC, 5 * USDC, DAY
        ),
        env.owners[1],
    )
    intent = env.intent(api, 6 * USDC, token=env.usdc.address, nonce=1)
    receipt = env.relay_intent(intent, env.sign_intent(intent, agent))
    assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_OVER_RECIPIENT_BUDGET
    new = Account.from_key(Web3.keccak(text="rbudget-intent-new"))
    env.govern_signed([("replaceAgentKey", (agent.address, new.address))], nonce=next(_nonces))
    env.send_eth(env.deployer, new.address, ETHER)
    assert env.request(pay(env, new, api, 6 * USDC))["reasons"] == REASON_OVER_RECIPIENT_BUDGET
    assert pay(env, new, api, 5 * USDC) == 0
