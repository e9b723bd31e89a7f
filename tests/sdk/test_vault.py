"""The owners' flow on a real EVM (embedded chain and anvil)."""

import dataclasses
from pathlib import Path

import pytest
from eth_account import Account
from web3.logs import DISCARD

from agentwallet import request_log
from agentwallet.agent import AgentWallet, Escalated, Paid
from agentwallet.deployments import Deployments
from agentwallet.errors import (
    AgentNotActiveError,
    AgentWalletError,
    AlreadyApprovedError,
    NonceAlreadyUsedError,
    NotAVaultError,
    NotOwnerError,
    RequestNotPendingError,
    SignatureMismatchError,
    UnknownRequestError,
)
from agentwallet.protocol.constants import RequestStatus
from agentwallet.protocol.requests import PaymentRequest
from agentwallet.vault import SignedApproval, SignedPayment, Vault

from .conftest import DAY, USDC, World


def test_create_records_and_reopens_the_vault(world: World) -> None:
    v = Vault.at(world.chain, "test", world.deployments)
    assert v.address == world.vault.address
    assert v.owners() == [o.address for o in world.owners]
    assert v.threshold() == 2 and not v.paused()
    assert v.balance() == 5 * 10**18 and v.balance("tUSDC") == 10_000 * USDC
    with pytest.raises(NotAVaultError):
        Vault.at(world.chain, world.usdc.address, world.deployments)
    with pytest.raises(NotAVaultError):
        Vault.at(world.chain, world.payee, world.deployments)


def test_adding_an_agent_needs_the_threshold(world: World) -> None:
    v, (o0, _, o2) = world.vault, world.owners
    newcomer = Account.create().address
    ref = v.propose_add_agent(o0, newcomer, ref="add newcomer")
    assert not ref.executed and v.agent(newcomer).status == "none"
    pending = v.request(ref.request_id)
    assert pending.kind == "governance" and pending.status == "pending"
    assert pending.approvals == (o0.address,) and pending.threshold == 2
    assert pending.action.startswith(f"addAgent(agent={newcomer}") and pending.ref == "add newcomer"
    with pytest.raises(AlreadyApprovedError):
        v.approve(o0, ref.request_id)
    with pytest.raises(NotOwnerError):
        v.approve(world.agent, ref.request_id)
    result = v.approve(o2, ref.request_id)
    assert result.executed and result.gas_used > 0
    assert v.agent(newcomer).status == "active"
    assert v.request(ref.request_id).status == "executed"


def test_agent_pays_inside_and_escalates_outside_then_owners_approve(world: World) -> None:
    v, (o0, o1, _) = world.vault, world.owners
    agent = AgentWallet(world.chain, v, world.agent)
    paid = agent.pay(world.payee, 40 * USDC, "tUSDC", ref="inv-1")
    assert isinstance(paid, Paid) and paid.status == "paid" and paid.gas_used > 0
    assert v.balance("tUSDC") == 9_960 * USDC
    over = agent.pay(world.payee, 150 * USDC, "tUSDC", ref="inv-2")
    assert isinstance(over, Escalated) and over.status == "escalated"
    assert over.reasons == ("over per-payment limit",)
    assert v.balance("tUSDC") == 9_960 * USDC

    (info,) = v.requests()
    assert info.id == over.request_id and info.kind == "payment" and info.status == "pending"
    assert info.agent == world.agent.address and info.to == world.payee
    assert info.token == world.usdc and info.amount == 150 * USDC
    assert info.amount_text == "150 tUSDC" and info.reasons == ("over per-payment limit",)
    assert info.ref == "inv-2" and info.approvals == () and info.threshold == 2
    assert info.expires_at - info.created_at == 3 * DAY

    first = v.approve(o0, over.request_id)
    assert not first.executed and v.request(over.request_id).approvals == (o0.address,)
    second = v.approve(o1, over.request_id)
    assert second.executed
    assert v.balance("tUSDC") == 9_810 * USDC
    assert v.requests() == [] and v.requests("executed")[-1].id == over.request_id
    with pytest.raises(RequestNotPendingError, match="already decided"):
        v.approve(world.owners[2], over.request_id)


