"""Agent-signed intents through the SDK: signing, submitting as anyone, the checks a submitter
runs before spending gas (as the attacks they stop), unordered nonces, exactly once per ref,
ERC-7710 redemption, payment state by ref, and key rotation.

Who gains if a rule breaks: a relayer (changes what it submits, takes a bigger fee, replays),
another vault or chain (replays a signature), a revoked or rotated key (keeps spending)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from agentwallet import intents
from agentwallet.agent import AgentWallet, Escalated, Paid
from agentwallet.errors import (
    AmountError,
    IntentRefusedError,
    InvalidNewKeyError,
    NotRequestAgentError,
    RefCancelledError,
    RefReusedError,
)
from agentwallet.protocol.constants import AgentStatus
from agentwallet.protocol.models import SignedIntent
from agentwallet.protocol.refs import to_ref
from agentwallet.vault import Vault

from .conftest import USDC, World


def _wallet(world: World, journal: Path | None = None) -> AgentWallet:
    return AgentWallet(world.chain, world.vault, world.agent, journal_dir=journal)


def _refused(world: World, signed: SignedIntent, code: str, fee: int = 0) -> str:
    """The submitter's checks refuse ``signed`` with ``code`` and nothing is sent."""
    before = world.chain.nonce(world.outsider.address)
    with pytest.raises(IntentRefusedError) as info:
        intents.submit_intent(world.vault, world.outsider, signed, fee)
    assert info.value.code == code, info.value
    assert world.chain.nonce(world.outsider.address) == before
    return str(info.value)


