"""Governance: who may change what, and how (one owner reduces risk, the threshold adds it)."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from tests.contracts.conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    AGENT_REVOKED,
    DAY,
    ETH,
    FIXED_GAS,
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
    ("swapOwner", ("OWNER", "OUTSIDER")),
    ("replaceAgentKey", ("AGENT", "OUTSIDER")),
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
    approve_first = env.calldata("approveProposal", env.rq.req(1), env.rq.data(1))
    reject_first = env.calldata("rejectProposal", env.rq.req(1))
    for data in (b"", b"\x01\x02", env.calldata("pause"), approve_first, reject_first):
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
    # out of scope there is nothing left to reduce or remove
    with expect_revert("TokenNotInScope", agent, ETH):
        env.send(v.reduceLimits(agent, ETH, 0, 0), owner)
    with expect_revert("TokenNotInScope", agent, ETH):
        env.send(v.removeToken(agent, ETH), owner)
    receipt = env.send(v.enforceAllowlist(agent), owner)
    assert env.event(receipt, "AgentConfigured")["useAllowlist"] is True
    assert env.vault.functions.getAgent(agent).call()[1] is True  # useAllowlist
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


def test_one_rejection_does_not_veto_a_governance_request(env: Env) -> None:
    """Rule change: one owner's rejection used to close a governance request (so a minority
    could veto what the threshold wants). Now it stays open until rejections by current owners
    exceed owners - threshold (1 in a 2-of-3), and the threshold can still pass it."""
    _r, gid = env.propose("changeThreshold", 1)
    receipt = env.send(env.rq.reject(gid), env.owners[2])
    assert env.event(receipt, "RequestRejected") == {
        "requestId": gid,
        "owner": env.owners[2].address,
        "rejections": 1,
        "closed": False,
    }
    assert env.status(gid) == PENDING
    assert env.vault.functions.rejectionCount(gid).call() == 1
    with expect_revert("AlreadyRejected", gid, env.owners[2].address):
        env.send(env.rq.reject(gid), env.owners[2])
    receipt = env.send(env.rq.approve(gid), env.owners[1])
    assert env.event(receipt, "RequestExecuted")["requestId"] == gid
    assert env.vault.functions.threshold().call() == 1


def test_governance_request_closes_once_the_threshold_cannot_be_reached(env: Env) -> None:
    _r, gid = env.propose("changeThreshold", 1)  # owner 0's approval counted
    env.send(env.rq.reject(gid), env.owners[1])
    receipt = env.send(env.rq.reject(gid), env.owners[2])
    event = env.event(receipt, "RequestRejected")
    assert (event["owner"], event["rejections"], event["closed"]) == (
        env.owners[2].address,
        2,
        True,
    )
    assert env.status(gid) == REJECTED
    # closed for good: no approval, no signatures, no later change of mind
    with expect_revert("RequestNotPending", gid, REJECTED):
        env.send(env.rq.approve(gid), env.owners[1])
    with expect_revert("RequestNotPending", gid, REJECTED):
        env.send(env.rq.executeWithSignatures(gid, env.packed(gid, env.owners[:2])), env.outsider)
    with expect_revert("RequestNotPending", gid, REJECTED):
        env.send(env.rq.reject(gid), env.owners[0])
    assert env.vault.functions.threshold().call() == 2


def test_each_owner_has_one_vote_it_can_change(env: Env) -> None:
    """An owner's approval replaces its rejection and vice versa; repeating the same vote
    reverts; a vote never counts twice."""
    v = env.vault.functions
    first, second = env.owners[0], env.owners[1]
    _r, gid = env.propose("changeThreshold", 1, proposer=first)
    assert (v.approvalCount(gid).call(), v.rejectionCount(gid).call()) == (1, 0)
    with expect_revert("AlreadyApproved", gid, first.address):
        env.send(env.rq.approve(gid), first)
    receipt = env.send(env.rq.reject(gid), first)  # the proposer changes its mind
    assert env.event(receipt, "RequestRejected")["rejections"] == 1
    assert (v.approvalCount(gid).call(), v.rejectionCount(gid).call()) == (0, 1)
    assert not v.hasApproved(gid, first.address).call()
    with expect_revert("AlreadyRejected", gid, first.address):
        env.send(env.rq.reject(gid), first)
    receipt = env.send(env.rq.approve(gid), first)  # ... and back again
    assert env.event(receipt, "RequestApproved") == {
        "requestId": gid,
        "owner": first.address,
        "approvals": 1,
    }
    assert (v.approvalCount(gid).call(), v.rejectionCount(gid).call()) == (1, 0)
    env.send(env.rq.reject(gid), second)
    assert (v.approvalCount(gid).call(), v.rejectionCount(gid).call()) == (1, 1)
    assert env.status(gid) == PENDING  # one rejection does not close it
    receipt = env.send(env.rq.approve(gid), second)  # the rejection becomes the 2nd approval
    executed = env.event(receipt, "RequestExecuted")
    # the approvers are named (in the owner list's order), each once
    owners = list(v.getOwners().call())
    expected = [o for o in owners if o in (first.address, second.address)]
    assert list(executed["signers"]) == expected
    assert v.threshold().call() == 1


def test_only_current_owners_rejections_count(env: Env) -> None:
    _r, gid = env.propose("setMaxOpenRequests", 9)
    leaving = env.owners[2]
    env.send(env.rq.reject(gid), leaving)
    assert env.vault.functions.rejectionCount(gid).call() == 1
    env.govern("swapOwner", leaving.address, env.spare[2].address)
    assert env.vault.functions.rejectionCount(gid).call() == 0
    receipt = env.send(env.rq.approve(gid), env.owners[1])
    assert env.event(receipt, "MaxOpenRequestsChanged")["maxOpenRequests"] == 9


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
    receipt = env.send(env.rq.approve(gid), env.owners[2])
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
    env.send(env.rq.approve(gid), env.owners[1])
    receipt = env.send(env.rq.approve(gid), newcomer)
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
        env.send(env.rq.approve(gid), env.owners[1])

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
        env.send(env.rq.approve(gid), env.owners[1])
    # not even after it was revoked
    env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[0])
    _r, gid = env.propose("addOwner", env.agent.address, 2)
    with expect_revert("AgentIsOwner", env.agent.address):
        env.send(env.rq.approve(gid), env.owners[1])


def test_an_owner_can_never_be_made_an_agent(env: Env) -> None:
    _r, gid = env.propose("addAgent", env.owners[2].address, 0, 0, False)
    with expect_revert("AgentIsOwner", env.owners[2].address):
        env.send(env.rq.approve(gid), env.owners[1])
    for bad in ("0x" + "00" * 20, env.vault.address, "0x" + "00" * 19 + "01"):
        _r, gid = env.propose("addAgent", bad, 0, 0, False)
        with expect_revert("InvalidAgent"):
            env.send(env.rq.approve(gid), env.owners[1])


def test_governance_requests_record_the_proposer_and_call(env: Env) -> None:
    receipt, gid = env.propose("changeThreshold", 3, proposer=env.owners[1])
    created = env.event(receipt, "GovernanceProposed")
    assert created == {
        "requestId": gid,
        "proposer": env.owners[1].address,
        "ref": ref("changeThreshold"),
        "expiresAt": env.block_time(receipt) + REQUEST_EXPIRY,
        "data": env.calldata("changeThreshold", 3),
    }
    assert env.topics(receipt, "GovernanceProposed")[1:] == [
        gid.to_bytes(32, "big"),
        bytes(12) + bytes.fromhex(env.owners[1].address[2:]),
    ]
    assert env.event(receipt, "RequestApproved")["approvals"] == 1  # proposer counted
    assert env.vault.functions.hasApproved(gid, env.owners[1].address).call()
    assert env.status(gid) == PENDING


def test_initialize_twice_reverts(env: Env) -> None:
    owners = [o.address for o in env.owners]
    with expect_revert("AlreadyInitialized"):
        env.send(env.vault.functions.initialize([env.outsider.address], 1, DAY, 5), env.outsider)
    implementation = env.contract("IAgentVault", env.factory.functions.implementation().call())
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
    then restore exactly the old limits. `PolicyWord.rewrite` promises that changing limits
    never refills a budget, so the agent must not get a second full allowance right away."""
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


