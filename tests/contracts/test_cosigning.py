"""On-chain co-signing: M-of-N approvals, rejections, and approvals that stop counting."""

from __future__ import annotations

from typing import Any

from web3 import Web3

from tests.contracts.conftest import (
    CANCELLED,
    CLOSED,
    ETH,
    EXECUTED,
    EXPIRED,
    NONE,
    PAYMENT_FIELDS,
    PENDING,
    PROPOSAL_FIELDS,
    REJECTED,
    USDC,
    VAULT_USDC,
    Env,
    expect_revert,
    fresh_address,
    ref,
)


def test_two_of_three_approvals_execute_in_the_approving_transaction(env: Env) -> None:
    to = fresh_address("cosigned")
    rid = env.escalate(500 * USDC, to)
    first = env.send(env.rq.approve(rid), env.owners[2])
    assert env.event(first, "RequestApproved")["approvals"] == 1
    assert env.events(first, "RequestExecuted") == []
    assert env.usdc_of(to) == 0
    second = env.send(env.rq.approve(rid), env.owners[0])
    assert env.event(second, "RequestApproved")["approvals"] == 2
    executed = env.event(second, "RequestExecuted")
    owners = list(env.vault.functions.getOwners().call())
    approvers = [o for o in owners if o in (env.owners[0].address, env.owners[2].address)]
    assert {**executed, "signers": list(executed["signers"])} == {
        "requestId": rid,
        "executor": env.owners[0].address,
        "signers": approvers,  # the owners whose on-chain approvals ran it
    }
    paid = env.event(second, "PaymentExecuted")
    assert paid == {
        "agent": env.agent.address,
        "token": env.usdc.address,
        "to": to,
        "amount": 500 * USDC,
        "ref": ref("escalated"),
    }
    assert env.usdc_of(to) == 500 * USDC
    assert env.usdc_of(env.vault.address) == VAULT_USDC - 500 * USDC
    assert env.status(rid) == EXECUTED
    assert env.vault.functions.getAgent(env.agent.address).call()[4] == 0  # slot freed


def test_the_same_owner_cannot_approve_twice(env: Env) -> None:
    rid = env.escalate()
    env.send(env.rq.approve(rid), env.owners[1])
    with expect_revert("AlreadyApproved", rid, env.owners[1].address):
        env.send(env.rq.approve(rid), env.owners[1])


def test_non_owners_cannot_approve_or_reject(env: Env) -> None:
    rid = env.escalate()
    for attacker in (env.agent, env.outsider):
        with expect_revert("NotOwner", attacker.address):
            env.send(env.rq.approve(rid), attacker)
        with expect_revert("NotOwner", attacker.address):
            env.send(env.rq.reject(rid), attacker)
    with expect_revert("NotEnoughApprovals", rid, 0, 2):
        env.send(env.rq.execute(rid), env.outsider)


def test_unknown_request_ids_revert(env: Env) -> None:
    """Every call acting on a request refuses an id that was never created. (The digest is now a
    pure function of the request it is given, so the digest view no longer reverts for it: the
    status view says None instead.)"""
    unknown = env.vault.functions.requestCount().call() + 1
    with expect_revert("UnknownRequest", unknown):
        env.send(env.rq.approve(unknown), env.owners[0])
    with expect_revert("UnknownRequest", unknown):
        env.send(env.rq.execute(unknown), env.outsider)
    with expect_revert("UnknownRequest", unknown):
        env.send(env.rq.reject(unknown), env.owners[0])
    with expect_revert("UnknownRequest", unknown):
        env.send(env.rq.cancel(unknown), env.agent)
    with expect_revert("UnknownRequest", unknown):
        env.send(env.rq.expire(unknown), env.outsider)
    with expect_revert("UnknownRequest", unknown):  # refused before any signature is read
        env.send(env.rq.executeWithSignatures(unknown, bytes(130)), env.outsider)
    assert env.status(unknown) == NONE
    assert env.rq.requestDigest(unknown).call() != bytes(32)


