"""Sub-agents: an agent delegates a narrower scope; every payment of a sub-agent also spends the
budget of every agent above it (a shared budget), so a subtree never spends more than its root.

Written as escapes: who gains if a rule breaks is the sub-agent (or a leaked sub-agent key), so
each test plays a sub-agent trying to exceed its parent in some dimension."""

from __future__ import annotations

import itertools

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from .conftest import (
    AGENT_REVOKED,
    AGENT_REVOKED_REQUEST,
    DAY,
    ETH,
    ETHER,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_RECIPIENT_NOT_ALLOWED,
    USDC,
    Env,
    expect_revert,
    fresh_address,
)

_nonces = itertools.count(7_000)


def key(label: str) -> LocalAccount:
    return Account.from_key(Web3.keccak(text=f"subagent-{label}"))


def funded(env: Env, label: str) -> LocalAccount:
    k = key(label)
    env.send_eth(env.deployer, k.address, ETHER)
    return k


def add_root(env: Env, label: str, usdc: tuple[int, int, int], **kwargs) -> LocalAccount:
    """An owners' agent with tUSDC limits, funded for gas."""
    k = funded(env, label)
    env.govern_signed(
        [
            (
                "addAgent",
                (
                    k.address,
                    kwargs.get("valid_after", 0),
                    kwargs.get("valid_until", 0),
                    kwargs.get("allowlist", False),
                ),
            ),
            ("setLimits", (k.address, env.usdc.address, *usdc)),
        ],
        nonce=next(_nonces),
    )
    return k


def delegate(
    env: Env,
    parent: LocalAccount,
    label: str,
    usdc: tuple[int, int, int] | None,
    *,
    valid_after: int = 0,
    valid_until: int = 0,
) -> LocalAccount:
    child = funded(env, label)
    env.send(
        env.vault.functions.addSubAgent(
            parent.address, child.address, valid_after, valid_until, False
        ),
        parent,
    )
    if usdc is not None:
        env.send(
            env.vault.functions.setSubAgentLimits(child.address, env.usdc.address, *usdc), parent
        )
    return child


def available(env: Env, agent: str) -> int:
    return int(env.vault.functions.getPolicy(agent, env.usdc.address).call()[3])


def pay(env: Env, agent: LocalAccount, amount: int, to: str | None = None) -> int:
    return env.pay(env.usdc.address, to or fresh_address("shop"), amount, agent=agent)[1]


def test_a_parent_delegates_a_narrower_scope_and_the_tree_is_visible(env: Env) -> None:
    parent = add_root(env, "p1", (100 * USDC, 1_000 * USDC, DAY))
    receipt = env.send(
        env.vault.functions.addSubAgent(parent.address, key("c1").address, 0, 0, False), parent
    )
    event = env.event(receipt, "SubAgentAdded")
    assert (event["parent"], event["child"], event["by"]) == (
        parent.address,
        key("c1").address,
        parent.address,
    )
    assert env.vault.functions.getAgent(key("c1").address).call()[6] == parent.address
    assert env.vault.functions.getSubAgents(parent.address).call() == [key("c1").address]
    # attenuation: nothing wider than the parent in any dimension
    for limits in (
        (101 * USDC, 500 * USDC, DAY),  # per payment
        (50 * USDC, 1_001 * USDC, DAY),  # allowance
        (50 * USDC, 1_000 * USDC, DAY - 1),  # refill rate
    ):
        with expect_revert("ExceedsParent", parent.address, env.usdc.address):
            env.send(
                env.vault.functions.setSubAgentLimits(key("c1").address, env.usdc.address, *limits),
                parent,
            )
    with expect_revert("ExceedsParent", parent.address, ETH):  # a token the parent has not
        env.send(env.vault.functions.setSubAgentLimits(key("c1").address, ETH, 1, 1, DAY), parent)
    env.send(
        env.vault.functions.setSubAgentLimits(
            key("c1").address, env.usdc.address, 50 * USDC, 500 * USDC, DAY
        ),
        parent,
    )
    # only the parent (or governance) configures its sub-agent
    for stranger in (env.agent, env.owners[0]):
        with expect_revert("NotOwner"):
            env.send(
                env.vault.functions.setSubAgentLimits(
                    key("c1").address, env.usdc.address, 1, 1, DAY
                ),
                stranger,
            )
    # a window inside the parent's
    bounded = add_root(
        env, "p-bounded", (100 * USDC, 1_000 * USDC, DAY), valid_until=env.now() + 10 * DAY
    )
    with expect_revert("InvalidValidity"):
        env.send(
            env.vault.functions.addSubAgent(bounded.address, key("c-open").address, 0, 0, False),
            bounded,
        )