def test_rejected_request_never_pays(world: World) -> None:
    v = world.vault
    agent = AgentWallet(world.chain, v, world.agent)
    over = agent.pay(world.payee, 10**18, ref="big eth")
    assert isinstance(over, Escalated)
    assert set(over.reasons) == {"over per-payment limit", "over period allowance"}
    v.reject(world.owners[2], over.request_id)
    assert v.request(over.request_id).status == "rejected"
    with pytest.raises(RequestNotPendingError):
        v.approve(world.owners[0], over.request_id)
    assert v.balance() == 5 * 10**18


def test_off_chain_signatures_execute_a_request(world: World) -> None:
    v, (o0, o1, o2) = world.vault, world.owners
    agent = AgentWallet(world.chain, v, world.agent)
    over = agent.pay(world.payee, 700 * USDC, "tUSDC", ref="sig")
    assert isinstance(over, Escalated)
    sigs = [SignedApproval.from_json(v.sign(o, over.request_id).to_json()) for o in (o2, o0)]
    forged = SignedApproval(
        v.address, world.chain.chain_id, over.request_id, o1.address, sigs[0].signature
    )
    with pytest.raises(SignatureMismatchError, match=f"by {o1.address} but .* is by {o2.address}"):
        v.execute_with_signatures(world.outsider, over.request_id, [sigs[1], forged])
    before = v.balance("tUSDC")
    v.execute_with_signatures(world.outsider, over.request_id, sigs)  # anyone may submit
    assert v.balance("tUSDC") == before - 700 * USDC
    assert v.request(over.request_id).status == "executed"


def test_signature_by_a_non_owner_is_left_out_when_enough_owners_signed(world: World) -> None:
    """The vault reads only the lowest ``threshold`` signers: a stray signature (an outsider's,
    or an owner's removed since) must not block a set that has enough current owners."""
    v, (o0, _, o2) = world.vault, world.owners
    agent = AgentWallet(world.chain, v, world.agent)
    over = agent.pay(world.payee, 600 * USDC, "tUSDC", ref="stray")
    assert isinstance(over, Escalated)
    stray = v.sign(world.outsider, over.request_id)
    approvals = [stray, v.sign(o0, over.request_id), v.sign(o2, over.request_id)]
    v.execute_with_signatures(world.outsider, over.request_id, approvals)
    assert v.request(over.request_id).status == "executed"
    again = agent.pay(world.payee, 600 * USDC, "tUSDC", ref="stray-2")
    assert isinstance(again, Escalated)
    with pytest.raises(AgentWalletError, match=f"got 1; not owners .*{world.outsider.address}"):
        v.execute_with_signatures(
            world.outsider,
            again.request_id,
            [v.sign(world.outsider, again.request_id), v.sign(o0, again.request_id)],
        )


def test_one_owner_approves_on_chain_and_another_signs(world: World) -> None:
    """Issue 15: owners mix. The on-chain approval fills the gap as a v == 1 entry."""
    v, (o0, o1, o2) = world.vault, world.owners
    agent = AgentWallet(world.chain, v, world.agent)
    over = agent.pay(world.payee, 600 * USDC, "tUSDC", ref="mixed")
    assert isinstance(over, Escalated)
    assert not v.approve(o1, over.request_id).executed
    # o1's own signature next to its approval is not needed, and not counted twice
    signed = [v.sign(o2, over.request_id), v.sign(o1, over.request_id)]
    before = v.balance("tUSDC")
    result = v.execute_with_signatures(world.outsider, over.request_id, signed)
    assert v.balance("tUSDC") == before - 600 * USDC
    assert v.request(over.request_id).status == "executed"
    (event,) = v.contract.events.RequestExecuted().process_receipt(
        world.chain.w3.eth.get_transaction_receipt(result.tx_hash), errors=DISCARD
    )
    assert sorted(event["args"]["signers"]) == sorted([o1.address, o2.address])
    # one approval and no other owner's signature: says what is missing, sends nothing
    again = agent.pay(world.payee, 600 * USDC, "tUSDC", ref="mixed-2")
    assert isinstance(again, Escalated)
    v.approve(o0, again.request_id)
    with pytest.raises(AgentWalletError, match="1 approved on-chain and 0 other .* collect 1 more"):
        v.execute_with_signatures(world.outsider, again.request_id, [v.sign(o0, again.request_id)])
    assert v.request(again.request_id).status == "pending"