def _altered(request: tuple[Any, ...], fields: list[str], name: str, value: Any) -> tuple[Any, ...]:
    out = list(request)
    out[fields.index(name)] = value
    return tuple(out)


def test_a_request_whose_contents_differ_from_the_created_one_is_refused(env: Env) -> None:
    """Only a hash is stored: every field of the PaymentRequest passed in must be what was
    requested, or every call acting on it reverts RequestMismatch (UnknownRequest when the slot
    named holds nothing) and the status view never calls it pending; a governance proposal is
    held to every field as well, and runs only with exactly its call data (DataMismatch)."""
    v = env.vault.functions
    to = fresh_address("mismatch")
    rid = env.escalate(300 * USDC, to)
    env.send(env.rq.approve(rid), env.owners[0])
    request = env.rq.req(rid)
    field = dict(zip(PAYMENT_FIELDS, request, strict=True))
    thief = fresh_address("thief")
    changes = {
        "id": rid + 1,
        "agent": env.outsider.address,
        "lineage": field["lineage"] + 1,
        "slot": field["slot"] + 1000,
        "token": ETH,
        "to": thief,
        "amount": 300 * USDC + 1,
        "ref": ref("other"),
        "reasons": 0,
        "expiresAt": field["expiresAt"] + 1,
    }
    assert set(changes) == set(PAYMENT_FIELDS)
    sigs = env.packed(rid, env.owners[:2])
    for name, value in changes.items():
        forged = _altered(request, PAYMENT_FIELDS, name, value)
        error = ("UnknownRequest", rid) if name == "slot" else ("RequestMismatch", forged[0])
        for fn, sender in (
            (v.approvePayment(forged), env.owners[1]),
            (v.executePayment(forged), env.outsider),
            (v.executePaymentWithSignatures(forged, sigs), env.outsider),
            (v.rejectPayment(forged), env.owners[1]),
            (v.cancelPayment(forged), env.agent),
            (v.expirePayment(forged), env.outsider),
        ):
            with expect_revert(*error):
                env.send(fn, sender)
        assert v.paymentStatus(forged).call() in (CLOSED, NONE), name
    assert env.usdc_of(thief) == 0
    assert env.status(rid) == PENDING
    # a governance proposal: every field, and the call itself
    _r, gid = env.propose("changeThreshold", 1)
    proposal = env.rq.req(gid)
    data = env.rq.data(gid)
    other_call = env.calldata("changeThreshold", 3)
    forgeries = {
        "proposer": env.owners[2].address,
        "dataHash": bytes(Web3.keccak(other_call)),
        "ref": ref("other"),
        "expiresAt": proposal[PROPOSAL_FIELDS.index("expiresAt")] + 1,
    }
    for name, value in forgeries.items():
        forged = _altered(proposal, PROPOSAL_FIELDS, name, value)
        call_data = other_call if name == "dataHash" else data
        for fn, sender in (
            (v.approveProposal(forged, call_data), env.owners[1]),
            (v.executeProposal(forged, call_data), env.outsider),
            (v.executeProposalWithSignatures(forged, call_data, sigs), env.outsider),
            (v.rejectProposal(forged), env.owners[1]),
            (v.expireProposal(forged), env.outsider),
        ):
            with expect_revert("RequestMismatch", gid):
                env.send(fn, sender)
        assert v.proposalStatus(forged).call() in (CLOSED, NONE), name
    with expect_revert("DataMismatch", gid):
        env.send(v.approveProposal(proposal, other_call), env.owners[1])
    with expect_revert("DataMismatch", gid):
        env.send(v.approveProposal(proposal, b""), env.owners[1])
    assert env.vault.functions.threshold().call() == 2
    assert env.status(gid) == PENDING
    env.send(env.rq.approve(rid), env.owners[1])
    assert env.usdc_of(to) == 300 * USDC