def test_a_sub_agent_cannot_exceed_its_parent_directly_or_by_splitting_across_siblings(
    env: Env,
) -> None:
    parent = add_root(env, "p2", (100 * USDC, 300 * USDC, DAY))
    a = delegate(env, parent, "c2a", (100 * USDC, 300 * USDC, DAY))
    b = delegate(env, parent, "c2b", (100 * USDC, 300 * USDC, DAY))
    assert pay(env, a, 100 * USDC) == 0
    assert pay(env, b, 100 * USDC) == 0
    assert pay(env, a, 100 * USDC) == 0
    # the parent's 300 are spent across the subtree: the siblings' own budgets do not matter
    rid = pay(env, b, 1 * USDC)
    assert rid != 0 and env.request(rid)["reasons"] & REASON_OVER_ALLOWANCE
    assert available(env, parent.address) < 1 * USDC
    assert available(env, b.address) >= 199 * USDC  # its own budget says yes; the parent's no
    # and the parent itself is capped by what its sub-agents spent
    assert pay(env, parent, 1 * USDC) != 0


def test_a_grandchild_cannot_escape_any_level_above_it(env: Env) -> None:
    root = add_root(env, "p3", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, root, "c3", (100 * USDC, 1_000 * USDC, DAY))
    grandchild = delegate(env, child, "g3", (100 * USDC, 1_000 * USDC, DAY))
    great = delegate(env, grandchild, "gg3", (100 * USDC, 1_000 * USDC, DAY))
    with expect_revert("TooDeep", 3):
        env.send(
            env.vault.functions.addSubAgent(great.address, key("too-deep").address, 0, 0, False),
            great,
        )
    before = available(env, root.address)
    assert pay(env, great, 80 * USDC) == 0
    for k in (root, child, grandchild, great):
        assert available(env, k.address) <= before - 80 * USDC + 1 * USDC
    # the root cuts its per-payment limit: everything under it is capped at once
    env.send(
        env.vault.functions.reduceLimits(root.address, env.usdc.address, 10 * USDC, 1_000 * USDC),
        env.owners[0],
    )
    rid = pay(env, great, 11 * USDC)
    assert env.request(rid)["reasons"] == REASON_OVER_PER_PAYMENT
    assert pay(env, great, 10 * USDC) == 0


def test_pausing_or_revoking_a_parent_stops_its_whole_subtree_at_once(env: Env) -> None:
    root = add_root(env, "p4", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, root, "c4", (100 * USDC, 1_000 * USDC, DAY))
    grandchild = delegate(env, child, "g4", (100 * USDC, 1_000 * USDC, DAY))
    rid = pay(env, grandchild, 100 * USDC + 1)  # an open request under the subtree
    env.send(env.vault.functions.pauseAgent(root.address), env.owners[1])
    for k in (child, grandchild):
        with expect_revert("AgentNotActive", root.address, 2):
            pay(env, k, 1 * USDC)
    env.govern_signed([("unpauseAgent", (root.address,))], nonce=next(_nonces))
    assert pay(env, grandchild, 1 * USDC) == 0
    receipt = env.send(env.vault.functions.revokeAgent(root.address), env.owners[1])
    revoked = [
        e["agent"]
        for e in env.events(receipt, "AgentStatusChanged")
        if e["status"] == AGENT_REVOKED
    ]
    assert sorted(revoked) == sorted([root.address, child.address, grandchild.address])
    for k in (root, child, grandchild):
        with expect_revert("AgentNotActive", k.address, AGENT_REVOKED):
            pay(env, k, 1)
    assert env.status(rid) == AGENT_REVOKED_REQUEST
    assert env.vault.functions.getSubAgents(root.address).call() == []