def test_owners_signed_payment_is_relayed_once(world: World) -> None:
    v, (o0, _, o2) = world.vault, world.owners
    agent = world.agent.address
    signed = [
        SignedPayment.from_json(
            v.sign_payment(o, world.payee, 3 * USDC, "tUSDC", agent=agent, ref="inv-9").to_json()
        )
        for o in (o2, o0)
    ]
    assert signed[0].payment() == signed[1].payment()
    before = v.balance("tUSDC")
    result = v.pay_with_signatures(world.outsider, signed)  # a relayer submits
    assert v.balance("tUSDC") == before - 3 * USDC
    (event,) = v.contract.events.SignedPaymentExecuted().process_receipt(
        world.chain.w3.eth.get_transaction_receipt(result.tx_hash), errors=DISCARD
    )
    assert event["args"]["agent"] == world.agent.address
    assert sorted(event["args"]["signers"]) == sorted([o0.address, o2.address])
    assert event["args"]["ref"] == b"inv-9".ljust(32, b"\0")
    with pytest.raises(NonceAlreadyUsedError, match=f"nonce {signed[0].nonce} is already used"):
        v.pay_with_signatures(world.outsider, signed)
    assert v.balance("tUSDC") == before - 3 * USDC


def test_payments_signed_in_parallel_run_in_any_order(world: World) -> None:
    """Unordered nonces: two payments signed at the same time get different nonces, and the
    later one still runs after the first (the old single counter cancelled it)."""
    v, (o0, o1, _) = world.vault, world.owners
    first = [v.sign_payment(o, world.payee, 1 * USDC, "tUSDC", ref="a") for o in (o0, o1)]
    second = [v.sign_payment(o, world.payee, 2 * USDC, "tUSDC", ref="b") for o in (o0, o1)]
    assert first[0].nonce != second[0].nonce
    before = v.balance("tUSDC")
    v.pay_with_signatures(world.outsider, second)
    v.pay_with_signatures(world.outsider, first)
    assert v.balance("tUSDC") == before - 3 * USDC
    again = v.sign_payment(o0, world.payee, 1 * USDC, "tUSDC", ref="a", deadline=first[0].deadline)
    assert again.nonce != first[0].nonce  # the used bit is skipped: a fresh authorisation


def test_signed_payment_refuses_mixed_forged_or_late_signatures(world: World) -> None:
    v, (o0, o1, o2) = world.vault, world.owners
    a = v.sign_payment(o0, world.payee, 1 * USDC, "tUSDC", ref="x")
    b = v.sign_payment(o1, world.payee, 2 * USDC, "tUSDC", ref="x")
    with pytest.raises(AgentWalletError, match="different payment"):
        v.pay_with_signatures(world.outsider, [a, b])
    by_o2 = v.sign_payment(o2, world.payee, 1 * USDC, "tUSDC", ref="x")
    forged = dataclasses.replace(by_o2, signer=o1.address)
    with pytest.raises(SignatureMismatchError, match=f"by {o1.address} but .* is by {o2.address}"):
        v.pay_with_signatures(world.outsider, [a, forged])
    late = [
        v.sign_payment(o, world.payee, 1 * USDC, "tUSDC", deadline=world.chain.timestamp() + 5)
        for o in (o0, o1)
    ]
    world.chain.increase_time(10)
    with pytest.raises(AgentWalletError, match="expired"):
        v.pay_with_signatures(world.outsider, late)
    with pytest.raises(AgentWalletError, match="amount must be positive"):
        v.sign_payment(o0, world.payee, 0, "tUSDC")


def test_revoked_agent_cannot_pay_and_nothing_is_sent(world: World) -> None:
    v = world.vault
    v.revoke_agent(world.owners[1], world.agent.address)
    agent = AgentWallet(world.chain, v, world.agent)
    nonce = world.chain.w3.eth.get_transaction_count(world.agent.address)
    with pytest.raises(AgentNotActiveError, match="revoked"):
        agent.pay(world.payee, 1 * USDC, "tUSDC")
    assert world.chain.w3.eth.get_transaction_count(world.agent.address) == nonce
    assert v.agent(world.agent.address).status == "revoked"


