"""Governance: who may change what, and how (one owner reduces risk, the threshold adds it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contracts.conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    AGENT_REVOKED,
    DAY,
    ETH,
    KIND_GOVERNANCE,
    PENDING,
    REJECTED,
    REQUEST_EXPIRY,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    expect_revert,
    fresh_address,
    ref,
)

ONLY_VAULT_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("addAgent", ("AGENT", 0, 0, False)),
    ("unpauseAgent", ("AGENT",)),
    ("setLimits", ("AGENT", "USDC", 10**12, 10**12, DAY)),
    ("allowRecipient", ("AGENT", "AGENT")),
    ("unpause", ()),
    ("addOwner", ("OUTSIDER", 1)),
    ("removeOwner", ("OWNER", 1)),
    ("changeThreshold", (1,)),
    ("setRequestExpiry", (3_600,)),
    ("setMaxOpenRequests", (1_000,)),
]


def _args(env: Env, args: tuple[Any, ...]) -> list[Any]:
    names = {
        "AGENT": env.agent.address,
        "USDC": env.usdc.address,
        "OUTSIDER": env.outsider.address,
        "OWNER": env.owners[1].address,
    }
    return [names.get(a, a) if isinstance(a, str) else a for a in args]


def test_only_vault_functions_cannot_be_called_directly(env: Env) -> None:
    for name, args in ONLY_VAULT_CALLS:
        fn = env.vault.functions[name](*_args(env, args))
        for caller in (env.owners[0], env.agent):
            with expect_revert("OnlyVault", caller.address):
                env.send(fn, caller)


def test_propose_rejects_non_governance_calls(env: Env) -> None:
    transfer_like = env.calldata("pay", env.usdc.address, env.owners[0].address, 1, ref("x"))
    with expect_revert("NotGovernanceCall", transfer_like[:4]):
        env.send(env.vault.functions.propose(transfer_like, ref("x")), env.owners[0])
    for data in (b"", b"\x01\x02", env.calldata("pause"), env.calldata("approve", 1)):
        with expect_revert("NotGovernanceCall"):
            env.send(env.vault.functions.propose(data, ref("x")), env.owners[0])
    with expect_revert("NotOwner", env.agent.address):
        env.send(env.vault.functions.propose(env.calldata("unpause"), ref("x")), env.agent)


def test_risk_reducing_calls_are_one_owners_instant_call(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    owner = env.owners[2]
    receipt = env.send(v.reduceLimits(agent, usdc, USDC_MAX // 2, USDC_ALLOWANCE // 2), owner)
    changed = env.event(receipt, "LimitsChanged")
    assert (
        changed["maxPerPayment"],
        changed["allowance"],
        changed["by"],
        changed["requestId"],
    ) == (USDC_MAX // 2, USDC_ALLOWANCE // 2, owner.address, 0)
    assert tuple(env.vault.functions.getPolicy(agent, usdc).call()[:3]) == (
        USDC_MAX // 2,
        USDC_ALLOWANCE // 2,
        DAY,
    )
    with expect_revert("LimitNotReduced", USDC_ALLOWANCE // 2, USDC_ALLOWANCE):
        env.send(v.reduceLimits(agent, usdc, USDC_MAX // 2, USDC_ALLOWANCE), owner)
    with expect_revert("LimitNotReduced", USDC_MAX // 2, USDC_MAX):
        env.send(v.reduceLimits(agent, usdc, USDC_MAX, 1), owner)
    receipt = env.send(v.removeToken(agent, ETH), owner)
    assert env.event(receipt, "LimitsChanged")["period"] == 0
    assert env.vault.functions.checkPayment(agent, ETH, owner.address, 1).call() == 8
    with expect_revert("InvalidPeriod", 0):
        env.send(v.reduceLimits(agent, ETH, 0, 0), owner)
    receipt = env.send(v.enforceAllowlist(agent), owner)
    assert env.event(receipt, "AgentConfigured")["useAllowlist"] is True
    assert env.vault.functions.getAgent(agent).call()[3] is True
    receipt = env.send(v.pauseAgent(agent), owner)
    assert env.event(receipt, "AgentStatusChanged") == {
        "agent": agent,
        "status": AGENT_PAUSED,
        "by": owner.address,
        "requestId": 0,
    }
    receipt = env.send(v.revokeAgent(agent), owner)
    assert env.event(receipt, "AgentStatusChanged")["status"] == AGENT_REVOKED
    with expect_revert("AgentNotActive", agent, AGENT_REVOKED):
        env.send(v.revokeAgent(agent), owner)
    receipt = env.send(v.pause(), owner)
    assert env.event(receipt, "VaultPaused") == {"by": owner.address}
    assert env.vault.functions.paused().call()


def test_remove_recipient_is_one_owners_call(env: Env) -> None:
    shop = fresh_address("shop")
    env.govern("allowRecipient", env.agent.address, shop)
    assert env.vault.functions.isRecipientAllowed(env.agent.address, shop).call()
    receipt = env.send(env.vault.functions.removeRecipient(env.agent.address, shop), env.owners[0])
    event = env.event(receipt, "RecipientChanged")
    assert (event["recipient"], event["allowed"], event["requestId"]) == (shop, False, 0)
    assert not env.vault.functions.isRecipientAllowed(env.agent.address, shop).call()


def test_reject_is_one_owners_call_even_for_governance(env: Env) -> None:
    _r, gid = env.propose("changeThreshold", 1)
    env.send(env.vault.functions.reject(gid), env.owners[2])
    assert env.status(gid) == REJECTED
    assert env.vault.functions.threshold().call() == 2


@pytest.mark.parametrize(
    "call",
    [
        "pause",
        "pauseAgent",
        "revokeAgent",
        "reduceLimits",
        "removeToken",
        "removeRecipient",
        "enforceAllowlist",
    ],
)
def test_non_owners_cannot_reduce_risk_either(env: Env, call: str) -> None:
    args: dict[str, list[Any]] = {
        "pause": [],
        "pauseAgent": [env.agent.address],
        "revokeAgent": [env.agent.address],
        "reduceLimits": [env.agent.address, env.usdc.address, 0, 0],
        "removeToken": [env.agent.address, env.usdc.address],
        "removeRecipient": [env.agent.address, env.outsider.address],
        "enforceAllowlist": [env.agent.address],
    }
    for attacker in (env.agent, env.outsider):
        with expect_revert("NotOwner", attacker.address):
            env.send(env.vault.functions[call](*args[call]), attacker)


def test_unpause_needs_the_threshold(env: Env) -> None:
    env.send(env.vault.functions.pause(), env.owners[0])
    _r, gid = env.propose("unpause", proposer=env.owners[0])
    assert env.vault.functions.paused().call()  # one owner is not enough
    receipt = env.send(env.vault.functions.approve(gid), env.owners[2])
    assert env.event(receipt, "VaultUnpaused") == {"requestId": gid}
    assert not env.vault.functions.paused().call()


def test_unpause_agent_needs_the_threshold(env: Env) -> None:
    env.send(env.vault.functions.pauseAgent(env.agent.address), env.owners[0])
    receipt, gid = env.govern("unpauseAgent", env.agent.address)
    assert env.event(receipt, "AgentStatusChanged") == {
        "agent": env.agent.address,
        "status": AGENT_ACTIVE,
        "by": env.vault.address,
        "requestId": gid,
    }
    assert env.pay(env.usdc.address, fresh_address("again"), 1)[1] == 0


def test_owners_and_threshold_change_through_governance_with_request_ids(env: Env) -> None:
    newcomer = env.spare[2]
    receipt, gid = env.govern("addOwner", newcomer.address, 3)
    assert env.event(receipt, "OwnerAdded") == {"owner": newcomer.address, "requestId": gid}
    assert env.event(receipt, "ThresholdChanged") == {"threshold": 3, "requestId": gid}
    assert env.vault.functions.getOwners().call()[0] == newcomer.address
    assert len(env.vault.functions.getOwners().call()) == 4
    # 3-of-4 now: remove owner 2 and go back to 2-of-3
    _r, gid = env.propose("removeOwner", env.owners[2].address, 2)
    env.send(env.vault.functions.approve(gid), env.owners[1])
    receipt = env.send(env.vault.functions.approve(gid), newcomer)
    assert env.event(receipt, "OwnerRemoved") == {"owner": env.owners[2].address, "requestId": gid}
    assert env.event(receipt, "ThresholdChanged") == {"threshold": 2, "requestId": gid}
    assert set(env.vault.functions.getOwners().call()) == {
        newcomer.address,
        env.owners[0].address,
        env.owners[1].address,
    }
    receipt, gid = env.govern("changeThreshold", 1)
    assert env.event(receipt, "ThresholdChanged") == {"threshold": 1, "requestId": gid}
    # threshold 1: a proposal executes in the proposing transaction
    receipt, gid = env.propose("setRequestExpiry", 2 * REQUEST_EXPIRY)
    assert env.event(receipt, "RequestExpiryChanged") == {
        "requestExpiry": 2 * REQUEST_EXPIRY,
        "requestId": gid,
    }
    receipt, gid = env.propose("setMaxOpenRequests", 7)
    assert env.event(receipt, "MaxOpenRequestsChanged") == {"maxOpenRequests": 7, "requestId": gid}


def test_invalid_owner_and_threshold_changes_revert(env: Env) -> None:
    def attempt(function: str, *args: Any) -> None:
        _r, gid = env.propose(function, *args)
        env.send(env.vault.functions.approve(gid), env.owners[1])

    with expect_revert("InvalidThreshold", 4, 3):
        attempt("changeThreshold", 4)
    with expect_revert("InvalidThreshold", 0, 3):
        attempt("changeThreshold", 0)
    with expect_revert("InvalidThreshold", 3, 2):
        attempt("removeOwner", env.owners[2].address, 3)
    with expect_revert("AlreadyOwner", env.owners[2].address):
        attempt("addOwner", env.owners[2].address, 2)
    with expect_revert("NotAnOwner", env.outsider.address):
        attempt("removeOwner", env.outsider.address, 2)
    with expect_revert("ZeroAddress"):
        attempt("addOwner", "0x" + "00" * 20, 2)
    with expect_revert("InvalidRequestExpiry", 60):
        attempt("setRequestExpiry", 60)
    with expect_revert("InvalidMaxOpenRequests", 1001):
        attempt("setMaxOpenRequests", 1001)


def test_an_agent_can_never_be_made_an_owner(env: Env) -> None:
    _r, gid = env.propose("addOwner", env.agent.address, 2)
    with expect_revert("AgentIsOwner", env.agent.address):
        env.send(env.vault.functions.approve(gid), env.owners[1])
    # not even after it was revoked
    env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[0])
    _r, gid = env.propose("addOwner", env.agent.address, 2)
    with expect_revert("AgentIsOwner", env.agent.address):
        env.send(env.vault.functions.approve(gid), env.owners[1])


def test_an_owner_can_never_be_made_an_agent(env: Env) -> None:
    _r, gid = env.propose("addAgent", env.owners[2].address, 0, 0, False)
    with expect_revert("AgentIsOwner", env.owners[2].address):
        env.send(env.vault.functions.approve(gid), env.owners[1])
    for bad in ("0x" + "00" * 20, env.vault.address, "0x" + "00" * 19 + "01"):
        _r, gid = env.propose("addAgent", bad, 0, 0, False)
        with expect_revert("InvalidAgent"):
            env.send(env.vault.functions.approve(gid), env.owners[1])


def test_governance_requests_record_the_proposer_and_call(env: Env) -> None:
    receipt, gid = env.propose("changeThreshold", 3, proposer=env.owners[1])
    created = env.event(receipt, "RequestCreated")
    assert created["kind"] == KIND_GOVERNANCE
    assert created["agent"] == env.owners[1].address
    assert created["to"] == env.vault.address
    assert created["data"] == env.calldata("changeThreshold", 3)
    assert env.event(receipt, "RequestApproved")["approvals"] == 1  # proposer counted
    assert env.vault.functions.hasApproved(gid, env.owners[1].address).call()
    assert env.status(gid) == PENDING


def test_initialize_twice_reverts(env: Env) -> None:
    owners = [o.address for o in env.owners]
    with expect_revert("AlreadyInitialized"):
        env.send(env.vault.functions.initialize([env.outsider.address], 1, DAY, 5), env.outsider)
    implementation = env.contract("AgentVault", env.factory.functions.implementation().call())
    with expect_revert("AlreadyInitialized"):
        env.send(
            implementation.functions.initialize([env.outsider.address], 1, DAY, 5), env.outsider
        )
    assert list(env.vault.functions.getOwners().call()) == owners
    assert not implementation.functions.isOwner(env.outsider.address).call()


def test_raising_limits_never_makes_a_spent_budget_available_at_once(env: Env) -> None:
    """New limits never add to what is available now: a budget spent in full stays spent after a
    raise and refills at the new rate; single-owner reductions can only lower it further."""
    to = fresh_address("raise")
    env.govern(
        "setLimits", env.agent.address, env.usdc.address, USDC_ALLOWANCE, USDC_ALLOWANCE, DAY
    )
    env.pay(env.usdc.address, to, USDC_ALLOWANCE)
    assert env.available(env.usdc.address) < USDC_ALLOWANCE // 1000
    env.govern(
        "setLimits",
        env.agent.address,
        env.usdc.address,
        2 * USDC_ALLOWANCE,
        2 * USDC_ALLOWANCE,
        DAY,
    )
    # still spent: only a few seconds of refill at the new rate
    available = env.available(env.usdc.address)
    assert available < 2 * USDC_ALLOWANCE // 1000
    assert env.pay(env.usdc.address, to, USDC_ALLOWANCE // 2)[1] != 0
    # and a single-owner reduction can never refill it
    env.send(
        env.vault.functions.reduceLimits(
            env.agent.address, env.usdc.address, 2 * USDC_ALLOWANCE, 2 * USDC_ALLOWANCE
        ),
        env.owners[0],
    )
    assert env.available(env.usdc.address) <= available + 10 * USDC
    env.send(
        env.vault.functions.reduceLimits(env.agent.address, env.usdc.address, USDC, USDC_ALLOWANCE),
        env.owners[0],
    )
    assert env.available(env.usdc.address) <= available + 10 * USDC
    assert env.usdc_of(to) == USDC_ALLOWANCE


@pytest.mark.parametrize(
    "cut", ["reduce_allowance_to_zero", "reduce_allowance_to_one", "remove_token"]
)
def test_cutting_then_restoring_limits_does_not_refill_a_spent_budget(env: Env, cut: str) -> None:
    """The agent spends its whole allowance; an owner cuts its limits in alarm; the owners
    then restore exactly the old limits. `_rewritePolicy` promises that changing limits never
    refills a budget, so the agent must not get a second full allowance right away."""
    agent, usdc = env.agent.address, env.usdc.address
    to = fresh_address("refill")
    env.govern("setLimits", agent, usdc, USDC_ALLOWANCE, USDC_ALLOWANCE, DAY)
    assert env.pay(usdc, to, USDC_ALLOWANCE)[1] == 0
    owner = env.owners[2]
    if cut == "remove_token":
        env.send(env.vault.functions.removeToken(agent, usdc), owner)
    else:
        allowance = 0 if cut == "reduce_allowance_to_zero" else 1
        env.send(env.vault.functions.reduceLimits(agent, usdc, 0, allowance), owner)
    env.govern("setLimits", agent, usdc, USDC_ALLOWANCE, USDC_ALLOWANCE, DAY)
    # a few seconds have passed: a few seconds' refill is all that may be available
    assert env.available(usdc) < USDC_ALLOWANCE // 100
    assert env.pay(usdc, to, USDC_ALLOWANCE)[1] != 0  # today it pays a second allowance
