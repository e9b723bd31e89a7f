"""Issue 9, tried as an attacker would: budgets never come back, no single owner can freeze the
vault, revocation ends an agent, and calls out of the vault are bounded.

For each rule: who gains if it breaks, and the test plays that party."""

from __future__ import annotations

import itertools
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from .conftest import (
    AGENT_REVOKED,
    AGENT_REVOKED_REQUEST,
    DAY,
    ETH,
    ETHER,
    EXPIRED,
    FIXED_GAS,
    PENDING,
    REASON_OVER_ALLOWANCE,
    REJECTED,
    USDC,
    Env,
    expect_revert,
    fresh_address,
    ref,
    sorted_accounts,
)

_nonces = itertools.count(1_000)


def new_agent(
    env: Env,
    label: str,
    limits: dict[str, tuple[int, int, int]],
    *,
    allowlist: bool = False,
    recipients: tuple[str, ...] = (),
) -> LocalAccount:
    """A funded-by-nothing agent key added with ``limits`` in one signed governance batch."""
    key: LocalAccount = Account.from_key(Web3.keccak(text=f"hardening-agent-{label}"))
    calls: list[tuple[str, tuple[Any, ...]]] = [("addAgent", (key.address, 0, 0, allowlist))]
    calls += [("setLimits", (key.address, t, m, a, p)) for t, (m, a, p) in limits.items()]
    calls += [("allowRecipient", (key.address, r)) for r in recipients]
    env.govern_signed(calls, nonce=next(_nonces))
    env.send_eth(env.deployer, key.address, ETHER)  # gas money
    return key


def set_limits(env: Env, agent: str, token: str, maximum: int, allowance: int, period: int) -> None:
    env.govern_signed(
        [("setLimits", (agent, token, maximum, allowance, period))], nonce=next(_nonces)
    )


def available(env: Env, agent: str, token: str) -> int:
    return int(env.vault.functions.getPolicy(agent, token).call()[3])


# ================================================================================ rule 1
# Who gains if it breaks: the agent (a leaked key), which spends more than the owners allowed
# because a routine owner action handed a spent budget back.


def test_drained_budget_removed_and_re_added_with_a_longer_period_stays_drained(env: Env) -> None:
    usdc = env.usdc.address
    agent = new_agent(env, "drain", {usdc: (1_000 * USDC, 1_000 * USDC, DAY)})
    env.pay(usdc, fresh_address("shop"), 1_000 * USDC, agent=agent)
    env.send(env.vault.functions.removeToken(agent.address, usdc), env.owners[2])
    set_limits(env, agent.address, usdc, 1_000 * USDC, 1_000 * USDC, 30 * DAY)
    # the bug handed back ~967 USDC at once; only the seconds that passed refill (at 1,000/30 days)
    assert available(env, agent.address, usdc) <= 1 * USDC
    _receipt, rid = env.pay(usdc, fresh_address("shop"), 500 * USDC, agent=agent)
    assert rid != 0 and env.request(rid)["reasons"] == REASON_OVER_ALLOWANCE


def test_half_spent_budget_re_added_with_a_smaller_allowance_keeps_what_was_spent(env: Env) -> None:
    usdc = env.usdc.address
    agent = new_agent(env, "half", {usdc: (1_000 * USDC, 1_000 * USDC, DAY)})
    env.pay(usdc, fresh_address("shop"), 500 * USDC, agent=agent)
    env.send(env.vault.functions.removeToken(agent.address, usdc), env.owners[0])
    set_limits(env, agent.address, usdc, 1_000 * USDC, 600 * USDC, DAY)
    # 600 - 500 spent = 100 (plus a few seconds of refill), not the ~300 of the bug
    assert 100 * USDC <= available(env, agent.address, usdc) <= 101 * USDC


