"""Off-chain EIP-712 approvals (executeWithSignatures, payWithSignatures), attacked the ways
signatures get abused. Signatures travel packed, Safe style: 65 bytes r|s|v per owner, v = 0 for
an ERC-1271 owner whose own signature sits after the 65-byte parts."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.crypto import keccak

from agentwallet.protocol.signatures import OwnerSignature, pack_signatures
from tests.contracts.conftest import (
    DAY,
    ETH,
    ETHER,
    EXECUTED,
    PENDING,
    REQUEST_EXPIRY,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    expect_revert,
    fresh_address,
    ref,
    sorted_accounts,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO = "0x0000000000000000000000000000000000000000"


def recovered(digest: bytes, signature: bytes) -> str:
    """The address an ECDSA signature recovers to over ``digest`` (what the vault sees)."""
    return str(Account._recover_hash(digest, signature=signature))


def contract_part(signer: str, offset: int) -> bytes:
    """The 65-byte static part of an ERC-1271 owner's signature: r = owner, s = offset, v = 0."""
    return int(signer, 16).to_bytes(32, "big") + offset.to_bytes(32, "big") + b"\x00"


def test_typed_data_signature_matches_the_vault_digest(env: Env) -> None:
    rid = env.escalate()
    digest = env.rq.requestDigest(rid).call()
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
    sigs = env.packed(rid, signers)
    assert len(sigs) == 2 * 65
    # anyone can submit them: here the agent itself does
    receipt = env.send(env.rq.executeWithSignatures(rid, sigs), env.agent)
    # the signers are named in RequestExecuted (RequestApproved is for on-chain approvals only)
    assert env.events(receipt, "RequestApproved") == []
    executed = env.event(receipt, "RequestExecuted")
    assert {**executed, "signers": list(executed["signers"])} == {
        "requestId": rid,
        "executor": env.agent.address,
        "signers": [s.address for s in signers],
    }
    assert env.usdc_of(to) == 700 * USDC
    assert env.status(rid) == EXECUTED


def test_digest_signed_with_unsafe_sign_hash_executes(env: Env) -> None:
    rid = env.escalate()
    digest = env.rq.requestDigest(rid).call()
    signers = sorted_accounts(env.owners[:2])
    sigs = pack_signatures(
        (s.address, bytes(s.unsafe_sign_hash(digest).signature)) for s in signers
    )
    env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    assert env.status(rid) == EXECUTED


def test_too_few_signatures_revert(env: Env) -> None:
    rid = env.escalate()
    sigs = env.packed(rid, [env.owners[0]])
    with expect_revert("NotEnoughSignatures", 1, 2):
        env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    with expect_revert("NotEnoughSignatures", 1, 2):  # one and a half signatures
        env.send(env.rq.executeWithSignatures(rid, sigs + sigs[:40]), env.outsider)
    with expect_revert("NotEnoughSignatures", 0, 2):
        env.send(env.rq.executeWithSignatures(rid, b""), env.outsider)
    # the same for a batch of governance calls signed off-chain
    with expect_revert("NotEnoughSignatures", 1, 2):
        env.govern_signed([("changeThreshold", (1,))], signers=[env.owners[0]])
    # an owner's on-chain approval does not make up for a missing signature
    env.send(env.rq.approve(rid), env.owners[1])
    with expect_revert("NotEnoughSignatures", 1, 2):
        env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    assert env.status(rid) == PENDING


def test_signatures_beyond_the_threshold_are_ignored(env: Env) -> None:
    rid = env.escalate()
    signers = sorted_accounts(env.owners)
    receipt = env.send(env.rq.executeWithSignatures(rid, env.packed(rid, signers)), env.outsider)
    executed = env.event(receipt, "RequestExecuted")
    assert list(executed["signers"]) == [s.address for s in signers[:2]]


def test_unsorted_signers_revert(env: Env) -> None:
    rid = env.escalate()
    pairs = env.signatures(rid, env.owners[:2])
    backwards = pairs[1][1] + pairs[0][1]
    with expect_revert("SignersNotSorted", pairs[1][0], pairs[0][0]):
        env.send(env.rq.executeWithSignatures(rid, backwards), env.outsider)


