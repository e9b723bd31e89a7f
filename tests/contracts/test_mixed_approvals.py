"""Owners mixing on-chain approvals and off-chain signatures on one request (issue 15: "one
approves on-chain, one by signature"). A packed entry with v == 1 (Safe's "approved hash") names
an owner in ``r`` whose current on-chain approval of THIS request stands in for a signature; the
attacks below try to make such an entry count when it must not."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from agentwallet.protocol.signatures import OwnerSignature, pack_signatures
from tests.contracts.conftest import (
    DAY,
    EXECUTED,
    PENDING,
    USDC,
    Env,
    expect_revert,
    fresh_address,
    sorted_accounts,
)
from tests.contracts.test_calls import buy, market

ZERO = "0x0000000000000000000000000000000000000000"


def approved(owner: str) -> bytes:
    """The 65-byte entry of an owner who approved on-chain: r = owner, s = 0, v = 1."""
    return int(owner, 16).to_bytes(32, "big") + bytes(32) + b"\x01"


def mixed(env: Env, rid: int, on_chain: LocalAccount, signer: LocalAccount) -> bytes:
    """``on_chain``'s approved-hash entry and ``signer``'s signature, ascending by address."""
    (pair,) = env.signatures(rid, [signer])
    entries = [(on_chain.address, approved(on_chain.address)), (pair[0], pair[1])]
    return b"".join(e for _, e in sorted(entries, key=lambda e: int(e[0], 16)))


def test_one_approves_on_chain_one_signs_and_the_event_names_both(env: Env) -> None:
    to = fresh_address("mixed")
    rid = env.escalate(600 * USDC, to)
    a, b = env.owners[0], env.owners[2]
    env.send(env.rq.approve(rid), a)
    assert env.status(rid) == PENDING
    receipt = env.send(env.rq.executeWithSignatures(rid, mixed(env, rid, a, b)), env.outsider)
    assert env.usdc_of(to) == 600 * USDC
    assert env.status(rid) == EXECUTED
    signers = env.event(receipt, "RequestExecuted")["signers"]
    assert list(signers) == [s.address for s in sorted_accounts([a, b])]


def test_the_sdk_packer_writes_the_same_entry(env: Env) -> None:
    rid = env.escalate()
    a, b = env.owners[1], env.owners[2]
    env.send(env.rq.approve(rid), a)
    (pair,) = env.signatures(rid, [b])
    packed = pack_signatures([OwnerSignature(a.address, b"", approved=True), pair])
    assert packed == mixed(env, rid, a, b)
    env.send(env.rq.executeWithSignatures(rid, packed), env.outsider)
    assert env.status(rid) == EXECUTED


def test_an_owner_who_did_not_approve_does_not_count(env: Env) -> None:
    rid = env.escalate()
    a, b = env.owners[0], env.owners[1]
    with expect_revert("InvalidSignature", a.address):
        env.send(env.rq.executeWithSignatures(rid, mixed(env, rid, a, b)), env.outsider)
    # two approved-hash entries need two approvals: with one it still refuses
    env.send(env.rq.approve(rid), b)
    both = b"".join(approved(s.address) for s in sorted_accounts([a, b]))
    with expect_revert("InvalidSignature", a.address):
        env.send(env.rq.executeWithSignatures(rid, both), env.outsider)
    assert env.status(rid) == PENDING


def test_an_approval_of_another_request_does_not_count(env: Env) -> None:
    first, second = env.escalate(), env.escalate()
    a, b = env.owners[0], env.owners[1]
    env.send(env.rq.approve(first), a)
    with expect_revert("InvalidSignature", a.address):
        env.send(env.rq.executeWithSignatures(second, mixed(env, second, a, b)), env.outsider)
    assert env.status(second) == PENDING


def test_a_removed_or_re_added_owners_approval_does_not_count(env: Env) -> None:
    rid = env.escalate()
    leaving, other = env.owners[2], env.owners[0]
    env.send(env.rq.approve(rid), leaving)
    env.govern("removeOwner", leaving.address, 2)
    with expect_revert("NotAnOwner", leaving.address):
        env.send(env.rq.executeWithSignatures(rid, mixed(env, rid, leaving, other)), env.outsider)
    # re-added: the approval is from an older owner epoch
    env.govern("addOwner", leaving.address, 2)
    with expect_revert("InvalidSignature", leaving.address):
        env.send(env.rq.executeWithSignatures(rid, mixed(env, rid, leaving, other)), env.outsider)
    # approving afresh makes it count
    env.send(env.rq.approve(rid), leaving)
    env.send(env.rq.executeWithSignatures(rid, mixed(env, rid, leaving, other)), env.outsider)
    assert env.status(rid) == EXECUTED


def test_a_non_owner_or_a_dirty_address_is_refused(env: Env) -> None:
    rid = env.escalate()
    # the agent names itself (it cannot approve on-chain, and is no owner)
    with expect_revert("NotAnOwner", env.agent.address):
        env.send(
            env.rq.executeWithSignatures(rid, mixed(env, rid, env.agent, env.owners[0])),
            env.outsider,
        )
    a = env.owners[0]
    env.send(env.rq.approve(rid), a)
    (pair,) = env.signatures(rid, [env.owners[1]])
    dirty = (int(a.address, 16) | 1 << 200).to_bytes(32, "big") + bytes(32) + b"\x01"
    entries = sorted([(a.address, dirty), pair], key=lambda e: int(e[0], 16))
    with expect_revert("InvalidSignature", ZERO):
        env.send(env.rq.executeWithSignatures(rid, b"".join(e for _, e in entries)), env.outsider)


def test_duplicates_and_unsorted_entries_are_refused(env: Env) -> None:
    rid = env.escalate()
    a, b = sorted_accounts(env.owners[:2])
    env.send(env.rq.approve(rid), a)
    # the same owner as an approval and as a signature
    (sig_a,) = env.signatures(rid, [a])
    with expect_revert("SignersNotSorted", a.address, a.address):
        env.send(env.rq.executeWithSignatures(rid, approved(a.address) + sig_a[1]), env.outsider)
    with expect_revert("SignersNotSorted", a.address, a.address):
        env.send(env.rq.executeWithSignatures(rid, sig_a[1] + approved(a.address)), env.outsider)
    # descending order
    (sig_b,) = env.signatures(rid, [b])
    with expect_revert("SignersNotSorted", b.address, a.address):
        env.send(env.rq.executeWithSignatures(rid, sig_b[1] + approved(a.address)), env.outsider)
    env.send(env.rq.executeWithSignatures(rid, approved(a.address) + sig_b[1]), env.outsider)
    assert env.status(rid) == EXECUTED


def test_a_governance_proposal_executes_from_mixed_approvals(env: Env) -> None:
    newcomer = env.spare[2]
    _r, gid = env.propose("addOwner", newcomer.address, 2)  # the proposer, owner 0, approved
    # a rejection (it leaves a proposal open) is no approval
    env.send(env.rq.reject(gid), env.owners[1])
    with expect_revert("InvalidSignature", env.owners[1].address):
        env.send(
            env.rq.executeWithSignatures(gid, mixed(env, gid, env.owners[1], env.owners[2])),
            env.outsider,
        )
    receipt = env.send(
        env.rq.executeWithSignatures(gid, mixed(env, gid, env.owners[0], env.owners[2])),
        env.outsider,
    )
    assert env.event(receipt, "OwnerAdded") == {"owner": newcomer.address, "requestId": gid}
    assert env.vault.functions.isOwner(newcomer.address).call()


def test_a_call_request_executes_from_mixed_approvals(env: Env) -> None:
    shop, seller = market(env)
    _r, rid = buy(env, shop, 10 * USDC)
    a, b = env.owners[1], env.owners[2]
    env.send(env.rq.approve(rid), a)
    receipt = env.send(env.rq.executeWithSignatures(rid, mixed(env, rid, a, b)), env.outsider)
    assert env.event(receipt, "CallExecuted")["requestId"] == rid
    assert env.usdc_of(seller) == 10 * USDC


def test_paths_without_a_stored_request_refuse_approved_hash_entries(env: Env) -> None:
    a, b = sorted_accounts(env.owners[:2])
    # payWithSignatures: an owner's approval of some request must not authorise a payment
    rid = env.escalate()
    env.send(env.rq.approve(rid), a)
    to = fresh_address("unsigned")
    signed = (env.agent.address, env.usdc.address, to, USDC, b"\0" * 32, 77, env.now() + DAY)
    sig_b = env.sign_typed(env.typed_payment(signed), b)
    with expect_revert("InvalidSignature", a.address):
        env.send(env.vault.functions.payWithSignatures(signed, approved(a.address) + sig_b), b)
    assert env.usdc_of(to) == 0
    # executeGovernance: a signed batch has no request to approve
    data = [env.calldata("changeThreshold", 1)]
    deadline = env.now() + DAY
    sig_b = env.sign_typed(env.typed_governance(data, 5, deadline), b)
    fn = env.vault.functions.executeGovernance(data, 5, deadline, approved(a.address) + sig_b)
    with expect_revert("InvalidSignature", a.address):
        env.send(fn, env.outsider)
    assert env.vault.functions.threshold().call() == 2
