"""Key rotation: an agent moves its rights to a new key (both keys sign), owners replace a lost
key by threshold, and owners swap an owner in one signed transaction.

Who gains if a rule breaks: the holder of a rotated-away (or leaked) key, a relayer replaying a
rotation, or an attacker rotating a key onto an address it controls, an owner or another agent."""

from __future__ import annotations

import itertools
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from .conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    AGENT_ROTATED,
    DAY,
    ETH,
    ETHER,
    EXECUTED,
    PENDING,
    Env,
    expect_revert,
    fresh_address,
)

_nonces = itertools.count(5_000)


def key(label: str) -> LocalAccount:
    return Account.from_key(Web3.keccak(text=f"rotation-{label}"))


def rotation(
    env: Env,
    old: LocalAccount,
    new: LocalAccount,
    *,
    nonce: int = 1,
    deadline: int | None = None,
    old_signer: LocalAccount | None = None,
    new_signer: LocalAccount | None = None,
) -> tuple[Any, ...]:
    deadline = env.now() + DAY if deadline is None else deadline
    typed = env.typed_rotation(old.address, new.address, nonce, deadline)
    return (
        old.address,
        new.address,
        nonce,
        deadline,
        env.sign_typed(typed, old_signer or old),
        env.sign_typed(typed, new_signer or new),
    )


def rotate(env: Env, args: tuple[Any, ...], sender: LocalAccount | None = None):
    return env.send(env.vault.functions.rotateAgentKey(*args), sender or env.outsider)