def test_approval_without_funds_reverts_and_is_not_recorded(env: Env) -> None:
    to = fresh_address("broke")
    big = 10 * 10**18  # the vault holds 20 ETH; the request asks for 30
    rid = env.pay(ETH, to, 3 * big)[1]
    env.send(env.rq.approve(rid), env.owners[0])
    balance = env.eth_of(env.vault.address)
    with expect_revert("InsufficientBalance", ETH, balance, 3 * big):
        env.send(env.rq.approve(rid), env.owners[1])
    assert env.status(rid) == PENDING
    assert env.vault.functions.approvalCount(rid).call() == 1
    assert not env.vault.functions.hasApproved(rid, env.owners[1].address).call()
    with expect_revert("NotEnoughApprovals", rid, 1, 2):
        env.send(env.rq.execute(rid), env.outsider)
    # after a deposit, the later approval runs it
    env.send_eth(env.deployer, env.vault.address, 3 * big)
    receipt = env.send(env.rq.approve(rid), env.owners[1])
    assert env.event(receipt, "RequestExecuted")["requestId"] == rid
    assert env.eth_of(to) == 3 * big
    assert env.status(rid) == EXECUTED


def test_token_approval_without_funds_reverts_then_execute_runs_it_after_deposit(env: Env) -> None:
    to = fresh_address("broke-token")
    amount = VAULT_USDC + 1
    rid = env.escalate(amount, to)
    env.send(env.rq.approve(rid), env.owners[0])
    with expect_revert("InsufficientBalance", env.usdc.address, VAULT_USDC, amount):
        env.send(env.rq.approve(rid), env.owners[1])
    assert not env.vault.functions.hasApproved(rid, env.owners[1].address).call()
    # lower the threshold to 1 so the recorded approval meets it, then anyone can execute
    env.govern("changeThreshold", 1)
    with expect_revert("InsufficientBalance"):
        env.send(env.rq.execute(rid), env.outsider)
    env.send(env.usdc.functions.approve(env.vault.address, 1), env.deployer)
    env.send(env.vault.functions.deposit(env.usdc.address, 1), env.deployer)
    receipt = env.send(env.rq.execute(rid), env.outsider)
    assert env.event(receipt, "RequestExecuted")["executor"] == env.outsider.address
    assert env.usdc_of(to) == amount


def test_one_owner_rejection_makes_a_request_unexecutable(env: Env) -> None:
    rid = env.escalate()
    env.send(env.rq.approve(rid), env.owners[0])
    receipt = env.send(env.rq.reject(rid), env.owners[2])
    event = env.event(receipt, "RequestRejected")
    assert event == {
        "requestId": rid,
        "owner": env.owners[2].address,
        "rejections": 1,
        "closed": True,  # a payment request closes at one owner's no
    }
    assert env.status(rid) == REJECTED
    with expect_revert("RequestNotPending", rid, REJECTED):
        env.send(env.rq.approve(rid), env.owners[1])
    env.govern("changeThreshold", 1)
    with expect_revert("RequestNotPending", rid, REJECTED):
        env.send(env.rq.execute(rid), env.outsider)
    sigs = env.packed(rid, [env.owners[0], env.owners[1]])
    with expect_revert("RequestNotPending", rid, REJECTED):
        env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    assert env.vault.functions.getAgent(env.agent.address).call()[4] == 0


def test_executed_cancelled_and_expired_requests_never_execute(env: Env) -> None:
    executed = env.escalate()
    cancelled = env.escalate()
    expired = env.escalate()
    env.send(env.rq.approve(executed), env.owners[0])
    env.send(env.rq.approve(executed), env.owners[1])
    env.send(env.rq.cancel(cancelled), env.agent)
    env.send(env.rq.approve(expired), env.owners[0])
    env.chain.increase_time(env.vault.functions.requestExpiry().call() + 10)
    env.send(env.rq.expire(expired), env.outsider)
    spent = env.usdc_of(env.vault.address)
    for rid, status in ((executed, EXECUTED), (cancelled, CANCELLED), (expired, EXPIRED)):
        with expect_revert("RequestNotPending", rid, status):
            env.send(env.rq.approve(rid), env.owners[2])
        with expect_revert("RequestNotPending", rid, status):
            env.send(env.rq.execute(rid), env.outsider)
        with expect_revert("RequestNotPending", rid, status):
            env.send(env.rq.reject(rid), env.owners[2])
    assert env.usdc_of(env.vault.address) == spent