def test_raising_an_allowance_mid_period_adds_nothing_at_once(env: Env) -> None:
    usdc = env.usdc.address
    agent = new_agent(env, "raise", {usdc: (1_000 * USDC, 1_000 * USDC, DAY)})
    env.pay(usdc, fresh_address("shop"), 600 * USDC, agent=agent)
    before = available(env, agent.address, usdc)
    set_limits(env, agent.address, usdc, 1_000 * USDC, 2_000 * USDC, DAY)
    after = available(env, agent.address, usdc)
    assert 400 * USDC <= after <= before + 1 * USDC  # ~400, not 800
    # ... and it refills at the new rate: half a day later +1,000
    env.chain.increase_time(DAY // 2)
    env.chain.mine()
    assert available(env, agent.address, usdc) >= after + 999 * USDC


def test_revoking_and_re_adding_an_agent_does_not_refill_its_budget(env: Env) -> None:
    usdc = env.usdc.address
    agent = new_agent(env, "revoke-readd", {usdc: (1_000 * USDC, 1_000 * USDC, DAY)})
    env.pay(usdc, fresh_address("shop"), 900 * USDC, agent=agent)
    env.send(env.vault.functions.revokeAgent(agent.address), env.owners[1])
    env.govern_signed(
        [
            ("addAgent", (agent.address, 0, 0, False)),
            ("setLimits", (agent.address, usdc, 1_000 * USDC, 1_000 * USDC, DAY)),
        ],
        nonce=next(_nonces),
    )
    assert available(env, agent.address, usdc) <= 101 * USDC


def test_a_cut_to_zero_then_restore_gives_nothing_back_and_one_owner_cannot_raise(env: Env) -> None:
    usdc = env.usdc.address
    agent = new_agent(env, "cut", {usdc: (1_000 * USDC, 1_000 * USDC, DAY)})
    env.pay(usdc, fresh_address("shop"), 700 * USDC, agent=agent)
    env.send(env.vault.functions.reduceLimits(agent.address, usdc, 0, 0), env.owners[2])
    assert available(env, agent.address, usdc) == 0
    # a hostile owner alone cannot raise (reduceLimits only lowers; setLimits needs the vault)
    with expect_revert("LimitNotReduced"):
        env.send(env.vault.functions.reduceLimits(agent.address, usdc, 0, 1 * USDC), env.owners[2])
    with expect_revert("OnlyVault"):
        env.send(
            env.vault.functions.setLimits(agent.address, usdc, 1, 1_000 * USDC, DAY), env.owners[2]
        )
    set_limits(env, agent.address, usdc, 1_000 * USDC, 1_000 * USDC, DAY)
    assert available(env, agent.address, usdc) == 0  # spent stays spent; only time refills


def test_a_token_never_scoped_before_starts_with_a_full_budget(env: Env) -> None:
    usdc = env.usdc.address
    agent = new_agent(env, "fresh", {usdc: (100 * USDC, 1_000 * USDC, DAY)})
    assert available(env, agent.address, usdc) == 1_000 * USDC


# ================================================================================ rule 2
# Who gains if it breaks: one compromised owner, who freezes the funds (pause, then reject every
# unpause) or holds them hostage.


def test_a_compromised_owner_cannot_freeze_the_vault_and_the_threshold_recovers_in_one_tx(
    env: Env,
) -> None:
    honest, hostile = env.owners[:2], env.owners[2]
    vault_eth, vault_usdc = env.eth_of(env.vault.address), env.usdc_of(env.vault.address)
    # the attacker brakes everything it can alone ...
    env.send(env.vault.functions.pause(), hostile)
    env.send(env.vault.functions.pauseAgent(env.agent.address), hostile)
    spam = [
        env.propose("addOwner", fresh_address(f"spam{i}"), 1, proposer=hostile)[1] for i in range(3)
    ]
    # ... rejects the honest owners' unpause proposal: one no is not a veto any more
    _r, unpause_id = env.propose("unpause")
    receipt = env.send(env.rq.reject(unpause_id), hostile)
    event = env.event(receipt, "RequestRejected")
    assert (event["rejections"], event["closed"]) == (1, False)
    assert env.status(unpause_id) == PENDING
    # ... and cannot grab the governance nonces the honest owners will sign over
    space = env.vault.functions.governanceNonceSpace().call()
    with expect_revert("NotNonceAuthority"):
        env.send(env.vault.functions.invalidateNonces(space, 0, 2**256 - 1), hostile)

    # the honest two sign "swap the attacker out, unpause, unpause the agent"; anyone submits
    replacement = fresh_address("new-owner")
    receipt = env.govern_signed(
        [
            ("swapOwner", (hostile.address, replacement)),
            ("unpause", ()),
            ("unpauseAgent", (env.agent.address,)),
        ],
        honest,
        nonce=7,
        sender=env.spare[0],
    )
    executed = env.event(receipt, "GovernanceExecuted")
    assert executed["signers"] == [a.address for a in sorted_accounts(honest)]
    assert env.vault.functions.paused().call() is False
    assert hostile.address not in env.vault.functions.getOwners().call()

    # nothing the removed owner does re-freezes the vault
    for fn in (
        env.vault.functions.pause(),
        env.vault.functions.pauseAgent(env.agent.address),
        env.rq.reject(unpause_id),
    ):
        with expect_revert("NotOwner"):
            env.send(fn, hostile)
    with expect_revert("NonceAlreadyUsed"):  # replaying the recovery is a no-op at best
        env.govern_signed([("unpause", ())], honest, nonce=7)
    # its spam can never reach the threshold on its own approval
    for rid in spam:
        assert env.vault.functions.approvalCount(rid).call() == 0
    # funds intact, agent paying again
    assert env.eth_of(env.vault.address) == vault_eth
    assert env.usdc_of(env.vault.address) == vault_usdc
    assert env.pay(ETH, fresh_address("after"), ETHER // 10)[1] == 0


def test_a_signed_batch_needs_the_threshold_and_current_owners(env: Env) -> None:
    hostile = env.owners[2]
    with expect_revert("NotEnoughSignatures"):
        env.govern_signed([("unpause", ())], [hostile], nonce=next(_nonces))
    outsider = env.outsider
    with expect_revert("NotAnOwner"):
        env.govern_signed([("unpause", ())], [hostile, outsider], nonce=next(_nonces))
    # a batch may only hold governance calls
    with expect_revert("NotGovernanceCall"):
        env.govern_signed([("pause", ())], nonce=next(_nonces))
    with expect_revert("NotGovernanceCall"):
        env.govern_signed([("propose", (b"", ref("x")))], nonce=next(_nonces))
    with expect_revert("EmptyBatch"):
        env.govern_signed([], nonce=next(_nonces))
    with expect_revert("SignatureExpired"):
        env.govern_signed([("unpause", ())], nonce=next(_nonces), deadline=env.now() - 1)


def test_independent_signed_batches_never_cancel_each_other(env: Env) -> None:
    a, b = fresh_address("batch-a"), fresh_address("batch-b")
    # both signed against the same state, submitted in the "wrong" order
    env.govern_signed([("addAgent", (b, 0, 0, False))], nonce=902)
    env.govern_signed([("addAgent", (a, 0, 0, False))], nonce=901)
    for agent in (a, b):
        assert env.vault.functions.getAgent(agent).call()[0] == 1


def test_a_signed_batch_is_atomic_and_its_nonce_survives_a_failure(env: Env) -> None:
    agent = fresh_address("atomic")
    with expect_revert("InvalidPeriod"):
        env.govern_signed(
            [("addAgent", (agent, 0, 0, False)), ("setLimits", (agent, ETH, 1, 1, 0))], nonce=903
        )
    assert env.vault.functions.getAgent(agent).call()[0] == 0
    assert (
        env.vault.functions.isNonceUsed(
            env.vault.functions.governanceNonceSpace().call(), 903
        ).call()
        is False
    )


def test_governance_signatures_do_not_replay_on_another_vault_or_chain(env: Env) -> None:
    other = env.create_vault([o.address for o in env.owners], 2, salt=b"replay-target")
    data = [env.calldata("unpause")]
    deadline = env.now() + DAY
    typed = env.typed_governance(data, 5, deadline)  # signed for env.vault
    packed = env.pack([(s.address, env.sign_typed(typed, s)) for s in env.owners[:2]])
    env.send(other.functions.pause(), env.owners[0])
    with expect_revert("NotAnOwner"):  # recovers to some stranger
        env.send(other.functions.executeGovernance(data, 5, deadline, packed), env.outsider)
    wrong_chain = env.typed_governance(data, 6, deadline, chain_id=env.chain.chain_id + 1)
    packed = env.pack([(s.address, env.sign_typed(wrong_chain, s)) for s in env.owners[:2]])
    env.send(env.vault.functions.pause(), env.owners[0])
    with expect_revert("NotAnOwner"):
        env.send(env.vault.functions.executeGovernance(data, 6, deadline, packed), env.outsider)


def test_a_governance_request_dies_only_when_the_threshold_is_out_of_reach(env: Env) -> None:
    _r, gid = env.propose("setRequestExpiry", 2 * DAY)
    receipt = env.send(env.rq.reject(gid), env.owners[1])
    assert env.event(receipt, "RequestRejected")["closed"] is False
    with expect_revert("AlreadyRejected"):
        env.send(env.rq.reject(gid), env.owners[1])
    receipt = env.send(env.rq.reject(gid), env.owners[2])
    event = env.event(receipt, "RequestRejected")
    assert (event["rejections"], event["closed"]) == (2, True)
    assert env.status(gid) == REJECTED
    with expect_revert("RequestNotPending", gid, REJECTED):
        env.send(env.rq.approve(gid), env.owners[1])


def test_one_owner_still_rejects_an_agents_payment_request_alone(env: Env) -> None:
    rid = env.escalate()
    receipt = env.send(env.rq.reject(rid), env.owners[2])
    event = env.event(receipt, "RequestRejected")
    assert (event["rejections"], event["closed"]) == (1, True)
    assert env.status(rid) == REJECTED


# ================================================================================ rule 3
# Who gains if it breaks: a leaked agent key, whose queued asks co-signers might still approve,
# or whose old rights come back when the address is re-added.


def test_revoking_an_agent_closes_its_open_requests(env: Env) -> None:
    first, second = env.escalate(), env.escalate(600 * USDC)
    lineage = env.vault.functions.getAgent(env.agent.address).call()[5]
    receipt = env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[0])
    closed = env.event(receipt, "OpenRequestsClosed")
    assert (closed["agent"], closed["lineage"], closed["count"]) == (env.agent.address, lineage, 2)
    sigs = env.packed(first, env.owners[:2])
    for rid in (first, second):
        assert env.status(rid) == AGENT_REVOKED_REQUEST
        with expect_revert("RequestNotPending", rid, AGENT_REVOKED_REQUEST):
            env.send(env.rq.approve(rid), env.owners[1])
    with expect_revert("RequestNotPending", first, AGENT_REVOKED_REQUEST):
        env.send(env.rq.executeWithSignatures(first, sigs), env.outsider)
    with expect_revert("NotRequestAgent"):
        env.send(env.rq.cancel(first), env.agent)


def test_re_adding_a_revoked_address_starts_from_nothing(env: Env) -> None:
    shop = fresh_address("allowed-shop")
    agent = new_agent(
        env,
        "readd",
        {ETH: (ETHER, 5 * ETHER, DAY), env.usdc.address: (100 * USDC, 1_000 * USDC, DAY)},
        allowlist=True,
        recipients=(shop,),
    )
    _r, old_request = env.pay(ETH, shop, 2 * ETHER, agent=agent)
    assert old_request != 0
    env.send(env.vault.functions.revokeAgent(agent.address), env.owners[2])
    before = env.vault.functions.getAgent(agent.address).call()
    assert before[0] == AGENT_REVOKED
    env.govern_signed([("addAgent", (agent.address, 0, 0, True))], nonce=next(_nonces))
    info = env.vault.functions.getAgent(agent.address).call()
    assert (
        info[0] == 1 and info[4] == 0 and info[5] != before[5]
    )  # active, no requests, new lineage
    assert env.vault.functions.getAgentTokens(agent.address).call() == []
    for token in (ETH, env.usdc.address):
        assert tuple(env.vault.functions.getPolicy(agent.address, token).call()) == (0, 0, 0, 0)
    assert env.vault.functions.isRecipientAllowed(agent.address, shop).call() is False
    # nothing it pays goes through, and the old request stays dead even for the re-added key
    _r, rid = env.pay(ETH, shop, 1, agent=agent)
    assert rid != 0
    assert env.status(old_request) == AGENT_REVOKED_REQUEST
    with expect_revert("RequestNotPending", old_request, AGENT_REVOKED_REQUEST):
        env.send(env.rq.approve(old_request), env.owners[0])


def test_an_expired_request_of_a_revoked_agent_can_be_marked_and_frees_nothing(env: Env) -> None:
    rid = env.escalate()
    env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[0])
    env.chain.increase_time(2 * DAY)
    env.send(env.rq.expire(rid), env.outsider, gas=FIXED_GAS)
    assert env.status(rid) == EXPIRED