def test_one_owner_signing_twice_counts_once(env: Env) -> None:
    rid = env.escalate()
    ((signer, sig),) = env.signatures(rid, [env.owners[0]])
    with expect_revert("SignersNotSorted", signer, signer):
        env.send(env.rq.executeWithSignatures(rid, sig + sig), env.outsider)


def test_signature_by_a_non_owner_reverts(env: Env) -> None:
    rid = env.escalate()
    # the agent signs its own request as if it were an owner
    sigs = env.packed(rid, [env.owners[0], env.agent])
    with expect_revert("NotAnOwner", env.agent.address):
        env.send(env.rq.executeWithSignatures(rid, sigs), env.agent)


def test_eoa_owner_cannot_be_claimed_through_the_contract_signature_path(env: Env) -> None:
    """v = 0 names the signer outright (ERC-1271). Naming an EOA owner that way must fail: an
    EOA answers every call with empty success, which must not read as approval."""
    rid = env.escalate()
    first = sorted_accounts(env.owners[:2])
    forged = env.sign(rid, env.outsider)
    valid = env.sign(rid, first[0])
    packed = valid + contract_part(first[1].address, 130) + len(forged).to_bytes(32, "big") + forged
    with expect_revert("InvalidSignature", first[1].address):
        env.send(env.rq.executeWithSignatures(rid, packed), env.outsider)
    assert env.status(rid) == 1


def test_malformed_contract_signature_parts_are_rejected(env: Env) -> None:
    rid = env.escalate()
    owner = sorted_accounts(env.owners[:1])[0]
    valid = env.sign(rid, owner)
    signer = env.owners[1].address
    tail = (65).to_bytes(32, "big") + env.sign(rid, env.owners[1])
    cases = [
        ("offset into the 65-byte parts", contract_part(signer, 64) + tail, signer),
        ("offset past the end", contract_part(signer, 10_000) + tail, signer),
        ("offset at the end", contract_part(signer, 130 + len(tail)) + tail, signer),
        (
            "length past the end",
            contract_part(signer, 130) + (1 << 200).to_bytes(32, "big") + tail[32:],
            signer,
        ),
        (
            "dirty bits above the address",
            (int(signer, 16) | (1 << 200)).to_bytes(32, "big")
            + (130).to_bytes(32, "big")
            + b"\x00"
            + tail,
            ZERO,
        ),
    ]
    for label, second, blamed in cases:
        packed = valid + second if int(owner.address, 16) < int(signer, 16) else second + valid
        with expect_revert("InvalidSignature", blamed):
            env.send(env.rq.executeWithSignatures(rid, packed), env.outsider)
        assert env.status(rid) == 1, label


def test_malleable_high_s_signature_is_rejected(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, env.owners[:2])
    good = sigs[0][1]
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    # the flipped signature recovers the same owner, but only low-s signatures are accepted
    digest = env.rq.requestDigest(rid).call()
    assert recovered(digest, flipped) == sigs[0][0]
    with expect_revert("InvalidSignature", ZERO):
        env.send(env.rq.executeWithSignatures(rid, flipped + sigs[1][1]), env.outsider)
    packed = pack_signatures(sigs)
    env.send(env.rq.executeWithSignatures(rid, packed), env.outsider)


def test_signatures_cannot_be_replayed_after_execution(env: Env) -> None:
    rid = env.escalate()
    sigs = env.packed(rid, env.owners[1:])
    env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    before = env.usdc_of(env.vault.address)
    with expect_revert("RequestNotPending", rid, EXECUTED):
        env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    assert env.usdc_of(env.vault.address) == before


def test_signature_with_another_chain_id_is_rejected(env: Env) -> None:
    rid = env.escalate()
    sigs = env.signatures(rid, env.owners[:2])
    wrong = env.sign(rid, env.owners[2], chain_id=env.chain.chain_id + 1)
    # over this chain's digest the signature recovers some unrelated address, not owner 3
    stranger = recovered(env.rq.requestDigest(rid).call(), wrong)
    assert stranger != env.owners[2].address
    with expect_revert("NotAnOwner", stranger):
        env.send(env.rq.executeWithSignatures(rid, wrong + sigs[0][1]), env.outsider)