def test_an_intent_is_paid_by_whoever_submits_it_and_the_agent_spends_no_gas(
    world: World,
) -> None:
    agent = _wallet(world)
    signed = agent.sign_intent(
        world.payee, 20 * USDC, "tUSDC", ref="inv-i1", max_fee=USDC, exactly_once=True
    )
    portable = SignedIntent.from_json(signed.to_json())
    assert portable == signed
    agent_nonce = world.chain.nonce(world.agent.address)
    before = world.vault.balance("tUSDC")
    outcome = intents.submit_intent(world.vault, world.outsider, portable, fee=USDC // 2)
    assert isinstance(outcome, Paid) and outcome.ref == "inv-i1"
    assert (outcome.to, outcome.amount) == (world.payee, 20 * USDC)
    assert world.vault.balance("tUSDC") == before - 20 * USDC - USDC // 2  # the fee too
    assert world.chain.nonce(world.agent.address) == agent_nonce
    assert signed.nonce == intents.ref_nonce(to_ref("inv-i1"))
    state = agent.payment_state("inv-i1")
    assert (state.state, state.guarantee, state.outcome) == ("paid", "chain", outcome)


def test_an_intent_outside_the_limits_becomes_the_agents_request(world: World) -> None:
    agent = _wallet(world)
    signed = agent.sign_intent(world.payee, 300 * USDC, "tUSDC", ref="big-intent")
    outcome = intents.submit_intent(world.vault, world.outsider, signed)
    assert isinstance(outcome, Escalated) and "over per-payment limit" in outcome.reasons
    request = world.vault.request(outcome.request_id)
    assert request.agent == world.agent.address and request.status == "pending"
    assert agent.payment_state("big-intent").state == "escalated"
    with pytest.raises(NotRequestAgentError):  # the relayer does not own the request
        AgentWallet(world.chain, world.vault, world.outsider).cancel(outcome.request_id)
    agent.cancel(outcome.request_id)


def test_a_relayer_cannot_change_what_the_agent_signed(world: World) -> None:
    agent = _wallet(world)
    signed = agent.sign_intent(world.payee, 10 * USDC, "tUSDC", ref="tamper", max_fee=USDC)
    other = world.outsider.address
    for changed in (
        dataclasses.replace(signed, to=other),
        dataclasses.replace(signed, amount=11 * USDC),
        dataclasses.replace(signed, max_fee=5 * USDC),
        dataclasses.replace(signed, token=world.vault.token(None).address),
        dataclasses.replace(signed, ref="0x" + "ab" * 32),
        dataclasses.replace(signed, deadline=signed.deadline + 1),
        dataclasses.replace(signed, nonce=signed.nonce ^ 1),
    ):
        assert "changed after signing" in _refused(world, changed, "bad_signature")
    _refused(world, signed, "fee_too_high", fee=USDC + 1)
    _refused(world, signed, "bad_fee", fee=-1)
    # a contract submitted behind the SDK's back refuses it too (the vault's own check)
    r, vs = dataclasses.replace(signed, to=other).compact()
    tampered = dataclasses.replace(signed, to=other).intent()
    call = world.vault.contract.functions.payWithIntent(tampered, 0, r, vs)
    with pytest.raises(Exception, match="AgentNotActive|0x"):
        call.call({"from": world.outsider.address})
    assert isinstance(intents.submit_intent(world.vault, world.outsider, signed, USDC), Paid)


def test_replayed_expired_and_cross_vault_intents_are_refused(world: World) -> None:
    agent = _wallet(world)
    signed = agent.sign_intent(world.payee, 1 * USDC, "tUSDC", ref="once-only")
    intents.submit_intent(world.vault, world.outsider, signed)
    assert "ran already or was cancelled" in _refused(world, signed, "nonce_used")
    # with exactly_once the same ref signed again anywhere, for any payment, maps to one nonce
    first = agent.sign_intent(world.payee, USDC, "tUSDC", ref="strict", exactly_once=True)
    intents.submit_intent(world.vault, world.outsider, first)
    again = _wallet(world).sign_intent(
        world.payee, 2 * USDC, "tUSDC", ref="strict", exactly_once=True
    )
    assert again.nonce == first.nonce
    _refused(world, again, "nonce_used")
    expired = agent.sign_intent(
        world.payee, USDC, "tUSDC", ref="late", deadline=world.chain.timestamp() - 1
    )
    _refused(world, expired, "expired")
    _refused(world, dataclasses.replace(signed, chain_id=signed.chain_id + 1), "wrong_chain")
    # signed for another vault of the same owners: submitted here, the vault field differs
    owners = world.owners
    other_vault = Vault.create(
        world.chain, owners[0], [o.address for o in owners], 2, deployments=world.deployments,
        name="other-intents",
    )  # fmt: skip
    foreign = intents.sign_intent(
        other_vault, world.agent, world.payee, USDC, world.usdc, to_ref("x-vault")
    )
    _refused(world, foreign, "wrong_vault")
    relabelled = dataclasses.replace(foreign, vault=world.vault.address)
    assert "another vault" in _refused(world, relabelled, "bad_signature")


def test_revoked_and_stranger_keys_cannot_spend_through_intents(world: World) -> None:
    stranger = Account.create()
    forged = intents.sign_intent(
        world.vault, stranger, world.payee, USDC, world.usdc, to_ref("forged")
    )
    _refused(world, dataclasses.replace(forged, agent=world.agent.address), "bad_signature")
    _refused(world, forged, "not_agent")
    signed = _wallet(world).sign_intent(world.payee, USDC, "tUSDC", ref="before-revoke")
    world.vault.revoke_agent(world.owners[2], world.agent.address)
    assert "status revoked" in _refused(world, signed, "not_agent")


def test_nonces_are_unordered_and_the_agent_or_an_owner_can_cancel_them(world: World) -> None:
    agent = _wallet(world)
    signed = [
        agent.sign_intent(world.payee, USDC, "tUSDC", ref=f"n-{i}", exactly_once=False, nonce=n)
        for i, n in enumerate((5, 300, 7, 9, 600))
    ]
    for s in (signed[2], signed[0], signed[1]):  # any order
        assert isinstance(intents.submit_intent(world.vault, world.outsider, s), Paid)
    # the agent cancels nonce 9 (needs gas: it sends the call), an owner cancels 600
    agent.invalidate_nonces([signed[3].nonce])
    intents.invalidate_nonces(world.vault, world.owners[1], world.agent.address, [600])
    _refused(world, signed[3], "nonce_used")
    _refused(world, signed[4], "nonce_used")
    with pytest.raises(Exception, match="NotNonceAuthority|not allowed|nonce"):
        intents.invalidate_nonces(world.vault, world.outsider, world.agent.address, [11])
    with pytest.raises(Exception, match="nonce"):
        agent.invalidate_nonces([])
    # a free nonce is picked when not derived from the ref
    free = agent.sign_intent(world.payee, USDC, "tUSDC", exactly_once=False)
    assert not world.vault.bindings.is_nonce_used(world.agent.address, free.nonce)


def test_cancelling_a_ref_makes_it_unpayable_and_its_state_says_so(world: World) -> None:
    agent = _wallet(world)
    assert agent.payment_state("never-sent").state == "unknown"
    signed = agent.sign_intent(world.payee, USDC, "tUSDC", ref="to-cancel", exactly_once=True)
    agent.invalidate_nonces([signed.nonce])
    state = agent.payment_state("to-cancel")
    assert (state.state, state.guarantee, state.nonce) == ("cancelled", "chain", signed.nonce)
    _refused(world, signed, "nonce_used")
    direct = agent.pay(world.payee, USDC, "tUSDC", ref="direct-1")
    state = agent.payment_state("direct-1")
    assert (state.state, state.guarantee, state.outcome) == ("paid", "logs", direct)


def test_two_machines_signing_one_ref_before_either_is_mined_pick_one_nonce(
    world: World, tmp_path: Path
) -> None:
    first = _wallet(world, tmp_path / "a")
    second = _wallet(world, tmp_path / "b")
    one = first.sign_intent(world.payee, USDC, "tUSDC", ref="two-machines")
    other = second.sign_intent(world.payee, 2 * USDC, "tUSDC", ref="two-machines")
    assert one.nonce == other.nonce and one.nonce >> 8 == 0  # a warm word, not a fresh one
    assert isinstance(intents.submit_intent(world.vault, world.outsider, other), Paid)
    _refused(world, one, "nonce_used")
    state = first.payment_state("two-machines")
    assert (state.state, state.guarantee, state.outcome.amount) == ("paid", "logs", 2 * USDC)


def test_an_erc7710_redeemer_settles_exactly_the_transfer_the_intent_names(world: World) -> None:
    signed = _wallet(world).sign_intent(world.payee, 3 * USDC, "tUSDC", ref="x402-1")
    transfer = world.chain.w3.eth.contract(
        address=Web3.to_checksum_address(world.usdc.address),
        abi=[
            {
                "type": "function",
                "name": "transfer",
                "stateMutability": "nonpayable",
                "inputs": [{"name": "to", "type": "address"}, {"name": "v", "type": "uint256"}],
                "outputs": [{"name": "", "type": "bool"}],
            }
        ],  # fmt: skip
    ).encode_abi("transfer", args=[world.payee, 3 * USDC])
    execution = bytes.fromhex(world.usdc.address[2:]) + bytes(32) + bytes.fromhex(transfer[2:])
    redeem = world.vault.contract.functions.redeemDelegations(
        [signed.permission_context()], [bytes(32)], [execution]
    )
    before = world.vault.balance("tUSDC")
    world.chain.transact(redeem, world.outsider)
    assert world.vault.balance("tUSDC") == before - 3 * USDC
    assert world.vault.bindings.is_nonce_used(world.agent.address, signed.nonce)


def test_bad_intent_input_is_refused_before_signing(world: World) -> None:
    agent = _wallet(world)
    with pytest.raises(AmountError):
        agent.sign_intent(world.payee, 0)
    with pytest.raises(Exception, match="max_fee"):
        agent.sign_intent(world.payee, 1, max_fee=-1)
    with pytest.raises(Exception, match="signed intent"):
        SignedIntent.from_json('{"vault": "0x1"}')
    with pytest.raises(Exception, match="65 bytes"):
        SignedIntent.from_json({**_wallet(world).sign_intent(world.payee, 1).__dict__,
                                "signature": "0x1234"})  # fmt: skip


# ---------------------------------------------------------------------------------- rotation


def test_rotation_moves_the_rights_and_the_old_key_is_dead(world: World) -> None:
    agent = _wallet(world)
    old = world.agent
    escalated = agent.pay(world.payee, 300 * USDC, "tUSDC", ref="open-before-rotation")
    assert isinstance(escalated, Escalated)
    stale = agent.sign_intent(world.payee, USDC, "tUSDC", ref="signed-before-rotation")
    new = Account.create()
    world.chain.send_transaction(world.owners[0], {"to": new.address, "value": 10**17})
    agent.rotate_key(new)
    assert agent.address == new.address
    assert world.vault.bindings.agent(old.address).status == AgentStatus.ROTATED
    assert world.vault.bindings.agent(new.address).status == AgentStatus.ACTIVE
    # the new key pays and holds the open request; the old one is dead everywhere
    assert isinstance(agent.pay(world.payee, USDC, "tUSDC", ref="after-rotation"), Paid)
    agent.cancel(escalated.request_id)
    dead = AgentWallet(world.chain, world.vault, old)
    with pytest.raises(Exception, match="AgentNotActive|not active"):
        dead.pay(world.payee, USDC, "tUSDC")
    _refused(world, stale, "not_agent")
    _refused(world, dead.sign_intent(world.payee, USDC, "tUSDC"), "not_agent")


def test_rotation_replay_and_rotating_onto_an_owner_or_agent_are_refused(world: World) -> None:
    sibling = Account.create()
    added = world.vault.propose_add_agent(world.owners[0], sibling.address)
    world.vault.approve(world.owners[1], added.request_id)
    agent = _wallet(world)
    # onto an owner, onto another agent, onto itself: the vault refuses, nothing is sent
    for target in (world.owners[1], sibling, world.agent):
        with pytest.raises(InvalidNewKeyError, match="never have been an agent or an owner"):
            agent.rotate_key(target)
        assert agent.address == world.agent.address
    new = Account.create()
    rotation = intents.sign_rotation(world.vault, world.agent, new)
    intents.submit_rotation(world.vault, world.outsider, rotation)
    with pytest.raises(IntentRefusedError) as info:  # replayed by anyone
        intents.submit_rotation(world.vault, world.outsider, rotation)
    assert info.value.code == "nonce_used"
    # and the rotated key cannot hand its (former) rights to a second key
    again = intents.sign_rotation(world.vault, world.agent, Account.create())
    with pytest.raises(IntentRefusedError, match="refuse") as info:
        intents.submit_rotation(world.vault, world.outsider, again)
    assert info.value.code == "refused"
    forged = dataclasses.replace(rotation, new_key=world.outsider.address)
    with pytest.raises(IntentRefusedError, match="key's signature is not by"):
        intents.submit_rotation(world.vault, world.outsider, forged)


# ------------------------------------------------------------------ direct, exactly once


def _paid_events(world: World, ref: str) -> list[object]:
    """Every PaymentExecuted of the vault with ``ref`` (the on-chain totals check)."""
    contract = world.vault.contract
    logs = contract.events.PaymentExecuted().get_logs(from_block=0)
    return [log for log in logs if bytes(log["args"]["ref"]) == to_ref(ref)]


def test_direct_exactly_once_pays_a_ref_once_from_two_journals(
    world: World, tmp_path: Path
) -> None:
    """The agent submits its own ref-derived intent: a second machine (another journal) paying
    the same ref gets the first payment back; nothing moves twice, whoever sends it."""
    before = world.vault.balance("tUSDC")
    first = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    paid = first.pay(world.payee, 3 * USDC, "tUSDC", ref="once-d1", exactly_once=True)
    assert isinstance(paid, Paid) and paid.ref == "once-d1"
    second = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "b")
    again = second.pay(world.payee, 3 * USDC, "tUSDC", ref="once-d1", exactly_once=True)
    assert again == paid
    assert first.pay(world.payee, 3 * USDC, "tUSDC", ref="once-d1", exactly_once=True) == paid
    # the default path on the second machine finds it in the logs as well
    assert second.pay(world.payee, 3 * USDC, "tUSDC", ref="once-d1") == paid
    assert world.vault.balance("tUSDC") == before - 3 * USDC
    assert len(_paid_events(world, "once-d1")) == 1
    state = second.payment_state("once-d1")
    assert (state.state, state.guarantee) == ("paid", "chain")