def test_a_parent_revokes_its_own_sub_agent_but_not_a_stranger(env: Env) -> None:
    parent = add_root(env, "p5", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, parent, "c5", (100 * USDC, 1_000 * USDC, DAY))
    other = add_root(env, "p5-other", (100 * USDC, 1_000 * USDC, DAY))
    with expect_revert("NotOwner"):
        env.send(env.vault.functions.revokeAgent(other.address), parent)
    with expect_revert("NotOwner"):  # a child cannot revoke its parent
        env.send(env.vault.functions.revokeAgent(parent.address), child)
    env.send(
        env.vault.functions.reduceLimits(child.address, env.usdc.address, 10 * USDC, 100 * USDC),
        parent,
    )
    env.send(env.vault.functions.revokeAgent(child.address), parent)
    assert env.vault.functions.getAgent(child.address).call()[0] == AGENT_REVOKED
    assert env.vault.functions.getSubAgents(parent.address).call() == []
    # the parent can delegate again; the re-added child starts from nothing
    env.send(env.vault.functions.addSubAgent(parent.address, child.address, 0, 0, False), parent)
    assert env.vault.functions.getAgentTokens(child.address).call() == []


def test_a_sub_agent_cannot_pay_a_recipient_its_parent_may_not(env: Env) -> None:
    shop = fresh_address("parent-allowed")
    parent = add_root(env, "p6", (100 * USDC, 1_000 * USDC, DAY), allowlist=True)
    env.govern_signed([("allowRecipient", (parent.address, shop))], nonce=next(_nonces))
    child = delegate(env, parent, "c6", (100 * USDC, 1_000 * USDC, DAY))
    elsewhere = fresh_address("child-only")
    env.send(env.vault.functions.allowSubAgentRecipient(child.address, elsewhere), parent)
    rid = pay(env, child, 1 * USDC, to=elsewhere)
    assert env.request(rid)["reasons"] == REASON_RECIPIENT_NOT_ALLOWED
    assert pay(env, child, 1 * USDC, to=shop) == 0


def test_rotating_a_parent_keeps_its_subtree_working(env: Env) -> None:
    parent = add_root(env, "p7", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, parent, "c7", (100 * USDC, 1_000 * USDC, DAY))
    new = key("p7-new")
    env.govern_signed([("replaceAgentKey", (parent.address, new.address))], nonce=next(_nonces))
    assert env.vault.functions.getAgent(child.address).call()[6] == new.address
    assert env.vault.functions.getSubAgents(new.address).call() == [child.address]
    before = available(env, new.address)
    assert pay(env, child, 5 * USDC) == 0
    assert available(env, new.address) <= before - 5 * USDC + 1 * USDC
    # the old parent key can no longer configure or revoke the child
    with expect_revert("NotOwner"):
        env.send(env.vault.functions.revokeAgent(child.address), parent)
    # rotating the child keeps it under the parent
    new_child = key("c7-new")
    env.govern_signed(
        [("replaceAgentKey", (child.address, new_child.address))], nonce=next(_nonces)
    )
    assert env.vault.functions.getSubAgents(new.address).call() == [new_child.address]


def test_racing_a_parent_limit_cut_cannot_get_the_old_limits(env: Env) -> None:
    parent = add_root(env, "p8", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, parent, "c8", (100 * USDC, 1_000 * USDC, DAY))
    # the cut lands first in the same block-time ordering: the child's payment sees it
    env.send(
        env.vault.functions.reduceLimits(parent.address, env.usdc.address, 5 * USDC, 1_000 * USDC),
        env.owners[2],
    )
    rid = pay(env, child, 6 * USDC)
    assert env.request(rid)["reasons"] == REASON_OVER_PER_PAYMENT
    # a sub-agent's escalation goes to the owners: they may pay it without touching budgets
    before = available(env, parent.address)
    env.send(env.rq.executeWithSignatures(rid, env.packed(rid, env.owners[:2])), env.outsider)
    assert available(env, parent.address) >= before