# ------------------------------------------------------------------ the budget rule, exactly

HOUR = 3_600
MASK_29 = (1 << 29) - 1
MASK_88 = (1 << 88) - 1
TAT_MASK = (1 << 46) - 1
_POLICIES_SLOT: list[int] = []


def _layout_slot() -> int:
    """ERC-7201 slot of the namespace ``agentwallet.vault``."""
    inner = int.from_bytes(Web3.keccak(text="agentwallet.vault"), "big") - 1
    return int.from_bytes(Web3.keccak(inner.to_bytes(32, "big")), "big") & ~0xFF


def _word(env: Env, agent: str, token: str) -> int:
    """The raw policy word of (agent, token). The mapping's slot is found once, among the
    first slots of the vault's namespace, by matching ``getPolicy`` (the pair must be in scope
    then); every later read is checked against ``getPolicy`` again."""

    def read(slot: int) -> int:
        inner = Web3.keccak(bytes.fromhex(agent[2:]).rjust(32, b"\0") + slot.to_bytes(32, "big"))
        key = Web3.keccak(bytes.fromhex(token[2:]).rjust(32, b"\0") + inner)
        raw = env.w3.eth.get_storage_at(env.vault.address, int.from_bytes(key, "big"))
        return int.from_bytes(raw, "big")

    policy = env.vault.functions.getPolicy(agent, token).call()
    if not _POLICIES_SLOT:
        assert policy[2] != 0, "locate the policies slot with a pair in scope"
        base = _layout_slot()
        found = [base + i for i in range(16) if _fields(read(base + i)) == tuple(policy[:3])]
        assert len(found) == 1, "policy word not found in storage: did the layout change?"
        _POLICIES_SLOT.append(found[0])
    word = read(_POLICIES_SLOT[0])
    if policy[2] != 0:
        assert _fields(word) == tuple(policy[:3])
    return word