def test_signatures_for_one_vault_are_rejected_by_another_with_the_same_owners(env: Env) -> None:
    """Same owners, same request id, same agent/token/to/amount/ref/expiresAt: only the
    EIP-712 domain (verifyingContract) differs, and that alone must stop the replay."""
    other = env.create_vault(
        [o.address for o in env.owners], 2, expiry=REQUEST_EXPIRY - 1, salt=b"other"
    )
    # three governance requests as in the main vault, so request ids line up, and the same
    # tUSDC limits, so the escalation reasons (part of the request) are the same too
    env.govern("addAgent", env.agent.address, 0, 0, False, vault=other)
    env.govern(
        "setLimits", env.agent.address, env.usdc.address, USDC_MAX, USDC_ALLOWANCE, DAY, vault=other
    )
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
    sigs = env.packed(rid, env.owners[:2])
    stranger = recovered(env.rq_of(other).requestDigest(rid).call(), sigs[:65])
    with expect_revert("NotAnOwner", stranger):
        env.send(env.rq_of(other).executeWithSignatures(rid, sigs), env.outsider)
    assert env.status(rid, vault=other) == PENDING
    # the vault they were made for accepts them; the other one needs its own
    env.send(env.rq.executeWithSignatures(rid, sigs), env.outsider)
    own = env.packed(rid, env.owners[:2], vault=other)
    env.send(env.rq_of(other).executeWithSignatures(rid, own), env.outsider)
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
    owner_sig = OwnerSignature(env.owners[0].address, env.sign(rid, env.owners[0]))
    bad = pack_signatures([owner_sig, OwnerSignature(wallet.address, wrong, contract=True)])
    with expect_revert("InvalidSignature", wallet.address):
        env.send(env.rq.executeWithSignatures(rid, bad), env.outsider)
    good = pack_signatures([owner_sig, OwnerSignature(wallet.address, wallet_sig, contract=True)])
    receipt = env.send(env.rq.executeWithSignatures(rid, good), env.outsider)
    assert wallet.address in env.event(receipt, "RequestExecuted")["signers"]
    assert env.usdc_of(to) == 250 * USDC


def test_contract_signature_naming_a_non_owner_is_refused_before_any_call(env: Env) -> None:
    """v = 0 names the signer; a contract that is not an owner is refused by the owner check,
    before the vault would ever call its isValidSignature."""
    wallet = env.deploy("ERC1271Owner", env.outsider.address)
    rid = env.escalate()
    wallet_sig = env.sign(rid, env.outsider)  # valid for the wallet, which is no owner
    owner_sig = OwnerSignature(env.owners[0].address, env.sign(rid, env.owners[0]))
    packed = pack_signatures([owner_sig, OwnerSignature(wallet.address, wallet_sig, contract=True)])
    with expect_revert("NotAnOwner", wallet.address):
        env.send(env.rq.executeWithSignatures(rid, packed), env.outsider)
    assert env.status(rid) == 1


def test_governance_request_can_execute_with_signatures(env: Env) -> None:
    new_owner = env.spare[2]
    _r, gid = env.propose("addOwner", new_owner.address, 2)
    sigs = env.packed(gid, [env.owners[1], env.owners[2]])
    receipt = env.send(env.rq.executeWithSignatures(gid, sigs), env.outsider)
    assert env.event(receipt, "OwnerAdded") == {"owner": new_owner.address, "requestId": gid}
    signers = sorted_accounts([env.owners[1], env.owners[2]])
    assert list(env.event(receipt, "RequestExecuted")["signers"]) == [s.address for s in signers]
    assert env.vault.functions.isOwner(new_owner.address).call()


def test_clone_eip712_domain_names_the_clone(env: Env) -> None:
    domain = env.vault.functions.eip712Domain().call()
    assert tuple(domain[1:5]) == ("AgentVault", "1", env.chain.chain_id, env.vault.address)


# ---------------------------------------------------------------------------- payWithSignatures