# ================================================================================ rule 4
# Who gains if it breaks: a hostile recipient or owner contract, which makes the payer or the
# relayer pay for data or gas it never asked for.


def _memory_cost(size: int) -> int:
    words = (size + 31) // 32
    return 3 * words + words * words // 512


def test_an_eth_recipient_returning_a_lot_of_data_costs_the_payer_nothing_extra(env: Env) -> None:
    bomb = env.deploy("ReturnBomb")
    env.pay(ETH, bomb.address, 1)  # warm the recipient's balance and the budget word
    quiet, _ = env.pay(ETH, bomb.address, 1)
    size = 64 * 1024
    env.send(bomb.functions.setSize(size), env.deployer)
    loud, rid = env.pay(ETH, bomb.address, 1)
    assert rid == 0
    extra = loud["gasUsed"] - quiet["gasUsed"]
    # the callee pays for its own memory; copying it back would cost as much again
    assert extra < _memory_cost(size) + 2_000, extra


def test_a_hostile_erc1271_owner_gets_bounded_gas_and_is_read_32_bytes_deep(env: Env) -> None:
    hostile = env.deploy("HostileOwner")
    honest = env.owners[0]
    vault = env.create_vault([honest.address, hostile.address], 2, salt=b"hostile-1271")
    env.send_eth(env.deployer, vault.address, ETHER)
    payment = (ETH, ETH, fresh_address("paid"), 1, ref("p"), 1, env.now() + DAY)
    typed = env.typed_payment(payment, vault=vault)
    from agentwallet.protocol.signatures import OwnerSignature

    packed = env.pack(
        [
            OwnerSignature(honest.address, env.sign_typed(typed, honest)),
            OwnerSignature(hostile.address, b"anything", contract=True),
        ]
    )
    # burns everything it is given: only ERC1271_GAS (250,000), then InvalidSignature
    env.send(hostile.functions.setMode(1, 0), env.deployer)
    call = vault.functions.payWithSignatures(payment, packed)
    with expect_revert("InvalidSignature", hostile.address):
        call.call({"from": env.outsider.address, "gas": 5_000_000})
    # magic value followed by 1 MB: accepted, and the megabyte is never copied
    env.send(hostile.functions.setMode(2, 1 << 20), env.deployer)
    with expect_revert("InvalidSignature", hostile.address):  # 1 MB of memory is > 250k gas
        call.call({"from": env.outsider.address, "gas": 5_000_000})
    env.send(hostile.functions.setMode(2, 1024), env.deployer)
    receipt = env.send(call, env.outsider)
    assert receipt["gasUsed"] < 150_000
    # garbage of any size is a refusal, not a crash
    env.send(hostile.functions.setMode(3, 4096), env.deployer)
    payment2 = (ETH, ETH, fresh_address("paid"), 1, ref("p"), 2, env.now() + DAY)
    packed2 = env.pack(
        [
            OwnerSignature(
                honest.address, env.sign_typed(env.typed_payment(payment2, vault=vault), honest)
            ),
            OwnerSignature(hostile.address, b"anything", contract=True),
        ]
    )
    with expect_revert("InvalidSignature", hostile.address):
        env.send(vault.functions.payWithSignatures(payment2, packed2), env.outsider)


def test_request_ids_cannot_wrap(anvil_env: Env) -> None:
    env = anvil_env  # needs anvil_setStorageAt
    # Config is the first word of the namespace; requestCount is bits 184..247
    slot = int("e79e714abe350f418da5842700fa6185b1c082738decf0346d4aa06561fc6200", 16)
    word = int.from_bytes(env.w3.eth.get_storage_at(env.vault.address, slot), "big")
    word |= ((1 << 64) - 1) << 184
    env.chain._rpc(
        "anvil_setStorageAt", [env.vault.address, hex(slot), "0x" + word.to_bytes(32, "big").hex()]
    )
    assert env.vault.functions.requestCount().call() == (1 << 64) - 1
    with expect_revert("CounterOverflow"):
        env.pay(env.usdc.address, fresh_address("wrap"), 500 * USDC)