def _fields(word: int) -> tuple[int, int, int]:
    """(maxPerPayment, allowance, period) of a policy word."""
    return word >> 168, (word >> 80) & MASK_88, (word >> 51) & MASK_29


def _budget(word: int, t: int) -> int:
    """PolicyWord.budget: what the word's budget holds at time ``t`` (scope ignored)."""
    _max, allowance, period = _fields(word)
    if period == 0:
        return 0
    scaled, now = period << 8, t << 8
    start = max(word & TAT_MASK, now)
    return 0 if start >= now + scaled else (now + scaled - start) * allowance // scaled


def _rule(word: int, allowance: int, t: int) -> int:
    """The budget rule as the interface states it: min(b0, max(0, A1 - (A0 - b0))), full for
    a word that never had limits."""
    if _fields(word)[2] == 0:
        return allowance
    b0 = _budget(word, t)
    return min(b0, max(0, allowance - (_fields(word)[1] - b0)))


def _rewritten_tat(word: int, allowance: int, period: int, t: int) -> int:
    """The tat the contract writes for the rule's target (the budget can only be represented
    to 1/256 s of refill, so it rounds down to the nearest value the new rate can hold)."""
    target = _rule(word, allowance, t)
    if _fields(word)[2] == 0 or target >= allowance:
        return 0
    scaled = period << 8
    return (t << 8) + scaled - target * scaled // allowance


