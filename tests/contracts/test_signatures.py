"""Off-chain EIP-712 approvals (executeWithSignatures), attacked the ways signatures get abused."""

from __future__ import annotations

from eth_account.messages import _hash_eip191_message, encode_typed_data

from tests.contracts.conftest import (
    EXECUTED,
    REQUEST_EXPIRY,
    USDC,
    Env,
    expect_revert,
    fresh_address,
    ref,
    sorted_accounts,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_typed_data_signature_matches_the_vault_digest(env: Env) -> None:
    rid = env.escalate()
    digest = env.vault.functions.requestDigest(rid).call()
    message = encode_typed_data(full_message=env.typed_request(rid))
    assert _hash_eip191_message(message) == digest
    owner = env.owners[0]
    by_typed_data = owner.sign_message(message).signature
    by_digest = owner.unsafe_sign_hash(digest).signature
    assert by_typed_data == by_digest  # RFC 6979: same key, same hash, same signature


def test_two_sorted_owner_signatures_execute(env: Env) -> None:
    to = fresh_address("signed")
    rid = env.escalate(700 * USDC, to)
    signers = sorted_accounts([env.owners[2], env.owners[0]])
    sigs = env.signatures(rid, signers)
    # anyone can submit them: here the agent itself does
    receipt = env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.agent)
    approvals = env.events(receipt, "RequestApproved")
    assert [(a["owner"], a["approvals"], a["viaSignature"]) for a in approvals] == [
        (signers[0].address, 1, True),
        (signers[1].address, 2, True),
    ]
    executed = env.event(receipt, "RequestExecuted")
    assert (executed["executor"], executed["approvals"]) == (env.agent.address, 2)
    assert env.usdc_of(to) == 700 * USDC
    assert env.status(rid) == EXECUTED


def test_digest_signed_with_unsafe_sign_hash_executes(env: Env) -> None:
    rid = env.escalate()
    digest = env.vault.functions.requestDigest(rid).call()
    signers = sorted_accounts(env.owners[:2])
    sigs = [(s.address, bytes(s.unsafe_sign_hash(digest).signature)) for s in signers]
    env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.outsider)
    assert env.status(rid) == EXECUTED


def test_too_few_signatures_revert(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, [env.owners[0]])
    with expect_revert("NotEnoughApprovals", rid, 1, 2):
        env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.outsider)


def test_unsorted_signers_revert(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, env.owners[:2])
    reversed_sigs = list(reversed(sigs))
    with expect_revert("SignersNotSorted", reversed_sigs[0][0], reversed_sigs[1][0]):
        env.send(env.vault.functions.executeWithSignatures(rid, reversed_sigs), env.outsider)


def test_one_owner_signing_twice_counts_once(env: Env) -> None:
    rid = env.escalate()
    (pair,) = env.signatures(rid, [env.owners[0]])
    with expect_revert("SignersNotSorted", pair[0], pair[0]):
        env.send(env.vault.functions.executeWithSignatures(rid, [pair, pair]), env.outsider)


def test_signature_by_a_non_owner_reverts(env: Env) -> None:
    rid = env.escalate()
    # the agent signs its own request as if it were an owner
    sigs = env.signatures(rid, [env.owners[0], env.agent])
    with expect_revert("NotAnOwner", env.agent.address):
        env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.agent)


def test_signature_claimed_for_another_owner_reverts(env: Env) -> None:
    rid = env.escalate()
    # the outsider's signature presented under owner 1's name
    forged = env.sign(rid, env.outsider)
    pairs = sorted(
        [(env.owners[0].address, env.sign(rid, env.owners[0])), (env.owners[1].address, forged)],
        key=lambda p: int(p[0], 16),
    )
    with expect_revert("InvalidSignature", env.owners[1].address):
        env.send(env.vault.functions.executeWithSignatures(rid, pairs), env.outsider)


def test_malleable_high_s_signature_is_rejected(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, env.owners[:2])
    signer, good = sigs[0]
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with expect_revert("InvalidSignature", signer):
        env.send(
            env.vault.functions.executeWithSignatures(rid, [(signer, flipped), sigs[1]]),
            env.outsider,
        )
    env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.outsider)  # originals work


def test_signatures_cannot_be_replayed_after_execution(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, env.owners[1:])
    env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.outsider)
    before = env.usdc_of(env.vault.address)
    with expect_revert("RequestNotPending", rid, EXECUTED):
        env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.outsider)
    assert env.usdc_of(env.vault.address) == before