def test_at_most_eight_sub_agents_under_one_agent(env: Env) -> None:
    parent = add_root(env, "p9", (100 * USDC, 1_000 * USDC, DAY))
    for i in range(8):
        env.send(
            env.vault.functions.addSubAgent(parent.address, key(f"c9-{i}").address, 0, 0, False),
            parent,
        )
    with expect_revert("TooManySubAgents", parent.address, 8):
        env.send(
            env.vault.functions.addSubAgent(parent.address, key("c9-8").address, 0, 0, False),
            parent,
        )


def test_no_level_is_charged_when_any_other_level_refuses(env: Env) -> None:
    """The sub-agent fast path charges its ancestors' words only when every level accepts: a
    refusal below or above a level that accepts leaves that level's budget untouched, and the
    request names the reasons of every level."""
    root = add_root(env, "p9", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, root, "c9", (100 * USDC, 200 * USDC, DAY))
    grandchild = delegate(env, child, "g9", (100 * USDC, 200 * USDC, DAY))
    assert pay(env, grandchild, 100 * USDC) == 0  # all three charged
    assert pay(env, child, 100 * USDC) == 0  # the child's 200 spent, the root has ~800
    root_before = available(env, root.address)
    grandchild_before = available(env, grandchild.address)
    assert root_before >= 799 * USDC and grandchild_before >= 100 * USDC
    # the middle level refuses: neither the grandchild nor the root above it is charged
    rid = pay(env, grandchild, 50 * USDC)
    assert rid != 0 and env.request(rid)["reasons"] == REASON_OVER_ALLOWANCE
    assert available(env, root.address) >= root_before
    assert available(env, grandchild.address) >= grandchild_before
    # the top level refuses while the levels below accept: nothing below is charged either
    env.send(
        env.vault.functions.reduceLimits(root.address, env.usdc.address, 100 * USDC, 0),
        env.owners[0],
    )
    child_before = available(env, child.address)
    grandchild_before = available(env, grandchild.address)
    rid = pay(env, grandchild, 1 * USDC)
    assert rid != 0 and env.request(rid)["reasons"] & REASON_OVER_ALLOWANCE
    assert available(env, child.address) >= child_before
    assert available(env, grandchild.address) >= grandchild_before
    # two levels refusing for different reasons: the request names both
    env.send(
        env.vault.functions.reduceLimits(child.address, env.usdc.address, 10 * USDC, 200 * USDC),
        env.owners[0],
    )
    rid = pay(env, grandchild, 20 * USDC)
    assert env.request(rid)["reasons"] == REASON_OVER_PER_PAYMENT | REASON_OVER_ALLOWANCE


def test_every_level_of_a_fast_subtree_is_charged_exactly(env: Env) -> None:
    """A payment three levels down charges each of the four words by the same amount."""
    root = add_root(env, "p10", (100 * USDC, 1_000 * USDC, DAY))
    child = delegate(env, root, "c10", (100 * USDC, 500 * USDC, DAY))
    grandchild = delegate(env, child, "g10", (100 * USDC, 400 * USDC, DAY))
    great = delegate(env, grandchild, "gg10", (100 * USDC, 300 * USDC, DAY))
    chain = (root, child, grandchild, great)
    for k in chain:  # touch every budget once so each holds a known, full amount
        assert pay(env, k, 1) == 0
    before = [available(env, k.address) for k in chain]
    assert pay(env, great, 70 * USDC) == 0
    after = [available(env, k.address) for k in chain]
    for b, a in zip(before, after, strict=True):
        # spent 70 (refill over a few seconds at <= 1,000/day adds well under 0.1)
        assert b - 70 * USDC <= a < b - 69 * USDC