LIMIT_CHANGES = {
    # name: (spent first, new maxPerPayment, new allowance, new period, by governance)
    "raise-after-partial-spend": (600 * USDC, 2_000 * USDC, 2_000 * USDC, DAY, True),
    "raise-untouched-budget": (0, 2_000 * USDC, 2_000 * USDC, DAY, True),
    "raise-and-shorten-period": (900 * USDC, 5_000 * USDC, 5_000 * USDC, HOUR, True),
    "same-allowance-longer-period": (600 * USDC, USDC_ALLOWANCE, USDC_ALLOWANCE, 7 * DAY, True),
    "same-allowance-shorter-period": (600 * USDC, USDC_ALLOWANCE, USDC_ALLOWANCE, HOUR, True),
    "cut-through-governance": (600 * USDC, 100 * USDC, 700 * USDC, 2 * DAY, True),
    "reduce-below-what-was-spent": (600 * USDC, 100 * USDC, 500 * USDC, DAY, False),
    "reduce-above-what-was-spent": (600 * USDC, 100 * USDC, 800 * USDC, DAY, False),
    "reduce-to-zero": (600 * USDC, 0, 0, DAY, False),
}


@pytest.mark.parametrize("change", sorted(LIMIT_CHANGES))
def test_limit_changes_never_add_to_the_budget_at_that_instant(env: Env, change: str) -> None:
    """Rule change (PolicyWord.rewrite): with b0 the budget just before and A0 the old
    allowance, the budget right after new limits A1 is min(b0, max(0, A1 - (A0 - b0))) (what
    was spent stays spent, nothing is added at that instant), and it then refills at the new
    rate. Timestamps are pinned so that "before" and "after" are the same block time."""
    spend, maximum, allowance, period, governance = LIMIT_CHANGES[change]
    agent, usdc = env.agent.address, env.usdc.address
    env.govern("setLimits", agent, usdc, USDC_ALLOWANCE, USDC_ALLOWANCE, DAY)
    assert env.available(usdc) == USDC_ALLOWANCE
    t0 = env.now() + 10
    if spend:
        env.set_next_timestamp(t0)
        assert env.pay(usdc, fresh_address("rule"), spend, gas=FIXED_GAS)[1] == 0
    if governance:
        _r, gid = env.propose("setLimits", agent, usdc, maximum, allowance, period)
        change_fn, sender = env.rq.approve(gid), env.owners[1]
    else:
        change_fn = env.vault.functions.reduceLimits(agent, usdc, maximum, allowance)
        sender = env.owners[2]
    t1 = t0 + HOUR  # an hour of refill at the old rate since the payment
    word = _word(env, agent, usdc)
    before = _budget(word, t1)
    env.set_next_timestamp(t1)
    receipt = env.send(change_fn, sender, gas=FIXED_GAS)
    assert env.block_time(receipt) == t1
    after = env.available(usdc)
    event = env.event(receipt, "LimitsChanged")
    assert (event["maxPerPayment"], event["allowance"], event["period"]) == (
        maximum,
        allowance,
        period,
    )
    assert event["available"] == after
    assert after <= before, f"{change}: the change added {after - before} at once"
    ideal = _rule(word, allowance, t1)
    assert after <= ideal
    if allowance:  # it rounds down by less than 1/256 s of refill at the new rate
        assert ideal - after <= allowance // (period << 8) + 1
    new_word = _word(env, agent, usdc)
    assert new_word & TAT_MASK == _rewritten_tat(word, allowance, period, t1)
    # afterwards the budget refills at the new rate, never above the new allowance
    assert _budget(new_word, t1) == after
    for dt in (1, HOUR, period // 2, period):
        refill = dt * allowance // period
        expected = min(allowance, after + refill)
        assert abs(_budget(new_word, t1 + dt) - expected) <= 1 + allowance // (period << 8)
    env.set_next_timestamp(t1 + period // 2)
    env.chain.mine()
    assert env.available(usdc) == _budget(new_word, t1 + period // 2)
    # and one payment can move exactly that, not a unit more
    now = t1 + period // 2 + 1
    room = min(maximum, _budget(new_word, now))
    env.set_next_timestamp(now)
    if room < allowance and room < maximum:
        _r, rid = env.pay(usdc, fresh_address("rule"), room + 1, gas=FIXED_GAS)
        assert rid != 0
        now += 1
        env.set_next_timestamp(now)
        room = min(maximum, _budget(new_word, now))
    if room:
        assert env.pay(usdc, fresh_address("rule"), room, gas=FIXED_GAS)[1] == 0