def test_signature_with_another_chain_id_is_rejected(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, env.owners[:2])
    wrong = env.sign(rid, env.owners[2], chain_id=env.chain.chain_id + 1)
    pairs = sorted([sigs[0], (env.owners[2].address, wrong)], key=lambda p: int(p[0], 16))
    with expect_revert("InvalidSignature", env.owners[2].address):
        env.send(env.vault.functions.executeWithSignatures(rid, pairs), env.outsider)


def test_signatures_for_one_vault_are_rejected_by_another_with_the_same_owners(env: Env) -> None:
    """Same owners, same request id, same agent/token/to/amount/ref/expiresAt: only the
    EIP-712 domain (verifyingContract) differs, and that alone must stop the replay."""
    other = env.create_vault(
        [o.address for o in env.owners], 2, expiry=REQUEST_EXPIRY - 1, salt=b"other"
    )
    # the same three governance requests as the main vault, so request ids line up
    env.govern("addAgent", env.agent.address, 0, 0, False, vault=other)
    env.govern("setMaxOpenRequests", 5, vault=other)
    env.govern("setRequestExpiry", REQUEST_EXPIRY - 1, vault=other)
    env.send(env.usdc.functions.mint(other.address, 1_000 * USDC), env.deployer)
    to = fresh_address("replayed")
    t = env.now() + 50
    env.set_next_timestamp(t)
    _r, rid = env.pay(env.usdc.address, to, 500 * USDC, ref("same"), gas=1_500_000)
    env.set_next_timestamp(t + 1)
    _r, other_rid = env.pay(
        env.usdc.address, to, 500 * USDC, ref("same"), vault=other, gas=1_500_000
    )
    assert rid == other_rid
    mine = env.typed_request(rid)
    theirs = env.typed_request(rid, vault=other)
    assert mine["message"] == theirs["message"]
    assert mine["domain"]["verifyingContract"] != theirs["domain"]["verifyingContract"]
    sigs = env.signatures(rid, env.owners[:2])
    with expect_revert("InvalidSignature", sigs[0][0]):
        env.send(other.functions.executeWithSignatures(rid, sigs), env.outsider)
    assert other.functions.getRequest(rid).call()[1] == 1  # still pending
    # the vault they were made for accepts them; the other one needs its own
    env.send(env.vault.functions.executeWithSignatures(rid, sigs), env.outsider)
    own = env.signatures(rid, env.owners[:2], vault=other)
    env.send(other.functions.executeWithSignatures(rid, own), env.outsider)
    assert env.usdc_of(to) == 1_000 * USDC


def test_erc1271_contract_owner_can_sign(env: Env) -> None:
    key_holder = env.spare[1]
    wallet = env.deploy("ERC1271Owner", key_holder.address)
    env.govern("addOwner", wallet.address, 2)
    assert env.vault.functions.isOwner(wallet.address).call()
    to = fresh_address("1271")
    rid = env.escalate(250 * USDC, to)
    wallet_sig = env.sign(rid, key_holder)  # the EOA behind the wallet signs the digest
    # a wrong signature (another key) is rejected for the contract owner
    wrong = env.sign(rid, env.outsider)
    owner_pair = (env.owners[0].address, env.sign(rid, env.owners[0]))
    bad = sorted([owner_pair, (wallet.address, wrong)], key=lambda p: int(p[0], 16))
    with expect_revert("InvalidSignature", wallet.address):
        env.send(env.vault.functions.executeWithSignatures(rid, bad), env.outsider)
    good = sorted([owner_pair, (wallet.address, wallet_sig)], key=lambda p: int(p[0], 16))
    receipt = env.send(env.vault.functions.executeWithSignatures(rid, good), env.outsider)
    assert wallet.address in [a["owner"] for a in env.events(receipt, "RequestApproved")]
    assert env.usdc_of(to) == 250 * USDC


def test_governance_request_can_execute_with_signatures(env: Env) -> None:
    new_owner = env.spare[2]
    _r, gid = env.propose("addOwner", new_owner.address, 2)
    sigs = env.signatures(gid, [env.owners[1], env.owners[2]])
    receipt = env.send(env.vault.functions.executeWithSignatures(gid, sigs), env.outsider)
    assert env.event(receipt, "OwnerAdded") == {"owner": new_owner.address, "requestId": gid}
    assert env.vault.functions.isOwner(new_owner.address).call()


def test_clone_eip712_domain_names_the_clone(env: Env) -> None:
    domain = env.vault.functions.eip712Domain().call()
    assert tuple(domain[1:5]) == ("AgentVault", "1", env.chain.chain_id, env.vault.address)
