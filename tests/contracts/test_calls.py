"""Scoped contract calls: an agent calls (target, selector) pairs the owners granted, spending a
token within its budget through an approval that exists only during the call.

Who gains if a rule breaks: a leaked agent key or a malicious target contract that tries to move
budgeted tokens around the budget, keep an approval, take more than the price, re-enter the
vault or pull another token."""

from __future__ import annotations

import itertools

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from .conftest import (
    DAY,
    ETH,
    ETHER,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_TOKEN_NOT_IN_SCOPE,
    USDC,
    USDC_MAX,
    Env,
    expect_revert,
    fresh_address,
    ref,
)

_nonces = itertools.count(11_000)


def selector(env: Env, contract: Contract, fn: str) -> bytes:
    return env.calldata(fn, *_defaults(fn), vault=contract)[:4]


def _defaults(fn: str) -> tuple:
    return {"buy": (ETH, 0), "buyWithEth": ()}[fn]


def market(env: Env) -> tuple[Contract, str]:
    seller = fresh_address("seller")
    return env.deploy("Marketplace", seller), seller


def grant(
    env: Env, agent: str, target: Contract, fn: str, max_value: int = 0, allowance: int = 0
) -> None:
    env.govern_signed(
        [
            (
                "grantCall",
                (agent, target.address, selector(env, target, fn), max_value, allowance, DAY),
            )
        ],
        nonce=next(_nonces),
    )


def buy(
    env: Env,
    target: Contract,
    price: int,
    agent: LocalAccount | None = None,
    spend: int | None = None,
):
    data = env.calldata("buy", env.usdc.address, price, vault=target)
    fn = env.vault.functions.scopedCall(
        target.address, 0, data, env.usdc.address, price if spend is None else spend, ref("item")
    )
    receipt = env.send(fn, agent or env.agent)
    created = env.events(receipt, "CallRequested")
    return receipt, (created[0]["requestId"] if created else 0)


def test_an_agent_buys_within_its_token_budget_and_no_approval_outlives_the_call(env: Env) -> None:
    shop, seller = market(env)
    grant(env, env.agent.address, shop, "buy")
    before = env.available(env.usdc.address)
    receipt, rid = buy(env, shop, 30 * USDC)
    assert rid == 0
    done = env.event(receipt, "CallExecuted")
    assert (done["target"], done["spent"], done["requestId"]) == (shop.address, 30 * USDC, 0)
    assert env.usdc_of(seller) == 30 * USDC
    assert env.usdc.functions.allowance(env.vault.address, shop.address).call() == 0
    assert env.available(env.usdc.address) <= before - 30 * USDC
    assert shop.functions.bought(env.vault.address).call() == 1


def test_a_call_outside_the_limits_or_the_grants_escalates_to_the_owners(env: Env) -> None:
    shop, seller = market(env)
    # not granted at all
    _r, rid = buy(env, shop, 10 * USDC)
    assert env.request(rid)["reasons"] == REASON_TOKEN_NOT_IN_SCOPE
    receipt = env.send(
        env.rq.executeWithSignatures(rid, env.packed(rid, env.owners[:2])), env.outsider
    )
    assert env.event(receipt, "CallExecuted")["requestId"] == rid
    assert env.usdc_of(seller) == 10 * USDC
    # granted, but the price is over the agent's per-payment limit
    grant(env, env.agent.address, shop, "buy")
    _r, rid = buy(env, shop, USDC_MAX + 1)
    assert env.request(rid)["reasons"] == REASON_OVER_PER_PAYMENT
    env.send(env.rq.approve(rid), env.owners[0])
    env.send(env.rq.approve(rid), env.owners[2])
    assert env.usdc_of(seller) == 10 * USDC + USDC_MAX + 1
    assert env.usdc.functions.allowance(env.vault.address, shop.address).call() == 0
    # the agent withdraws one, an owner rejects another
    _r, a = buy(env, shop, USDC_MAX + 2)
    _r, b = buy(env, shop, USDC_MAX + 3)
    env.send(env.rq.cancel(a), env.agent)
    env.send(env.rq.reject(b), env.owners[1])


def test_calls_that_would_move_budgeted_tokens_are_refused(env: Env) -> None:
    shop, _seller = market(env)
    transfer = env.calldata("transfer", env.outsider.address, 1, vault=env.usdc)
    approve = env.calldata("approve", env.outsider.address, 1, vault=env.usdc)
    for target, data in (
        (env.usdc.address, transfer),  # a token in the registry, any selector
        (env.usdc.address, env.calldata("balanceOf", env.vault.address, vault=env.usdc)),
        (shop.address, transfer[:4] + transfer[4:]),  # ERC-20 selectors on any target
        (shop.address, approve),
        (env.vault.address, env.calldata("pause")),  # the vault itself
    ):
        with expect_revert("ForbiddenCall"):
            env.send(env.vault.functions.scopedCall(target, 0, data, ETH, 0, ref("x")), env.agent)
    with expect_revert("ForbiddenCall"):
        env.govern_signed(
            [("grantCall", (env.agent.address, shop.address, transfer[:4], 0, 0, DAY))],
            nonce=next(_nonces),
        )