def test_an_agent_moves_limits_budget_and_list_place_to_a_new_key(env: Env) -> None:
    new = key("new-1")
    env.pay(ETH, fresh_address("before"), ETHER // 2)
    budget = env.available(ETH)
    old_info = env.vault.functions.getAgent(env.agent.address).call()
    receipt = rotate(env, rotation(env, env.agent, new))
    event = env.event(receipt, "AgentRotated")
    assert (event["oldKey"], event["newKey"], event["lineage"], event["by"]) == (
        env.agent.address,
        new.address,
        old_info[5],
        env.agent.address,
    )
    info = env.vault.functions.getAgent(new.address).call()
    assert info[0] == AGENT_ACTIVE and info[5] == old_info[5]
    assert env.vault.functions.getAgent(env.agent.address).call()[0] == AGENT_ROTATED
    # the same budget state (a few seconds of refill at 5 ETH a day aside)
    assert budget <= env.available(ETH, new.address) <= budget + 5 * ETHER * 30 // DAY
    assert env.available(ETH, env.agent.address) == 0
    agents = env.vault.functions.getAgents().call()
    assert new.address in agents and env.agent.address not in agents
    assert env.vault.functions.currentKey(env.agent.address).call() == new.address
    assert sorted(env.vault.functions.getAgentTokens(new.address).call()) == sorted(
        [ETH, env.usdc.address]
    )
    # the new key pays at once (relayed, it needs no gas); the old one is dead everywhere
    intent = env.intent(fresh_address("after"), ETHER // 10, nonce=1)
    env.relay_intent(intent, env.sign_intent(intent, new))
    with expect_revert("AgentNotActive", env.agent.address, AGENT_ROTATED):
        env.pay(ETH, fresh_address("old"), 1)
    old_intent = env.intent(fresh_address("old"), 1, nonce=2)
    with expect_revert("AgentNotActive", env.agent.address, AGENT_ROTATED):
        env.relay_intent(old_intent, env.sign_intent(old_intent))
    # the vault's brakes reach the new key
    env.send(env.vault.functions.pause(), env.owners[0])
    paused_intent = env.intent(fresh_address("p"), 1, nonce=3)
    with expect_revert("VaultIsPaused"):
        env.relay_intent(paused_intent, env.sign_intent(paused_intent, new))


def test_open_requests_and_the_allowlist_move_with_the_key(env: Env) -> None:
    shop = fresh_address("listed")
    env.govern_signed([("allowRecipient", (env.agent.address, shop))], nonce=next(_nonces))
    rid = env.escalate()
    new = key("new-2")
    rotate(env, rotation(env, env.agent, new))
    assert env.vault.functions.isRecipientAllowed(new.address, shop).call() is True
    assert env.vault.functions.getAgent(new.address).call()[4] == 1  # open request moved
    assert env.status(rid) == PENDING
    with expect_revert("NotRequestAgent"):
        env.send(env.rq.cancel(rid), env.agent)
    receipt = env.send(
        env.rq.executeWithSignatures(rid, env.packed(rid, env.owners[:2])), env.outsider
    )
    assert env.event(receipt, "RequestExecuted")["requestId"] == rid
    assert env.event(receipt, "PaymentExecuted")["agent"] == env.agent.address  # who asked
    assert env.status(rid) == EXECUTED
    assert env.vault.functions.getAgent(new.address).call()[4] == 0
    # a second request, cancelled by the new key
    env.send_eth(env.deployer, new.address, ETHER)
    _r, rid2 = env.pay(env.usdc.address, fresh_address("x"), 500 * 10**6, agent=new)
    env.send(env.rq.cancel(rid2), new)


def test_rotation_needs_both_keys_and_cannot_be_replayed(env: Env) -> None:
    new, thief = key("new-3"), key("thief")
    with expect_revert("InvalidSignature", new.address):  # no proof the new key is held
        rotate(env, rotation(env, env.agent, new, new_signer=thief))
    with expect_revert("InvalidSignature", env.agent.address):  # not the agent's decision
        rotate(env, rotation(env, env.agent, new, old_signer=thief))
    with expect_revert("SignatureExpired"):
        rotate(env, rotation(env, env.agent, new, deadline=env.now() - 1))
    # the old key itself may send it without its own signature
    args = rotation(env, env.agent, new, nonce=9)
    rotate(env, (*args[:4], b"", args[5]), sender=env.agent)
    with expect_revert("NonceAlreadyUsed", env.agent.address, 9):
        rotate(env, args)
    # and back is a new rotation with a nonce of the new key: the old signatures are useless
    with expect_revert("InvalidSignature"):
        rotate(env, (new.address, env.agent.address, 9, args[3], args[5], args[4]))


def test_rotation_onto_an_owner_an_agent_or_a_special_address_is_refused(env: Env) -> None:
    other = key("other-agent")
    env.govern_signed([("addAgent", (other.address, 0, 0, False))], nonce=next(_nonces))
    revoked = key("revoked-agent")
    env.govern_signed([("addAgent", (revoked.address, 0, 0, False))], nonce=next(_nonces))
    env.send(env.vault.functions.revokeAgent(revoked.address), env.owners[0])
    for target in (other.address, revoked.address, env.owners[1].address, env.vault.address):
        typed = env.typed_rotation(env.agent.address, target, 1, env.now() + DAY)
        sig = env.sign_typed(typed, env.agent)
        with expect_revert("InvalidNewKey", target):
            env.govern_signed(
                [("replaceAgentKey", (env.agent.address, target))], nonce=next(_nonces)
            )
        del sig
    with expect_revert("InvalidNewKey", other.address):
        rotate(env, rotation(env, env.agent, other))
    # a revoked agent cannot rotate itself back to life
    with expect_revert("AgentNotActive"):
        rotate(env, rotation(env, revoked, key("fresh")))


def test_owners_replace_a_lost_key_by_threshold_and_a_paused_agent_stays_paused(env: Env) -> None:
    env.send(env.vault.functions.pauseAgent(env.agent.address), env.owners[2])
    new = key("new-4")
    with expect_revert("OnlyVault"):
        env.send(env.vault.functions.replaceAgentKey(env.agent.address, new.address), env.owners[0])
    receipt = env.govern_signed(
        [("replaceAgentKey", (env.agent.address, new.address))], nonce=next(_nonces)
    )
    assert env.event(receipt, "AgentRotated")["by"] == env.vault.address
    assert env.vault.functions.getAgent(new.address).call()[0] == AGENT_PAUSED
    env.send_eth(env.deployer, new.address, ETHER)
    with expect_revert("AgentNotActive", new.address, AGENT_PAUSED):
        env.pay(ETH, fresh_address("paused"), 1, agent=new)


def test_owner_swap_in_one_signed_transaction(env: Env) -> None:
    leaving, newcomer = env.owners[2], env.spare[0]
    rid = env.escalate()
    env.send(env.rq.approve(rid), leaving)
    receipt = env.govern_signed(
        [("swapOwner", (leaving.address, newcomer.address))], nonce=next(_nonces)
    )
    assert env.event(receipt, "OwnerRemoved")["owner"] == leaving.address
    assert env.event(receipt, "OwnerAdded")["owner"] == newcomer.address
    owners = env.vault.functions.getOwners().call()
    assert newcomer.address in owners and leaving.address not in owners and len(owners) == 3
    assert env.vault.functions.approvalCount(rid).call() == 0  # the leaver's approval is gone
    env.send(env.rq.approve(rid), newcomer)
    receipt = env.send(env.rq.approve(rid), env.owners[0])
    assert sorted(env.event(receipt, "RequestExecuted")["signers"]) == sorted(
        [newcomer.address, env.owners[0].address]
    )
    with expect_revert("AlreadyOwner"):
        env.govern_signed(
            [("swapOwner", (env.owners[0].address, newcomer.address))],
            [env.owners[0], newcomer],
            nonce=next(_nonces),
        )
    with expect_revert("AgentIsOwner"):
        env.govern_signed(
            [("swapOwner", (env.owners[0].address, env.agent.address))],
            [env.owners[0], newcomer],
            nonce=next(_nonces),
        )