def test_direct_exactly_once_submitted_twice_reverts_the_second_and_answers_the_first(
    world: World, tmp_path: Path
) -> None:
    """An attacker (or a second worker) replays the exact intent from the agent's key after
    the first ran: the vault refuses the nonce; the SDK answers the first payment."""
    before = world.vault.balance("tUSDC")
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    paid = wallet.pay(world.payee, 2 * USDC, "tUSDC", ref="once-d2", exactly_once=True)
    entry = wallet.journal.get(
        world.chain.chain_id, world.vault.address, world.agent.address, to_ref("once-d2")
    )
    assert entry is not None and entry["kind"] == "intent"
    signed = SignedIntent.from_json(json.dumps(entry["intent"]))
    assert signed.nonce == intents.ref_nonce(to_ref("once-d2"))
    _refused(world, signed, "nonce_used")
    with pytest.raises(RefReusedError, match="nothing was sent"):
        wallet.pay(world.payee, 9 * USDC, "tUSDC", ref="once-d2", exactly_once=True)
    assert isinstance(paid, Paid)
    assert world.vault.balance("tUSDC") == before - 2 * USDC


def test_direct_exactly_once_on_a_cancelled_ref_is_refused(world: World, tmp_path: Path) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path)
    wallet.invalidate_nonces([intents.ref_nonce(to_ref("once-d3"))])
    before = world.vault.balance("tUSDC")
    with pytest.raises(RefCancelledError, match="can never pay.*use a new ref"):
        wallet.pay(world.payee, USDC, "tUSDC", ref="once-d3", exactly_once=True)
    assert world.vault.balance("tUSDC") == before


