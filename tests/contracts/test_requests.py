"""Request storage: a hash per request, slots an agent's lineage reuses, and the packed words the
hot paths read whole (their bit offsets checked against the views)."""

from __future__ import annotations

from web3 import Web3

from .conftest import (
    CANCELLED,
    CLOSED,
    EXECUTED,
    PENDING,
    USDC,
    Env,
    expect_revert,
    fresh_address,
)

LAYOUT_SLOT = 0xE79E714ABE350F418DA5842700FA6185B1C082738DECF0346D4AA06561FC6200


def test_closed_request_slots_are_reused_by_the_same_agent(env: Env) -> None:
    first = env.escalate()
    assert env.request(first)["slot"] == first
    env.send(env.rq.cancel(first), env.agent)
    assert env.status(first) == CANCELLED
    second = env.escalate(600 * USDC)
    assert env.request(second)["slot"] == first  # the freed slot, not a fresh one
    # the first request is gone for good: its slot holds the second
    assert env.status(first) == CLOSED
    with expect_revert("RequestMismatch", first):  # its slot holds another request now
        env.send(env.rq.approve(first), env.owners[0])
    receipt = env.send(
        env.rq.executeWithSignatures(second, env.packed(second, env.owners[:2])), env.outsider
    )
    assert env.event(receipt, "RequestExecuted")["requestId"] == second
    assert env.status(second) == EXECUTED
    # slots form a list: two closed slots serve the next two requests, last freed first
    a, b = env.escalate(), env.escalate()
    env.send(env.rq.reject(a), env.owners[1])
    env.send(env.rq.reject(b), env.owners[1])
    c, d = env.escalate(), env.escalate()
    slots = {env.request(c)["slot"], env.request(d)["slot"]}
    assert slots == {env.request(a)["slot"], env.request(b)["slot"]}
    assert env.status(c) == env.status(d) == PENDING


def test_a_request_cannot_be_acted_on_with_other_contents(env: Env) -> None:
    rid = env.escalate()
    original = env.rq.req(rid)
    for index, value in (
        (5, fresh_address("thief")),
        (6, 10**30),
        (2, 99),
        (1, env.owners[0].address),
    ):
        forged = list(original)
        forged[index] = value
        with expect_revert("RequestMismatch", rid):
            env.send(env.vault.functions.approvePayment(tuple(forged)), env.owners[0])
    forged = list(original)
    forged[3] = rid + 1000  # another slot: nothing there
    with expect_revert("UnknownRequest", rid):
        env.send(env.vault.functions.approvePayment(tuple(forged)), env.owners[0])
    # a governance proposal executed with another call than the one proposed
    _r, gid = env.propose("setRequestExpiry", 2 * 86_400)
    other = env.calldata("setRequestExpiry", 3 * 86_400)
    with expect_revert("DataMismatch", gid):
        env.send(env.vault.functions.approveProposal(env.rq.req(gid), other), env.owners[1])


def test_the_packed_word_offsets_match_the_views(env: Env) -> None:
    """The hot paths read the agent and config words with fixed bit offsets (AW_*, CW_*)."""
    config = int.from_bytes(env.w3.eth.get_storage_at(env.vault.address, LAYOUT_SLOT), "big")
    assert config & 0xFF == env.vault.functions.threshold().call()
    assert (config >> 16) & 0xFF == int(env.vault.functions.paused().call())
    assert (config >> 24) & 0xFF == len(env.vault.functions.getAgents().call())
    assert (config >> 40) & (2**32 - 1) == env.vault.functions.requestExpiry().call()
    assert (config >> 72) & (2**16 - 1) == env.vault.functions.maxOpenRequests().call()
    assert (config >> 184) & (2**64 - 1) == env.vault.functions.requestCount().call()
    env.escalate()
    # agents: the third member of the layout, a mapping at LAYOUT_SLOT + 2
    slot = int.from_bytes(
        Web3.keccak(
            bytes.fromhex(env.agent.address[2:].rjust(64, "0"))
            + (LAYOUT_SLOT + 2).to_bytes(32, "big")
        ),
        "big",
    )
    word = int.from_bytes(env.w3.eth.get_storage_at(env.vault.address, slot), "big")
    info = env.vault.functions.getAgent(env.agent.address).call()
    assert word & 0xFF == info[0]  # status
    assert (word >> 8) & 0xFF == int(info[1])  # useAllowlist
    assert (word >> 16) & (2**40 - 1) == info[2]  # validAfter
    assert (word >> 56) & (2**40 - 1) == info[3]  # validUntil
    assert (word >> 96) & (2**16 - 1) == info[4] == 1  # openRequests
    assert (word >> 112) & (2**32 - 1) == info[5]  # lineage


def test_risk_adding_calls_run_only_inside_governance(env: Env) -> None:
    # directly, by an owner
    with expect_revert("OnlyVault"):
        env.send(env.vault.functions.addAgent(env.owners[0].address, 0, 0, False), env.owners[0])
    # from inside a payment (a recipient re-entering while the vault pays it)
    attacker = env.deploy("ReentrantRecipient")
    env.govern_signed([("addAgent", (attacker.address, 0, 0, False))], nonce=4242)
    env.govern_signed(
        [("setLimits", (attacker.address, "0x" + "00" * 20, 10**18, 10**18, 86_400))], nonce=4243
    )
    grab = env.calldata("setLimits", attacker.address, "0x" + "00" * 20, 10**30, 10**30, 86_400)
    env.send(attacker.functions.arm(env.vault.address, grab, False), env.deployer)
    pay = env.calldata("pay", "0x" + "00" * 20, attacker.address, 10**15, b"\0" * 32)
    env.send(attacker.functions.call(env.vault.address, pay), env.deployer)
    assert attacker.functions.attempted().call() is True
    assert attacker.functions.reentryOk().call() is False
    assert env.vault.functions.getPolicy(attacker.address, "0x" + "00" * 20).call()[1] == 10**18