def test_agents_and_policies(world: World) -> None:
    (view,) = world.vault.agents()
    assert view.address == world.agent.address and view.status == "active"
    usdc = view.policies[world.usdc.address]
    assert (usdc.max_per_payment, usdc.allowance, usdc.period) == (100 * USDC, 500 * USDC, DAY)
    assert usdc.available == 500 * USDC


def test_a_closed_request_whose_slot_was_reused_keeps_its_final_status(world: World) -> None:
    """The vault stores one hash per slot and reuses a closed request's slot for the agent's
    next request: the first then reads Closed on-chain, and the SDK tells its final status from
    its events (also when an owner tries to decide it again)."""
    v, (o0, o1, o2) = world.vault, world.owners
    agent = AgentWallet(world.chain, v, world.agent)
    first = agent.pay(world.payee, 150 * USDC, "tUSDC", ref="slot-1")
    assert isinstance(first, Escalated)
    v.approve(o0, first.request_id)
    v.approve(o1, first.request_id)
    second = agent.pay(world.payee, 160 * USDC, "tUSDC", ref="slot-2")
    assert isinstance(second, Escalated)
    a, b = v.find_request(first.request_id), v.find_request(second.request_id)
    assert isinstance(a, PaymentRequest) and isinstance(b, PaymentRequest) and a.slot == b.slot
    assert v.bindings.payment_status(a) == RequestStatus.CLOSED
    assert v.request(first.request_id).status == "executed"
    assert [r.id for r in v.requests()] == [second.request_id]
    with pytest.raises(RequestNotPendingError, match="status=executed"):
        v.approve(o2, first.request_id)


def test_requests_are_found_from_their_events_in_a_fresh_process(world: World) -> None:
    """Nothing cached (another process created the requests) and no deployment record: the
    request's contents come from its creation event, found by id from the vault's first block."""
    v, o0 = world.vault, world.owners[0]
    agent = AgentWallet(world.chain, v, world.agent)
    over = agent.pay(world.payee, 150 * USDC, "tUSDC", ref="fresh")
    assert isinstance(over, Escalated)
    proposal = v.propose_unpause_agent(o0, world.agent.address, ref="fresh proposal")
    request_log._FOUND.clear()
    stranger = Vault(world.chain, v.address, Deployments(world.chain, world.deployments.directory))
    stranger.deployments = Deployments(world.chain, Path(world.deployments.directory) / "none")
    info = stranger.request(over.request_id)
    assert (info.kind, info.amount, info.ref) == ("payment", 150 * USDC, "fresh")
    assert stranger.request(proposal.request_id).action.startswith("unpauseAgent(")
    assert request_log.deployment_block(stranger) == world.deployments.vault_block(v.address)
    with pytest.raises(UnknownRequestError, match="no request 999"):
        stranger.request(999)


def test_a_proposal_needs_more_than_one_rejection_to_die(world: World) -> None:
    """2-of-3: one owner's no leaves a proposal open (no minority veto); a second one closes
    it. An agent's payment request still closes at one owner's no."""
    v, (o0, o1, o2) = world.vault, world.owners
    ref = v.propose_unpause(o0)
    v.reject(o1, ref.request_id)
    assert v.request(ref.request_id).status == "pending"
    v.reject(o2, ref.request_id)
    assert v.request(ref.request_id).status == "rejected"
    with pytest.raises(RequestNotPendingError):
        v.approve(o1, ref.request_id)


def test_a_revoked_agents_requests_read_agent_revoked(world: World) -> None:
    v = world.vault
    over = AgentWallet(world.chain, v, world.agent).pay(world.payee, 150 * USDC, "tUSDC")
    assert isinstance(over, Escalated)
    v.revoke_agent(world.owners[0], world.agent.address)
    assert v.request(over.request_id).status == "agent_revoked"
    assert v.requests() == []
    with pytest.raises(RequestNotPendingError, match="status=agent_revoked"):
        v.approve(world.owners[1], over.request_id)
    assert [a.status for a in v.agents()] == ["revoked"]