def test_direct_exactly_once_over_the_limit_escalates_once(world: World, tmp_path: Path) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "a")
    out = wallet.pay(world.payee, 150 * USDC, "tUSDC", ref="once-d4", exactly_once=True)
    assert isinstance(out, Escalated)
    other = AgentWallet(world.chain, world.vault, world.agent, journal_dir=tmp_path / "b")
    assert other.pay(world.payee, 150 * USDC, "tUSDC", ref="once-d4", exactly_once=True) == out


@pytest.mark.parametrize("first_path", ["direct", "exactly_once"])
def test_a_journaled_ref_reused_for_another_payment_is_refused_alike_on_every_path(
    world: World, tmp_path: Path, first_path: str
) -> None:
    """One preamble guards the direct, the exactly-once and the relayed path: a ref journaled
    for one payment and asked again for another is refused with the same error before any
    signing or sending (the relay named is never contacted: nothing listens there)."""
    wallet = _wallet(world, tmp_path)
    ref = f"reuse-{first_path}"
    paid = wallet.pay(world.payee, 4 * USDC, "tUSDC", ref=ref, exactly_once=first_path != "direct")
    assert isinstance(paid, Paid)
    before = world.vault.balance("tUSDC"), world.chain.nonce(world.agent.address)
    messages = set()
    for how in ({}, {"exactly_once": True}, {"relay": "http://127.0.0.1:9", "fee": 0}):
        with pytest.raises(RefReusedError, match=r"nothing was sent") as info:
            wallet.pay(world.payee, 5 * USDC, "tUSDC", ref=ref, **how)  # type: ignore[arg-type]
        assert info.value.earlier == paid
        messages.add(str(info.value))
    assert len(messages) == 1 and "4 tUSDC" in messages.pop()
    assert (world.vault.balance("tUSDC"), world.chain.nonce(world.agent.address)) == before
    assert len(_paid_events(world, ref)) == 1
