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
    ETH_ALLOWANCE,
    ETH_MAX,
    ETHER,
    EXECUTED,
    PENDING,
    PERIOD,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    expect_revert,
    fresh_address,
)

MAX_TOKENS = 255  # AgentVaultStorage.MAX_TOKENS: distinct tokens a vault can ever scope (+ ETH)
MAX_TOKENS_PER_AGENT = 8
TX_GAS_CAP = 2**24  # EIP-7825's per-transaction gas cap

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


# ------------------------------------------------------------------------------------------------
# Issue 11: a rotation moves every word the old key holds, a removed token's too (its spent
# budget). Who gains if not: a hostile agent that spends, waits for an owner to remove the token,
# rotates its own key and gets a full budget back when the token is granted again.
# ------------------------------------------------------------------------------------------------

_REFILL = USDC_ALLOWANCE // 100  # a few seconds of refill at 1,000 tUSDC a day


def _spend_half_of_usdc(env: Env) -> int:
    for _ in range(USDC_ALLOWANCE // USDC_MAX // 2):
        env.pay(env.usdc.address, fresh_address("found-1"), USDC_MAX)
    spent = env.available(env.usdc.address)
    assert spent <= USDC_ALLOWANCE // 2 + _REFILL
    return spent


def _out_of_scope(env: Env, agent: LocalAccount, token: str) -> None:
    """The moved word is not a grant: the new key's payment in `token` escalates, nothing moves."""
    assert token not in env.vault.functions.getAgentTokens(agent.address).call()
    env.send_eth(env.deployer, agent.address, ETHER)
    _receipt, request_id = env.pay(token, fresh_address("unscoped"), 1, agent=agent)
    assert request_id != 0


def test_a_removed_token_re_granted_after_a_rotation_keeps_its_spent_budget(env: Env) -> None:
    """docs/contracts.md, "Budgets never come back": a word keeps its budget state when the
    token leaves the scope, and rotation moves the budget state. So: spend half, remove the
    token, rotate the key, grant the same limits again: half is left, not all of it."""
    usdc, agent = env.usdc.address, env.agent.address
    spent = _spend_half_of_usdc(env)
    env.send(env.vault.functions.removeToken(agent, usdc), env.owners[0])
    new = Account.from_key(Web3.keccak(text="properties-found-1"))
    env.govern("replaceAgentKey", agent, new.address)
    _out_of_scope(env, new, usdc)
    env.govern("setLimits", new.address, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    assert env.available(usdc, new.address) <= spent + _REFILL


def test_an_agent_rotating_itself_after_a_removal_gets_no_budget_back(env: Env) -> None:
    usdc, agent = env.usdc.address, env.agent.address
    spent = _spend_half_of_usdc(env)
    env.send(env.vault.functions.removeToken(agent, usdc), env.owners[0])
    new = key("found-self")
    rotate(env, rotation(env, env.agent, new, nonce=77), sender=env.agent)
    _out_of_scope(env, new, usdc)
    env.govern("setLimits", new.address, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    assert env.available(usdc, new.address) <= spent + _REFILL
    # the other words moved as before, and the old key keeps nothing it could use
    assert set(env.vault.functions.getAgentTokens(new.address).call()) == {ETH, usdc}
    assert env.available(usdc, agent) == 0 and env.available(ETH, agent) == 0


def test_a_removed_eth_budget_follows_the_key(env: Env) -> None:
    agent = env.agent.address
    for _ in range(3):
        env.pay(ETH, fresh_address("found-eth"), ETH_MAX)
    spent = env.available(ETH)
    refill = ETH_ALLOWANCE // 1000  # ~86 s at 5 ETH a day
    assert spent <= ETH_ALLOWANCE - 3 * ETH_MAX + refill
    env.send(env.vault.functions.removeToken(agent, ETH), env.owners[1])
    new = key("found-eth")
    rotate(env, rotation(env, env.agent, new, nonce=78))
    env.govern("setLimits", new.address, ETH, ETH_MAX, ETH_ALLOWANCE, PERIOD)
    assert env.available(ETH, new.address) <= spent + refill


def test_a_sub_agent_rotating_itself_keeps_a_removed_tokens_spent_budget(env: Env) -> None:
    usdc = env.usdc.address
    parent = Account.from_key(Web3.keccak(text="rotation-found-parent"))
    child = Account.from_key(Web3.keccak(text="rotation-found-child"))
    for k in (parent, child):
        env.send_eth(env.deployer, k.address, ETHER)
    env.govern_signed(
        [
            ("addAgent", (parent.address, 0, 0, False)),
            ("setLimits", (parent.address, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)),
        ],
        nonce=next(_nonces),
    )
    v = env.vault.functions
    env.send(v.addSubAgent(parent.address, child.address, 0, 0, False), parent)
    child_limits = (50 * USDC, 400 * USDC, PERIOD)
    env.send(v.setSubAgentLimits(child.address, usdc, *child_limits), parent)
    for _ in range(4):
        assert env.pay(usdc, fresh_address("found-sub"), 50 * USDC, agent=child)[1] == 0
    spent = env.available(usdc, child.address)
    assert spent <= 200 * USDC + _REFILL
    env.send(v.removeToken(child.address, usdc), parent)  # the parent narrows its sub-agent
    new = key("found-child-new")
    rotate(env, rotation(env, child, new, nonce=79), sender=child)
    assert env.vault.functions.getSubAgents(parent.address).call() == [new.address]
    env.send(v.setSubAgentLimits(new.address, usdc, *child_limits), parent)
    assert env.available(usdc, new.address) <= spent + _REFILL


def _layout_word(env: Env, offset: int, *keys: str) -> int:
    """A word of the vault's namespace: member `offset` (0 config, 3 policies), through `keys`."""
    inner = int.from_bytes(Web3.keccak(text="agentwallet.vault"), "big") - 1
    slot = (int.from_bytes(Web3.keccak(inner.to_bytes(32, "big")), "big") & ~0xFF) + offset
    for k in keys:
        slot = int.from_bytes(
            Web3.keccak(bytes.fromhex(k[2:]).rjust(32, b"\0") + slot.to_bytes(32, "big")), "big"
        )
    return int.from_bytes(env.w3.eth.get_storage_at(env.vault.address, slot), "big")


def _registered_tokens(env: Env) -> int:
    """The token registry's count (bits 32-39 of the config word)."""
    return (_layout_word(env, 0) >> 32) & 0xFF


def test_rotation_with_a_full_token_registry_fits_in_one_transaction(anvil_env: Env) -> None:
    """The worst case: the rotated key holds a word for every token the vault can register (ETH
    and 255 more), all but two of them removed from its scope; every one moves."""
    env, agent = anvil_env, anvil_env.agent.address
    v = env.vault.functions
    free = MAX_TOKENS_PER_AGENT - len(v.getAgentTokens(agent).call())
    added: list[str] = []
    while _registered_tokens(env) < MAX_TOKENS:
        batch = [
            fresh_address(f"registry-{len(added) + i}")
            for i in range(min(free, MAX_TOKENS - _registered_tokens(env)))
        ]
        env.govern_signed(
            [("setLimits", (agent, t, 1, 1 + i, PERIOD)) for i, t in enumerate(batch)],
            nonce=next(_nonces),
        )
        for t in batch:
            env.send(v.removeToken(agent, t), env.owners[0])
        added += batch
    assert _registered_tokens(env) == MAX_TOKENS
    new = key("full-registry")
    receipt = rotate(env, rotation(env, env.agent, new, nonce=80))
    assert receipt["gasUsed"] < TX_GAS_CAP, receipt["gasUsed"]
    print(f"rotation, {len(added)} removed tokens + 2 in scope: {receipt['gasUsed']:,} gas")
    scope = 1 << 48  # PolicyWord.SCOPE
    for t in (ETH, env.usdc.address):  # in scope: the new key's now, the old key's unscoped
        assert _layout_word(env, 3, new.address, t) & scope
        assert not _layout_word(env, 3, agent, t) & scope
    for t in (added[0], added[-1]):  # moved as they were: unscoped
        assert _layout_word(env, 3, new.address, t) == _layout_word(env, 3, agent, t) != 0
        assert v.getPolicy(new.address, t).call()[2] == 0
    assert set(v.getAgentTokens(new.address).call()) == {ETH, env.usdc.address}