def signed_payment_message(
    env: Env, token: str, to: str, amount: int, pay_ref: bytes, nonce: int, deadline: int
) -> dict[str, object]:
    """The EIP-712 SignedPayment message written out independently of the SDK."""
    fields = [
        ("agent", "address"),
        ("token", "address"),
        ("to", "address"),
        ("amount", "uint256"),
        ("ref", "bytes32"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ]
    values = [env.agent.address, token, to, amount, pay_ref, nonce, deadline]
    return env.typed_message(
        "SignedPayment",
        fields,
        {name: value for (name, _), value in zip(fields, values, strict=True)},
    )


def payment(
    env: Env, token: str, to: str, amount: int, pay_ref: bytes, nonce: int, deadline: int
) -> tuple[object, ...]:
    """The SignedPayment tuple payWithSignatures takes (agent = the env's agent)."""
    return (env.agent.address, token, to, amount, pay_ref, nonce, deadline)


def signed_payment(env: Env, signed: tuple[object, ...], signers: list) -> bytes:
    _agent, token, to, amount, pay_ref, nonce, deadline = signed
    message = encode_typed_data(
        full_message=signed_payment_message(env, token, to, amount, pay_ref, nonce, deadline)
    )
    return pack_signatures((s.address, bytes(s.sign_message(message).signature)) for s in signers)


def space(env: Env) -> str:
    return str(env.vault.functions.paymentNonceSpace().call())


def nonce_used(env: Env, nonce: int) -> bool:
    return bool(env.vault.functions.isNonceUsed(space(env), nonce).call())


def test_signed_payment_digest_matches_eip712_typed_data(env: Env) -> None:
    to = fresh_address("digest")
    deadline = env.now() + 3600
    signed = payment(env, ETH, to, ETHER, ref("d"), 12345, deadline)
    digest = env.vault.functions.signedPaymentDigest(signed).call()
    message = signed_payment_message(env, ETH, to, ETHER, ref("d"), 12345, deadline)
    assert _hash_eip191_message(encode_typed_data(full_message=message)) == digest
    assert message == env.typed_payment(signed)  # the shared helper signs the same message


def test_owners_signed_payment_pays_once_and_names_the_signers(env: Env) -> None:
    """Rule change: nonces are unordered (any unused nonce of the owners' payment space) and
    there is no signedPaymentNonce counter; a replay reverts NonceAlreadyUsed instead of
    recovering strangers."""
    to = fresh_address("signed-pay")
    deadline = env.now() + 3600
    signers = sorted_accounts(env.owners[:2])
    nonce = 7
    signed = payment(env, ETH, to, 3 * ETHER, ref("sp"), nonce, deadline)
    sigs = signed_payment(env, signed, signers)
    assert not nonce_used(env, nonce)
    call = env.vault.functions.payWithSignatures(signed, sigs)
    receipt = env.send(call, env.outsider)  # a relayer: anyone may send it
    assert env.eth_of(to) == 3 * ETHER
    event = env.event(receipt, "SignedPaymentExecuted")
    assert event["agent"] == env.agent.address
    assert (event["token"], event["to"], event["amount"]) == (ETH, to, 3 * ETHER)
    assert event["ref"] == ref("sp")
    assert list(event["signers"]) == [s.address for s in signers]
    assert nonce_used(env, nonce)
    assert not nonce_used(env, nonce - 1) and not nonce_used(env, nonce + 1)
    # the same signatures again: the nonce is spent
    with expect_revert("NonceAlreadyUsed", space(env), nonce):
        env.send(call, env.outsider)
    # ... and signed again by the other owners, the same nonce still cannot run
    again = signed_payment(env, signed, sorted_accounts(env.owners[1:]))
    with expect_revert("NonceAlreadyUsed", space(env), nonce):
        env.send(env.vault.functions.payWithSignatures(signed, again), env.outsider)
    assert env.eth_of(to) == 3 * ETHER


def test_payments_signed_in_parallel_both_execute_in_either_order(env: Env) -> None:
    """Two payments signed at the same time with different nonces (even far apart, in different
    bitmap words) never cancel each other, whichever is submitted first."""
    signers = sorted_accounts(env.owners[1:])
    deadline = env.now() + 3600
    nonces = (3, (5 << 8) + 200)
    for order in ((0, 1), (1, 0)):
        snapshot = env.chain.snapshot()
        tos = [fresh_address(f"parallel-{i}") for i in range(2)]
        signed = [
            payment(env, env.usdc.address, tos[i], (i + 1) * 10 * USDC, ref(f"p{i}"), n, deadline)
            for i, n in enumerate(nonces)
        ]
        sigs = [signed_payment(env, p, signers) for p in signed]  # both signed before either runs
        for i in order:
            receipt = env.send(
                env.vault.functions.payWithSignatures(signed[i], sigs[i]), env.outsider
            )
            assert env.event(receipt, "SignedPaymentExecuted")["to"] == tos[i]
            assert nonce_used(env, nonces[i])
        assert [env.usdc_of(t) for t in tos] == [10 * USDC, 20 * USDC]
        assert all(nonce_used(env, n) for n in nonces)
        for i in range(2):
            with expect_revert("NonceAlreadyUsed", space(env), nonces[i]):
                env.send(env.vault.functions.payWithSignatures(signed[i], sigs[i]), env.outsider)
        env.chain.revert(snapshot)


def test_one_owner_can_cancel_a_signed_payment_before_it_runs(env: Env) -> None:
    to = fresh_address("cancelled-signed")
    nonce = (1 << 8) + 9
    signed = payment(env, ETH, to, ETHER, ref("x"), nonce, env.now() + 3600)
    sigs = signed_payment(env, signed, sorted_accounts(env.owners[:2]))
    with expect_revert("NotNonceAuthority", space(env), env.agent.address):
        env.send(env.vault.functions.invalidateNonces(space(env), 1, 1 << 9), env.agent)
    receipt = env.send(env.vault.functions.invalidateNonces(space(env), 1, 1 << 9), env.owners[2])
    assert env.event(receipt, "NoncesInvalidated") == {
        "space": space(env),
        "wordPos": 1,
        "mask": 1 << 9,
        "by": env.owners[2].address,
    }
    assert nonce_used(env, nonce)
    with expect_revert("NonceAlreadyUsed", space(env), nonce):
        env.send(env.vault.functions.payWithSignatures(signed, sigs), env.outsider)
    assert env.eth_of(to) == 0


def test_signed_payment_in_an_erc20_by_a_contract_owner(env: Env) -> None:
    key_holder = env.spare[1]
    wallet = env.deploy("ERC1271Owner", key_holder.address)
    env.govern("addOwner", wallet.address, 2)
    to = fresh_address("signed-usdc")
    deadline = env.now() + 3600
    nonce = 2**256 - 1  # any nonce will do, the largest too
    message = encode_typed_data(
        full_message=signed_payment_message(
            env, env.usdc.address, to, 700 * USDC, ref("u"), nonce, deadline
        )
    )
    sigs = pack_signatures(
        [
            OwnerSignature(
                env.owners[0].address, bytes(env.owners[0].sign_message(message).signature)
            ),
            OwnerSignature(
                wallet.address, bytes(key_holder.sign_message(message).signature), contract=True
            ),
        ]
    )
    signed = payment(env, env.usdc.address, to, 700 * USDC, ref("u"), nonce, deadline)
    receipt = env.send(env.vault.functions.payWithSignatures(signed, sigs), env.outsider)
    assert env.usdc_of(to) == 700 * USDC
    assert wallet.address in env.event(receipt, "SignedPaymentExecuted")["signers"]
    assert nonce_used(env, nonce)


def test_signed_payment_refuses_what_the_owners_did_not_sign(env: Env) -> None:
    to = fresh_address("tampered")
    deadline = env.now() + 3600
    signers = sorted_accounts(env.owners[:2])
    signed = payment(env, ETH, to, ETHER, ref("t"), 0, deadline)
    sigs = signed_payment(env, signed, signers)
    tampered = {
        "amount raised by the relayer": payment(env, ETH, to, 2 * ETHER, ref("t"), 0, deadline),
        "recipient changed": payment(env, ETH, fresh_address("t2"), ETHER, ref("t"), 0, deadline),
        "token changed": payment(env, env.usdc.address, to, ETHER, ref("t"), 0, deadline),
        "nonce changed": payment(env, ETH, to, ETHER, ref("t"), 1, deadline),
        "deadline extended": payment(env, ETH, to, ETHER, ref("t"), 0, deadline + 1),
        "agent changed": (env.outsider.address, *signed[1:]),
    }
    for label, forged in tampered.items():
        digest = env.vault.functions.signedPaymentDigest(forged).call()
        stranger = recovered(digest, sigs[:65])
        with expect_revert("NotAnOwner", stranger):
            env.send(env.vault.functions.payWithSignatures(forged, sigs), env.outsider)
        assert env.eth_of(to) == 0, label
    assert not nonce_used(env, 0) and not nonce_used(env, 1)


def test_signed_payment_checks_deadline_pause_threshold_and_inputs(env: Env) -> None:
    to = fresh_address("checks")
    signers = sorted_accounts(env.owners[:2])
    pay = env.vault.functions.payWithSignatures
    late = env.now() + 10
    signed = payment(env, ETH, to, ETHER, ref("c"), 0, late)
    sigs = signed_payment(env, signed, signers)
    env.chain.increase_time(11)
    with expect_revert("SignatureExpired", late):
        env.send(pay(signed, sigs), env.outsider)
    deadline = env.now() + 3600
    signed = payment(env, ETH, to, ETHER, ref("c"), 0, deadline)
    one = signed_payment(env, signed, signers[:1])
    with expect_revert("NotEnoughSignatures", 1, 2):
        env.send(pay(signed, one), env.outsider)
    with expect_revert("NotEnoughSignatures", 0, 2):
        env.send(pay(signed, b""), env.outsider)
    zero_to = payment(env, ETH, ZERO, ETHER, ref("c"), 0, deadline)
    with expect_revert("ZeroAddress"):
        env.send(pay(zero_to, signed_payment(env, zero_to, signers)), env.outsider)
    zero_amount = payment(env, ETH, to, 0, ref("c"), 0, deadline)
    with expect_revert("ZeroAmount"):
        env.send(pay(zero_amount, signed_payment(env, zero_amount, signers)), env.outsider)
    huge = env.eth_of(env.vault.address) + 1
    too_much = payment(env, ETH, to, huge, ref("c"), 0, deadline)
    with expect_revert("InsufficientBalance", ETH, huge - 1, huge):
        env.send(pay(too_much, signed_payment(env, too_much, signers)), env.outsider)
    sigs = signed_payment(env, signed, signers)
    env.send(env.vault.functions.pause(), env.owners[2])
    with expect_revert("VaultIsPaused"):
        env.send(pay(signed, sigs), env.outsider)
    assert env.eth_of(to) == 0
    assert not nonce_used(env, 0)  # nothing that reverted spent the nonce


# ------------------------------------------------- the owners' words mirror threshold and pause

_OWNERS_SLOT = int("e79e714abe350f418da5842700fa6185b1c082738decf0346d4aa06561fc6200", 16) + 1


def owner_word(env: Env, owner: str) -> int:
    """The raw word of ``owner`` in the vault's `owners` mapping (layout member 1)."""
    key = keccak(bytes.fromhex(owner[2:].rjust(64, "0")) + _OWNERS_SLOT.to_bytes(32, "big"))
    return int.from_bytes(env.w3.eth.get_storage_at(env.vault.address, key), "big")


def assert_mirrors(env: Env) -> None:
    """Every current owner's word carries the config word's threshold (bits 224-231) and pause
    flag (232-239), and nothing else above its epoch."""
    threshold = env.vault.functions.threshold().call()
    paused = int(env.vault.functions.paused().call())
    for owner in env.vault.functions.getOwners().call():
        word = owner_word(env, owner)
        assert word >> 224 == threshold | paused << 8, owner


def test_owner_words_mirror_threshold_and_pause_through_every_change(env: Env) -> None:
    """payWithSignatures reads the threshold and the pause from the first signer's owner word
    (not the config word): after each change of either, or of the owner list, every owner's
    mirror matches the config, and a payment is held to the config as it is now."""
    to = fresh_address("mirror")
    pay = env.vault.functions.payWithSignatures
    deadline = env.now() + DAY
    nonce = iter(range(1000, 2000))

    def signed(signers: list) -> tuple[tuple[object, ...], bytes]:
        p = payment(env, ETH, to, 1, ref("m"), next(nonce), deadline)
        return p, signed_payment(env, p, sorted_accounts(signers))

    assert_mirrors(env)
    o0, o1, o2 = env.owners[:3]
    # raised to 3 of 3: two signatures of any two owners no longer pay
    env.govern("changeThreshold", 3)
    assert_mirrors(env)
    for pair in ([o0, o1], [o1, o2], [o0, o2]):
        p, sigs = signed(pair)
        with expect_revert("NotEnoughSignatures", 2, 3):
            env.send(pay(p, sigs), env.outsider)
    p, sigs = signed([o0, o1, o2])
    env.send(pay(p, sigs), env.outsider)
    # lowered to 1: one signature of any owner pays
    env.govern_signed([("changeThreshold", (1,))], sorted_accounts([o0, o1, o2]), nonce=1)
    assert_mirrors(env)
    for owner in (o0, o1, o2):
        p, sigs = signed([owner])
        env.send(pay(p, sigs), env.outsider)
    # one owner pauses: no owner's signature pays, whoever signs first
    env.send(env.vault.functions.pause(), o2)
    assert_mirrors(env)
    for owner in (o0, o1, o2):
        p, sigs = signed([owner])
        with expect_revert("VaultIsPaused"):
            env.send(pay(p, sigs), env.outsider)
    env.govern_signed([("unpause", ())], [o0], nonce=2)
    assert_mirrors(env)
    # swap in a new owner: it carries the mirror, the swapped-out owner signs nothing
    new = env.spare[0]
    env.govern_signed([("swapOwner", (o2.address, new.address))], [o0], nonce=3)
    assert_mirrors(env)
    assert owner_word(env, o2.address) == 0
    p, sigs = signed([new])
    env.send(pay(p, sigs), env.outsider)
    p, sigs = signed([o2])
    with expect_revert("NotAnOwner", o2.address):
        env.send(pay(p, sigs), env.outsider)
    # add an owner with threshold 2, then remove one with threshold 1
    added = env.spare[1]
    env.govern_signed([("addOwner", (added.address, 2))], [o0], nonce=4)
    assert_mirrors(env)
    p, sigs = signed([added])
    with expect_revert("NotEnoughSignatures", 1, 2):
        env.send(pay(p, sigs), env.outsider)
    p, sigs = signed([added, o1])
    env.send(pay(p, sigs), env.outsider)
    env.govern_signed([("removeOwner", (o1.address, 1))], sorted_accounts([o0, new]), nonce=5)
    assert_mirrors(env)
    p, sigs = signed([added])
    env.send(pay(p, sigs), env.outsider)
    assert env.eth_of(to) == 7


def test_approvals_keep_counting_when_the_owners_mirror_is_rewritten(env: Env) -> None:
    """The mirror shares the owner word with the epoch an approval is recorded under: rewriting
    it (pause, unpause, a threshold change) must not void on-chain approvals, and an owner's
    re-addition (a new epoch) still does."""
    rid = env.escalate()
    env.send(env.rq.approve(rid), env.owners[0])
    assert env.vault.functions.hasApproved(rid, env.owners[0].address).call()
    env.send(env.vault.functions.pause(), env.owners[2])
    env.govern_signed([("unpause", ())], nonce=7)
    assert env.vault.functions.hasApproved(rid, env.owners[0].address).call()
    assert env.vault.functions.approvalCount(rid).call() == 1
    assert_mirrors(env)
    # owner 1's approval reaches the threshold and executes
    receipt = env.send(env.rq.approve(rid), env.owners[1])
    assert env.event(receipt, "RequestExecuted")["requestId"] == rid
    assert env.status(rid) == EXECUTED
