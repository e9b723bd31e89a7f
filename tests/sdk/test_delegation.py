"""Delegation in the SDK: sub-agents, per-recipient budgets and scoped calls on a real EVM.

The contract's own rules are tested as escapes in tests/contracts/; here each SDK service is
driven end to end, and the local checks are shown to agree with the contract: the SDK refuses
what the contract would refuse, with the same typed error, before anything is sent (the
sender's nonce does not move), and the contract refuses the same call when the SDK's check is
bypassed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agentwallet import (
    AgentDelegation,
    AgentWallet,
    Called,
    CallEncodingError,
    CallEscalated,
    CallRefReusedError,
    OwnerDelegation,
    call_grants,
    delegation_chain,
    delegation_tree,
    encode_call,
    recipient_budgets,
    selector_of,
)
from agentwallet.bindings.erc20 import Erc20Binding
from agentwallet.errors import (
    AgentNotActiveError,
    ContractRevertError,
    ExceedsParentError,
    ForbiddenCallError,
    InvalidValidityError,
    LimitNotReducedError,
    NotOwnerError,
    TooDeepError,
)
from agentwallet.protocol.models import Escalated, Paid
from tests.sdk.conftest import DAY, ETHER, USDC, World

BUY = "buy(address,uint256)"


def _account(world: World, label: str) -> LocalAccount:
    """A fresh key with gas."""
    account: LocalAccount = Account.from_key(keccak(text=f"delegation-{label}"))
    world.chain.transactor.send(world.owners[0], account.address, b"", ETHER)
    return account


def _delegate(
    world: World, parent: LocalAccount, label: str, usdc: tuple[int, int, int] | None
) -> LocalAccount:
    child = _account(world, label)
    parent_side = AgentDelegation(world.vault, parent)
    parent_side.add_sub_agent(child.address)
    if usdc is not None:
        parent_side.set_sub_agent_limits(child.address, "tUSDC", *usdc)
    return child


def _refused_before_sending(
    world: World, sender: str, error: type[ContractRevertError], action: Callable[[], object]
) -> ContractRevertError:
    before = world.chain.nonce(sender)
    with pytest.raises(error) as raised:
        action()
    assert world.chain.nonce(sender) == before
    return raised.value


def _contract_refuses(
    world: World, sender: LocalAccount, error: type[ContractRevertError], fn: str, *args: object
) -> None:
    """The same call, the SDK's checks bypassed: the contract's simulation refuses it alike."""
    data = world.vault.bindings.encode(fn, *args)
    with pytest.raises(error):
        world.chain.transactor.send(sender, world.vault.address, data)


def _grant_buy(world: World, agent: str, market: str, **limits: int) -> None:
    owners = OwnerDelegation(world.vault)
    ref = owners.propose_grant_call(world.owners[0], agent, market, BUY, **limits)
    assert world.vault.approve(world.owners[1], ref.request_id).executed


# ------------------------------------------------------------------------------ sub-agents


def test_a_parent_delegates_a_narrower_scope_and_the_tree_shows_it(world: World) -> None:
    parent = world.agent
    child = _delegate(world, parent, "child", (50 * USDC, 200 * USDC, DAY))
    tree = delegation_tree(world.vault, parent.address)
    assert tree.depth == 0 and [n.agent.address for n in tree.children] == [child.address]
    (node,) = tree.children
    assert node.depth == 1 and node.agent.parent == parent.address
    policy = node.agent.policies[world.usdc.address]
    assert (policy.max_per_payment, policy.allowance, policy.period) == (
        50 * USDC,
        200 * USDC,
        DAY,
    )
    chain = delegation_chain(world.vault, child.address)
    assert [a.address for a in chain] == [child.address, parent.address]
    # the child's payment spends the parent's budget as well (a shared budget)
    before = world.vault.policy(parent.address, "tUSDC").available
    paid = AgentWallet(world.chain, world.vault, child).pay(world.payee, 40 * USDC, "tUSDC")
    assert isinstance(paid, Paid)
    assert world.vault.policy(parent.address, "tUSDC").available == before - 40 * USDC


def test_local_attenuation_checks_refuse_what_the_contract_refuses(world: World) -> None:
    parent = world.agent
    child = _delegate(world, parent, "narrow", None)
    side = AgentDelegation(world.vault, parent)
    usdc = world.usdc.address
    # the parent holds 100 per payment, 500 a day in tUSDC
    for limits in (
        (101 * USDC, 500 * USDC, DAY),  # per payment
        (50 * USDC, 501 * USDC, DAY),  # allowance
        (50 * USDC, 500 * USDC, DAY - 1),  # refills faster
    ):
        error = _refused_before_sending(
            world,
            parent.address,
            ExceedsParentError,
            lambda limits=limits: side.set_sub_agent_limits(child.address, "tUSDC", *limits),
        )
        assert error.args_by_name == {"parent": parent.address, "token": usdc}
        _contract_refuses(
            world, parent, ExceedsParentError, "setSubAgentLimits", child.address, usdc, *limits
        )
    # the owners cannot propose a wider sub-agent either
    owners = OwnerDelegation(world.vault)
    _refused_before_sending(
        world,
        world.owners[0].address,
        ExceedsParentError,
        lambda: owners.propose_set_sub_agent_limits(
            world.owners[0], child.address, "tUSDC", 101 * USDC, 100 * USDC, DAY
        ),
    )
    # a window outside the parent's: the parent ends in 10 days, the child would not
    bounded = _delegate(world, parent, "bounded", None)
    bounded_side = AgentDelegation(world.vault, bounded)
    grandchild = _account(world, "grandchild")
    bounded_side.add_sub_agent(grandchild.address, valid_until=world.chain.timestamp() + 10 * DAY)
    great = _account(world, "great")
    grandchild_side = AgentDelegation(world.vault, grandchild)
    _refused_before_sending(
        world,
        grandchild.address,
        InvalidValidityError,
        lambda: grandchild_side.add_sub_agent(great.address, valid_until=0),
    )
    _contract_refuses(
        world,
        grandchild,
        InvalidValidityError,
        "addSubAgent",
        grandchild.address,
        great.address,
        0,
        0,
        False,
    )
    # depth: parent (0) > bounded (1) > grandchild (2) > great (3) > no deeper
    grandchild_side.add_sub_agent(great.address)
    too_deep = _account(world, "too-deep")
    great_side = AgentDelegation(world.vault, great)
    _refused_before_sending(
        world, great.address, TooDeepError, lambda: great_side.add_sub_agent(too_deep.address)
    )
    _contract_refuses(
        world, great, TooDeepError, "addSubAgent", great.address, too_deep.address, 0, 0, False
    )
    # only the parent configures its sub-agent: a sibling tries
    _refused_before_sending(
        world,
        bounded.address,
        NotOwnerError,
        lambda: bounded_side.set_sub_agent_limits(child.address, "tUSDC", 1, 1, DAY),
    )
    _contract_refuses(
        world, bounded, NotOwnerError, "setSubAgentLimits", child.address, usdc, 1, 1, DAY
    )


def test_owners_delegate_under_any_agent_through_governance(world: World) -> None:
    owners = OwnerDelegation(world.vault)
    child = _account(world, "owners-child")
    parent = world.agent.address
    added = owners.propose_add_sub_agent(world.owners[0], parent, child.address)
    limits = owners.propose_set_sub_agent_limits(
        world.owners[0], child.address, "tUSDC", 5 * USDC, 10 * USDC, DAY, parent=parent
    )
    for ref in (added, limits):  # in order: the limits need the sub-agent
        assert not ref.executed
        assert world.vault.approve(world.owners[1], ref.request_id).executed
    assert "addSubAgent" in world.vault.request(added.request_id).action
    (node,) = delegation_tree(world.vault, parent).children
    assert node.agent.address == child.address
    assert node.agent.policies[world.usdc.address].allowance == 10 * USDC


def test_a_paused_or_revoked_parent_cannot_delegate(world: World) -> None:
    parent = _account(world, "soon-paused")
    owners = OwnerDelegation(world.vault)
    _delegate(world, world.agent, "soon-paused-parent", None)  # world.agent's subtree
    side = AgentDelegation(world.vault, world.agent)
    world.vault.pause_agent(world.owners[2], world.agent.address)
    _refused_before_sending(
        world, world.agent.address, NotOwnerError, lambda: side.add_sub_agent(parent.address)
    )
    _contract_refuses(
        world,
        world.agent,
        NotOwnerError,
        "addSubAgent",
        world.agent.address,
        parent.address,
        0,
        0,
        False,
    )
    world.vault.revoke_agent(world.owners[2], world.agent.address)
    _refused_before_sending(
        world,
        world.owners[0].address,
        AgentNotActiveError,
        lambda: owners.propose_add_sub_agent(world.owners[0], world.agent.address, parent.address),
    )


def test_a_sub_agents_escalation_shows_the_chain_of_delegation(world: World) -> None:
    parent = world.agent
    child = _delegate(world, parent, "mid", (50 * USDC, 200 * USDC, DAY))
    grandchild = _delegate(world, child, "leaf", (20 * USDC, 100 * USDC, DAY))
    outcome = AgentWallet(world.chain, world.vault, grandchild).pay(world.payee, 21 * USDC, "tUSDC")
    assert isinstance(outcome, Escalated)
    assert outcome.reasons == ("over per-payment limit",)
    info = world.vault.request(outcome.request_id)
    assert info.agent == grandchild.address
    chain = [a.address for a in delegation_chain(world.vault, info.agent)]
    assert chain == [grandchild.address, child.address, parent.address]
    # the owners approve it: it pays without touching any budget
    world.vault.approve(world.owners[0], outcome.request_id)
    assert world.vault.approve(world.owners[1], outcome.request_id).executed


def test_an_ancestor_lowers_narrows_and_revokes_its_subtree(world: World) -> None:
    parent = world.agent
    child = _delegate(world, parent, "sub", (50 * USDC, 200 * USDC, DAY))
    grandchild = _delegate(world, child, "subsub", (50 * USDC, 200 * USDC, DAY))
    side = AgentDelegation(world.vault, parent)
    # the grandparent lowers the grandchild's limits at once; raising is refused locally
    side.reduce_limits(grandchild.address, "tUSDC", 10 * USDC, 100 * USDC)
    assert world.vault.policy(grandchild.address, "tUSDC").max_per_payment == 10 * USDC
    _refused_before_sending(
        world,
        parent.address,
        LimitNotReducedError,
        lambda: side.reduce_limits(grandchild.address, "tUSDC", 11 * USDC, 100 * USDC),
    )
    # the grandchild may not act on its ancestors
    up = AgentDelegation(world.vault, grandchild)
    _refused_before_sending(
        world,
        grandchild.address,
        NotOwnerError,
        lambda: up.reduce_limits(child.address, "tUSDC", 1, 1),
    )
    _contract_refuses(
        world, grandchild, NotOwnerError, "reduceLimits", child.address, world.usdc.address, 1, 1
    )
    # and narrows it: a token out of scope, a recipient off its allowlist
    side.allow_sub_agent_recipient(child.address, world.payee)
    side.remove_recipient(child.address, world.payee)
    assert not world.vault.contract.functions.isRecipientAllowed(child.address, world.payee).call()
    side.remove_token(grandchild.address, "tUSDC")
    assert world.vault.policy(grandchild.address, "tUSDC").period == 0
    # revoking the child revokes the grandchild in the same transaction
    side.revoke(child.address)
    statuses = [world.vault.agent(a.address).status for a in (child, grandchild)]
    assert statuses == ["revoked", "revoked"]
    assert delegation_tree(world.vault, parent.address).children == ()


# ------------------------------------------------------------------------------ recipient budgets


def test_one_owner_tightens_a_recipient_budget_and_governance_raises_it(world: World) -> None:
    owners = OwnerDelegation(world.vault)
    agent = world.agent.address
    owners.limit_recipient(world.owners[2], agent, "tUSDC", world.payee, 5 * USDC, 5 * USDC, DAY)
    (budget,) = recipient_budgets(world.vault, agent)
    assert (budget.recipient, budget.max_per_payment, budget.available) == (
        world.payee,
        5 * USDC,
        5 * USDC,
    )
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    assert isinstance(wallet.pay(world.payee, 5 * USDC, "tUSDC"), Paid)
    over = wallet.pay(world.payee, 1 * USDC, "tUSDC")
    assert isinstance(over, Escalated) and over.reasons == ("over per-recipient budget",)
    # another recipient is not limited by it
    assert isinstance(wallet.pay(world.owners[2].address, 5 * USDC, "tUSDC"), Paid)
    # one owner cannot loosen it (a leaked owner key adds no risk alone)
    _refused_before_sending(
        world,
        world.owners[2].address,
        LimitNotReducedError,
        lambda: owners.limit_recipient(
            world.owners[2], agent, "tUSDC", world.payee, 50 * USDC, 50 * USDC, DAY
        ),
    )
    _contract_refuses(
        world,
        world.owners[2],
        LimitNotReducedError,
        "limitRecipient",
        agent,
        world.usdc.address,
        world.payee,
        50 * USDC,
        50 * USDC,
        DAY,
    )
    # governance raises it; raising adds nothing at once (the budget rule), removal drops it
    ref = owners.propose_set_recipient_budget(
        world.owners[0], agent, "tUSDC", world.payee, 50 * USDC, 50 * USDC, DAY
    )
    world.vault.approve(world.owners[1], ref.request_id)
    (raised,) = recipient_budgets(world.vault, agent)
    assert raised.allowance == 50 * USDC and raised.available < 50 * USDC
    ref = owners.propose_remove_recipient_budget(world.owners[0], agent, "tUSDC", world.payee)
    world.vault.approve(world.owners[1], ref.request_id)
    assert recipient_budgets(world.vault, agent) == []


def test_a_default_recipient_budget_applies_to_every_recipient(world: World) -> None:
    parent = world.agent
    child = _delegate(world, parent, "budgeted", (50 * USDC, 200 * USDC, DAY))
    AgentDelegation(world.vault, parent).limit_recipient(
        child.address, "tUSDC", None, 3 * USDC, 3 * USDC, DAY
    )
    wallet = AgentWallet(world.chain, world.vault, child)
    for to in (world.payee, world.owners[2].address):  # each recipient keeps its own state
        assert isinstance(wallet.pay(to, 3 * USDC, "tUSDC"), Paid)
        assert isinstance(wallet.pay(to, 1 * USDC, "tUSDC"), Escalated)


# ------------------------------------------------------------------------------ scoped calls


def test_an_agent_buys_from_a_marketplace_within_its_token_allowance(world: World) -> None:
    seller = world.outsider.address
    market = world.chain.deploy("Marketplace", seller, sender=world.owners[0]).address
    _grant_buy(world, world.agent.address, market)
    (grant,) = call_grants(world.vault, world.agent.address)
    assert (grant.target, grant.selector) == (market, "0x" + selector_of(BUY).hex())
    side = AgentDelegation(world.vault, world.agent)
    usdc = world.usdc.address
    before = world.vault.policy(world.agent.address, "tUSDC").available
    bought = side.scoped_call(
        market,
        encode_call(BUY, [usdc, str(30 * USDC)]),
        spend_token="tUSDC",
        spend_amount=30 * USDC,
        ref="order-1",
    )
    assert isinstance(bought, Called) and bought.spent == 30 * USDC and bought.ref == "order-1"
    assert world.vault.policy(world.agent.address, "tUSDC").available == before - 30 * USDC
    token = Erc20Binding(world.chain, usdc)
    assert token.balance_of(seller) == 30 * USDC
    assert token.allowance(world.vault.address, market) == 0
    # the ref is an idempotency key: a retry answers the earlier call and buys nothing more
    again = side.scoped_call(
        market,
        encode_call(BUY, [usdc, 30 * USDC]),
        spend_token="tUSDC",
        spend_amount=30 * USDC,
        ref="order-1",
    )
    assert again == bought and token.balance_of(seller) == 30 * USDC
    with pytest.raises(CallRefReusedError):  # the same ref for another purchase
        side.scoped_call(
            market,
            encode_call(BUY, [usdc, 31 * USDC]),
            spend_token="tUSDC",
            spend_amount=31 * USDC,
            ref="order-1",
        )
    # over the per-payment limit: a call request, which the owners approve
    data = encode_call(BUY, [usdc, 150 * USDC])
    check = side.check_call(market, data, spend_token="tUSDC", spend_amount=150 * USDC)
    assert not check.will_call and check.reasons == ("over per-payment limit",)
    over = side.scoped_call(
        market, data, spend_token="tUSDC", spend_amount=150 * USDC, ref="order-2"
    )
    assert isinstance(over, CallEscalated) and over.reasons == ("over per-payment limit",)
    retried = side.scoped_call(
        market, data, spend_token="tUSDC", spend_amount=150 * USDC, ref="order-2"
    )
    assert isinstance(retried, CallEscalated) and retried.request_id == over.request_id
    info = world.vault.request(over.request_id)
    assert info.kind == "call" and info.agent == world.agent.address and info.to == market
    world.vault.approve(world.owners[0], over.request_id)
    assert world.vault.approve(world.owners[1], over.request_id).executed
    assert token.balance_of(seller) == 180 * USDC


def test_forbidden_and_ungranted_calls(world: World) -> None:
    market = world.chain.deploy("Marketplace", world.payee, sender=world.owners[0]).address
    side = AgentDelegation(world.vault, world.agent)
    agent = world.agent.address
    transfer = encode_call("transfer(address,uint256)", [world.payee, 1])
    for target, data in (
        (world.usdc.address, encode_call(BUY, [world.usdc.address, 1])),  # a budgeted token
        (world.vault.address, encode_call(BUY, [world.usdc.address, 1])),  # the vault itself
        (market, transfer),  # a selector that moves tokens around a budget
    ):
        _refused_before_sending(
            world,
            agent,
            ForbiddenCallError,
            lambda target=target, data=data: side.scoped_call(target, data),
        )
        _contract_refuses(
            world,
            world.agent,
            ForbiddenCallError,
            "scopedCall",
            target,
            0,
            data,
            world.usdc.address,
            0,
            bytes(32),
        )
    owners = OwnerDelegation(world.vault)
    _refused_before_sending(
        world,
        world.owners[0].address,
        ForbiddenCallError,
        lambda: owners.propose_grant_call(world.owners[0], agent, world.usdc.address, BUY),
    )
    # a call that is not granted escalates, and the reason says so
    data = encode_call(BUY, [world.usdc.address, 1 * USDC])
    assert side.check_call(market, data).reasons == ("call not granted",)
    outcome = side.scoped_call(market, data, spend_token="tUSDC", spend_amount=1 * USDC)
    assert isinstance(outcome, CallEscalated) and outcome.reasons == ("call not granted",)


def test_a_sub_agents_call_grant_is_at_most_its_parents(world: World) -> None:
    market = world.chain.deploy("Marketplace", world.payee, sender=world.owners[0]).address
    parent = world.agent
    _grant_buy(world, parent.address, market, max_value=ETHER // 10, value_allowance=ETHER // 5)
    child = _delegate(world, parent, "caller", (10 * USDC, 20 * USDC, DAY))
    side = AgentDelegation(world.vault, parent)
    error = _refused_before_sending(
        world,
        parent.address,
        ExceedsParentError,
        lambda: side.grant_sub_agent_call(child.address, market, BUY, max_value=ETHER),
    )
    assert error.args_by_name == {"parent": parent.address, "token": market}
    _contract_refuses(
        world,
        parent,
        ExceedsParentError,
        "grantSubAgentCall",
        child.address,
        market,
        selector_of(BUY),
        ETHER,
        0,
        DAY,
    )
    other = world.chain.deploy("Marketplace", world.payee, sender=world.owners[0]).address
    _refused_before_sending(  # a grant the parent does not hold
        world,
        parent.address,
        ExceedsParentError,
        lambda: side.grant_sub_agent_call(child.address, other, BUY),
    )
    side.grant_sub_agent_call(child.address, market, BUY)
    child_side = AgentDelegation(world.vault, child)
    data = encode_call(BUY, [world.usdc.address, 10 * USDC])
    bought = child_side.scoped_call(market, data, spend_token="tUSDC", spend_amount=10 * USDC)
    assert isinstance(bought, Called) and bought.spent == 10 * USDC
    # the parent revokes the child's grant: its next call escalates
    side.revoke_call(child.address, market, BUY)
    again = child_side.scoped_call(market, data, spend_token="tUSDC", spend_amount=10 * USDC)
    assert isinstance(again, CallEscalated) and again.reasons == ("call not granted",)


def test_function_signatures_and_arguments_are_checked_before_encoding() -> None:
    assert selector_of(BUY) == bytes.fromhex("cce7ec13")
    assert selector_of("0xcce7ec13") == selector_of(BUY)
    encoded = encode_call(BUY, ["0x" + "11" * 20, "0x10"])
    assert encoded[:4] == selector_of(BUY) and int.from_bytes(encoded[36:68], "big") == 16
    for signature, args in (
        ("buy", []),  # no parentheses
        ("buy(address,uint256[])", ["0x" + "11" * 20, "1"]),  # arrays are not supported
        (BUY, ["0x" + "11" * 20]),  # too few arguments
        (BUY, ["not-an-address", "1"]),
        (BUY, ["0x" + "11" * 20, "one"]),
        ("flag(bool)", ["maybe"]),
    ):
        with pytest.raises(CallEncodingError):
            encode_call(signature, args)