def test_a_hostile_target_cannot_take_more_keep_an_approval_reenter_or_drain_another_token(
    env: Env,
) -> None:
    hostile = env.deploy("HostileMarketplace")
    grant(env, env.agent.address, hostile, "buy")
    other = env.deploy("TestUSDC")
    env.send(other.functions.mint(env.vault.address, 10**12), env.deployer)
    reentry = env.calldata("pay", ETH, hostile.address, 1, ref("again"))
    cases = {
        1: "take one more than approved",
        2: "re-enter the vault",
        3: "pull another token",
        4: "a huge revert",
    }
    for mode in cases:
        env.send(hostile.functions.setMode(mode, other.address, reentry), env.deployer)
        with expect_revert("CallFailed"):
            buy(env, hostile, 10 * USDC)
    assert env.usdc.functions.allowance(env.vault.address, hostile.address).call() == 0
    assert other.functions.balanceOf(env.vault.address).call() == 10**12
    # takes nothing: the approval is still reset, and the agent's budget was charged the price
    env.send(hostile.functions.setMode(5, other.address, b""), env.deployer)
    before = env.available(env.usdc.address)
    receipt, rid = buy(env, hostile, 10 * USDC)
    assert rid == 0 and env.event(receipt, "CallExecuted")["spent"] == 0
    assert env.usdc.functions.allowance(env.vault.address, hostile.address).call() == 0
    assert env.available(env.usdc.address) <= before - 10 * USDC


def test_eth_sent_with_calls_has_its_own_cap_and_allowance(env: Env) -> None:
    shop, seller = market(env)
    grant(env, env.agent.address, shop, "buyWithEth", max_value=ETHER // 2, allowance=ETHER)
    data = env.calldata("buyWithEth", vault=shop)

    def call(value: int) -> int:
        receipt = env.send(
            env.vault.functions.scopedCall(shop.address, value, data, ETH, 0, ref("e")), env.agent
        )
        created = env.events(receipt, "CallRequested")
        return created[0]["reasons"] if created else 0

    assert call(ETHER * 4 // 10) == 0
    assert call(ETHER * 6 // 10) == REASON_OVER_PER_PAYMENT
    assert call(ETHER * 4 // 10) == 0
    assert call(ETHER * 4 // 10) == REASON_OVER_ALLOWANCE
    assert env.eth_of(seller) == ETHER * 8 // 10
    # one owner revokes the grant at once
    env.send(
        env.vault.functions.revokeCall(env.agent.address, shop.address, data[:4]), env.owners[2]
    )
    assert call(1) == REASON_TOKEN_NOT_IN_SCOPE


def test_a_sub_agent_calls_only_what_its_parent_may_and_shares_its_value_budget(env: Env) -> None:
    shop, _seller = market(env)
    grant(env, env.agent.address, shop, "buyWithEth", max_value=ETHER, allowance=ETHER)
    child: LocalAccount = Account.from_key(Web3.keccak(text="calls-child"))
    env.send_eth(env.deployer, child.address, ETHER)
    env.send(
        env.vault.functions.addSubAgent(env.agent.address, child.address, 0, 0, False), env.agent
    )
    sel = env.calldata("buyWithEth", vault=shop)[:4]
    with expect_revert("ExceedsParent"):
        env.send(
            env.vault.functions.grantSubAgentCall(
                child.address, shop.address, sel, 2 * ETHER, ETHER, DAY
            ),
            env.agent,
        )
    env.send(
        env.vault.functions.grantSubAgentCall(child.address, shop.address, sel, ETHER, ETHER, DAY),
        env.agent,
    )
    data = env.calldata("buyWithEth", vault=shop)
    env.send(
        env.vault.functions.scopedCall(shop.address, ETHER * 7 // 10, data, ETH, 0, ref("c")), child
    )
    # the parent's value budget was spent too
    assert (
        env.vault.functions.getCallPermission(env.agent.address, shop.address, sel).call()[3]
        < ETHER * 31 // 100
    )
    # revoking the parent's grant stops the child at once
    env.send(env.vault.functions.revokeCall(env.agent.address, shop.address, sel), env.owners[0])
    receipt = env.send(
        env.vault.functions.scopedCall(shop.address, 1, data, ETH, 0, ref("c")), child
    )
    assert env.event(receipt, "CallRequested")["reasons"] == REASON_TOKEN_NOT_IN_SCOPE


def test_calls_stop_with_the_vault_or_the_agent(env: Env) -> None:
    shop, _seller = market(env)
    grant(env, env.agent.address, shop, "buy")
    env.send(env.vault.functions.pause(), env.owners[0])
    with expect_revert("VaultIsPaused"):
        buy(env, shop, 1 * USDC)
    env.govern_signed([("unpause", ())], nonce=next(_nonces))
    env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[0])
    with expect_revert("AgentNotActive"):
        buy(env, shop, 1 * USDC)