def test_a_removed_owners_approval_no_longer_counts(env: Env) -> None:
    rid = env.escalate()
    leaving = env.owners[2]
    env.send(env.rq.approve(rid), leaving)
    assert env.vault.functions.approvalCount(rid).call() == 1
    env.govern("removeOwner", leaving.address, 2)
    assert env.vault.functions.approvalCount(rid).call() == 0
    assert not env.vault.functions.hasApproved(rid, leaving.address).call()
    with expect_revert("NotOwner", leaving.address):
        env.send(env.rq.approve(rid), leaving)
    # re-added, the old approval (older owner epoch) still does not count ...
    env.govern("addOwner", leaving.address, 2)
    assert env.vault.functions.approvalCount(rid).call() == 0
    assert not env.vault.functions.hasApproved(rid, leaving.address).call()
    # ... and the same person can approve afresh
    env.send(env.rq.approve(rid), leaving)
    assert env.vault.functions.approvalCount(rid).call() == 1
    receipt = env.send(env.rq.approve(rid), env.owners[0])
    signers = env.event(receipt, "RequestExecuted")["signers"]
    assert sorted(signers) == sorted([leaving.address, env.owners[0].address])


def test_raising_the_threshold_needs_more_approvals_for_pending_requests(env: Env) -> None:
    rid = env.escalate()
    env.send(env.rq.approve(rid), env.owners[0])
    env.govern("changeThreshold", 3)
    receipt = env.send(env.rq.approve(rid), env.owners[1])
    assert env.event(receipt, "RequestApproved")["approvals"] == 2
    assert env.events(receipt, "RequestExecuted") == []
    assert env.status(rid) == PENDING
    with expect_revert("NotEnoughApprovals", rid, 2, 3):
        env.send(env.rq.execute(rid), env.outsider)
    receipt = env.send(env.rq.approve(rid), env.owners[2])
    signers = env.event(receipt, "RequestExecuted")["signers"]
    assert sorted(signers) == sorted(o.address for o in env.owners)


def test_anyone_can_execute_once_approvals_meet_a_lowered_threshold(env: Env) -> None:
    to = fresh_address("lowered")
    env.govern("changeThreshold", 3)
    rid = env.escalate(300 * USDC, to)
    env.send(env.rq.approve(rid), env.owners[0])
    env.send(env.rq.approve(rid), env.owners[1])
    assert env.status(rid) == PENDING
    # lower it back to 2 (a 3-of-3 governance request)
    _r, gid = env.propose("changeThreshold", 2)
    env.send(env.rq.approve(gid), env.owners[1])
    env.send(env.rq.approve(gid), env.owners[2])
    assert env.vault.functions.threshold().call() == 2
    assert env.status(rid) == PENDING  # lowering does not execute anything by itself
    receipt = env.send(env.rq.execute(rid), env.outsider)
    executed = env.event(receipt, "RequestExecuted")
    assert executed["executor"] == env.outsider.address
    assert sorted(executed["signers"]) == sorted(o.address for o in env.owners[:2])
    assert env.usdc_of(to) == 300 * USDC


def test_payment_requests_do_not_execute_while_the_vault_is_paused(env: Env) -> None:
    rid = env.escalate()
    env.send(env.rq.approve(rid), env.owners[0])
    env.send(env.vault.functions.pause(), env.owners[2])
    with expect_revert("VaultIsPaused"):
        env.send(env.rq.approve(rid), env.owners[1])
    assert env.status(rid) == PENDING
    # governance still runs while paused (that is how the vault is unpaused)
    env.govern("unpause")
    receipt = env.send(env.rq.approve(rid), env.owners[1])
    assert env.event(receipt, "RequestExecuted")["requestId"] == rid
