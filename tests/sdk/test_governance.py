"""Owners' governance on a real EVM (embedded chain and anvil): signed batches that run in one
transaction (``executeGovernance``), owner swaps and agent key replacement, and the recovery
from a compromised owner, tried as the attacker would."""

import dataclasses

import pytest
from web3.logs import DISCARD

from agentwallet.agent import AgentWallet, Paid
from agentwallet.errors import (
    AgentWalletError,
    NonceAlreadyUsedError,
    NotOwnerError,
    SignatureMismatchError,
)
from agentwallet.governance import default_deadline
from agentwallet.protocol.constants import RequestStatus
from agentwallet.protocol.models import SignedGovernance
from agentwallet.vault import Vault

from .conftest import USDC, World


def _sent(world: World, address: str) -> int:
    return int(world.chain.w3.eth.get_transaction_count(address))  # type: ignore[arg-type]


def test_owners_sign_a_batch_independently_and_anyone_runs_it_once(world: World) -> None:
    v, (o0, o1, o2) = world.vault, world.owners
    v.pause(o2)
    calls = [v.governance_call("removeOwner", o2.address, 2), v.governance_call("unpause")]
    a = v.sign_governance(o0, calls)
    b = SignedGovernance.from_json(v.sign_governance(o1, calls).to_json())  # travels as JSON
    assert a.batch() == b.batch()  # independent signers agree on the nonce and deadline
    assert a.deadline == default_deadline(world.chain.timestamp()) and a.deadline % 3600 == 0
    result = v.execute_governance(world.outsider, [b, a])  # a relayer submits, any order
    assert v.owners() == [o0.address, o1.address] and not v.paused()
    receipt = world.chain.w3.eth.get_transaction_receipt(result.tx_hash)
    (event,) = v.contract.events.GovernanceExecuted().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["nonce"] == a.nonce
    assert sorted(event["args"]["signers"]) == sorted([o0.address, o1.address])
    before = _sent(world, world.outsider.address)
    with pytest.raises(NonceAlreadyUsedError, match=f"nonce {a.nonce} is already used"):
        v.execute_governance(world.outsider, [a, b])  # replay: refused before sending
    assert _sent(world, world.outsider.address) == before


def test_batches_signed_in_parallel_do_not_cancel_each_other(world: World) -> None:
    v, (o0, o1, _) = world.vault, world.owners
    first = [v.governance_call("setRequestExpiry", 2 * 86400)]
    second = [v.governance_call("setMaxOpenRequests", 7)]
    signed_first = [v.sign_governance(o, first) for o in (o0, o1)]
    signed_second = [v.sign_governance(o, second) for o in (o0, o1)]
    assert signed_first[0].nonce != signed_second[0].nonce
    v.execute_governance(world.outsider, signed_second)
    v.execute_governance(world.outsider, signed_first)  # still runs after the other
    assert v.contract.functions.maxOpenRequests().call() == 7
    assert v.contract.functions.requestExpiry().call() == 2 * 86400
    again = v.sign_governance(o0, first, deadline=signed_first[0].deadline)
    assert again.nonce != signed_first[0].nonce  # the used bit is skipped


def test_forged_mixed_stale_short_or_late_batches_send_nothing(world: World) -> None:
    v, (o0, o1, o2) = world.vault, world.owners
    calls = [v.governance_call("changeThreshold", 1)]
    a, b = v.sign_governance(o0, calls), v.sign_governance(o1, calls)
    other = v.sign_governance(o2, [v.governance_call("changeThreshold", 3)])
    before = _sent(world, world.outsider.address)
    with pytest.raises(AgentWalletError, match="different batch"):
        v.execute_governance(world.outsider, [a, other])
    # an outsider's signature claimed as an owner's: caught before sending
    by_outsider = v.sign_governance(world.outsider, calls)
    forged = dataclasses.replace(by_outsider, signer=o1.address)
    with pytest.raises(SignatureMismatchError, match=f"by {o1.address} but"):
        v.execute_governance(world.outsider, [a, forged])
    with pytest.raises(AgentWalletError, match="needs 2 owner signatures, got 1; not owners"):
        v.execute_governance(world.outsider, [a, by_outsider])
    # a batch whose calls were changed after signing no longer matches any signature
    swapped = dataclasses.replace(a, calls=other.calls)
    swapped_b = dataclasses.replace(b, calls=other.calls)
    with pytest.raises(SignatureMismatchError):
        v.execute_governance(world.outsider, [swapped, swapped_b])
    late = [v.sign_governance(o, calls, deadline=world.chain.timestamp() + 5) for o in (o0, o1)]
    world.chain.increase_time(10)
    with pytest.raises(AgentWalletError, match="expired"):
        v.execute_governance(world.outsider, late)
    assert _sent(world, world.outsider.address) == before
    assert v.threshold() == 2
    with pytest.raises(AgentWalletError, match="not a governance call"):
        v.governance_call("pause")
    with pytest.raises(AgentWalletError, match="at least one call"):
        v.sign_governance(o0, [])
    with pytest.raises(AgentWalletError, match="not a signed governance batch"):
        SignedGovernance.from_json('{"vault": "0x0"}')


def test_a_batch_for_another_vault_does_not_run_here(world: World) -> None:
    v, (o0, o1, o2) = world.vault, world.owners
    twin = Vault.create(
        world.chain, o0, [o.address for o in (o0, o1, o2)], 2, name="twin",
        deployments=world.deployments,
    )  # fmt: skip
    signed = [
        twin.sign_governance(o, [twin.governance_call("changeThreshold", 1)]) for o in (o0, o1)
    ]
    with pytest.raises(AgentWalletError, match=f"for vault {twin.address}"):
        v.execute_governance(world.outsider, signed)
    assert v.threshold() == 2


def test_owner_swap_and_agent_key_replacement_by_proposal_and_by_signatures(
    world: World,
) -> None:
    v, (o0, o1, o2) = world.vault, world.owners
    new_owner, new_key = world.chain.dev_accounts[9], world.chain.dev_accounts[6]
    ref = v.propose_swap_owner(o0, o2.address, new_owner.address)
    assert "swapOwner" in v.request(ref.request_id).action
    v.approve(o1, ref.request_id)
    assert v.owners() == [o0.address, o1.address, new_owner.address]
    # the agent lost its key: the owners move its rights to a new one in one signed batch
    batch = [v.governance_call("replaceAgentKey", world.agent.address, new_key.address)]
    v.execute_governance(world.outsider, [v.sign_governance(o, batch) for o in (o1, new_owner)])
    assert v.agent(new_key.address).status == "active"
    assert v.agent(world.agent.address).status != "active"
    paid = AgentWallet(world.chain, v, new_key).pay(world.payee, 1 * USDC, "tUSDC")
    assert isinstance(paid, Paid)
    back = v.propose_replace_agent_key(o0, new_key.address, world.agent.address)
    assert v.request(back.request_id).status == RequestStatus.PENDING.text


def test_compromised_owner_cannot_freeze_the_vault(world: World) -> None:
    """The attacker holds owner o2's key: it pauses the vault and the agent, spams proposals,
    rejects the honest unpause proposal and front-runs with proposals of its own. The honest
    two remove it and unpause in one transaction; nothing it does afterwards re-freezes the
    vault, and every token is still there."""
    v, (o0, o1, bad) = world.vault, world.owners
    agent = world.agent.address
    eth, usdc = v.balance(), v.balance("tUSDC")
    v.pause(bad)
    v.pause_agent(bad, agent)
    spam = [v.propose_change_threshold(bad, 1).request_id for _ in range(3)]
    honest = v.propose_unpause(o0)
    v.reject(bad, honest.request_id)
    assert v.request(honest.request_id).status == "pending"  # one no does not kill it
    # the honest owners sign the recovery off-chain; the attacker sees nothing to reject
    calls = [
        v.governance_call("removeOwner", bad.address, 2),
        v.governance_call("unpause"),
        v.governance_call("unpauseAgent", agent),
    ]
    signed = [v.sign_governance(o, calls) for o in (o0, o1)]
    v.propose_change_threshold(bad, 3)  # front-running with more proposals changes nothing
    v.execute_governance(world.outsider, signed)
    assert v.owners() == [o0.address, o1.address] and not v.paused()
    assert v.agent(agent).status == "active"
    with pytest.raises(NotOwnerError):
        v.pause(bad)
    with pytest.raises(NotOwnerError):
        v.reject(bad, honest.request_id)
    for request_id in spam:  # its proposals cannot reach the threshold without it
        with pytest.raises(AgentWalletError):
            v.approve(bad, request_id)
    assert (v.balance(), v.balance("tUSDC")) == (eth, usdc)  # funds intact
    paid = AgentWallet(world.chain, v, world.agent).pay(world.payee, USDC, "tUSDC")
    assert isinstance(paid, Paid)  # the agent works again
