"""The FAST bit cached in each policy word, attacked: it must never let an agent pay when the
full rules forbid it, and the bounded agent / token lists that keep it cheap must hold.

Each policy word (``_policies[agent][token]``) caches a FAST bit ("vault not paused, agent
Active, past validAfter, no validUntil, token in scope") and an ALLOWLIST bit (the agent's
``useAllowlist``); ``pay`` with FAST set reads only that word. Every test here first *warms*
the fast path (a direct payment, then the raw storage word is read to prove FAST is set), then
applies a risk-reducing or status-changing action, then attacks with a payment and asserts the
exact revert or escalation and that no balance moved.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from tests.contracts.conftest import (
    AGENT_ACTIVE,
    AGENT_PAUSED,
    AGENT_REVOKED,
    CANCELLED,
    ETH,
    ETH_ALLOWANCE,
    ETH_MAX,
    ETHER,
    FIXED_GAS,
    PENDING,
    PERIOD,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_RECIPIENT_NOT_ALLOWED,
    REASON_TOKEN_NOT_IN_SCOPE,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    Env,
    expect_revert,
    fresh_address,
    ref,
)

# Policy word layout (PolicyWord.sol), high to low: | maxPerPayment (88) | allowance (88) |
# period (29) | RESERVED (2) | SCOPE | ALLOWLIST | FAST | tat (46, in 1/256 s) |
FAST = 1 << 46
ALLOWLIST = 1 << 47
SCOPE = 1 << 48
PERIOD_SHIFT = 51
MASK_29 = (1 << 29) - 1
MASK_88 = (1 << 88) - 1
TAT_MASK = (1 << 46) - 1
MAX_AGENTS = 64
MAX_TOKENS_PER_AGENT = 8
#: EIP-7825 (Osaka): the most gas one transaction may use. A one-owner emergency action must
#: always fit in one transaction, whatever the vault holds.
TX_GAS_CAP = 2**24

# ------------------------------------------------------------------------------------ helpers

_POLICIES_SLOT: list[int] = []  # the storage slot of the `policies` mapping, found once


def _layout_slot() -> int:
    """The ERC-7201 slot of the vault's storage namespace ``agentwallet.vault``."""
    inner = int.from_bytes(Web3.keccak(text="agentwallet.vault"), "big") - 1
    return int.from_bytes(Web3.keccak(inner.to_bytes(32, "big")), "big") & ~0xFF


def _fields(word: int) -> tuple[int, int, int]:
    """(maxPerPayment, allowance, period) of a policy word."""
    return word >> 168, (word >> 80) & MASK_88, (word >> PERIOD_SHIFT) & MASK_29


def _policy_key(agent: str, token: str, slot: int) -> bytes:
    """Storage key of ``_policies[agent][token]`` with the mapping at ``slot``."""
    inner = Web3.keccak(bytes.fromhex(agent[2:]).rjust(32, b"\0") + slot.to_bytes(32, "big"))
    return Web3.keccak(bytes.fromhex(token[2:]).rjust(32, b"\0") + inner)


def _read_slot(env: Env, key: bytes) -> int:
    raw = env.w3.eth.get_storage_at(env.vault.address, int.from_bytes(key, "big"))
    return int.from_bytes(raw, "big")


def _word(env: Env, agent: str, token: str) -> int:
    """The raw policy word of (agent, token), read from storage.

    The mapping's slot is located the first time, among the first slots of the vault's
    ERC-7201 namespace, by matching the fields of ``getPolicy`` (so the tests do not hard-code
    the layout); the call must then be for a pair in scope. Every read of a pair in scope is
    checked against ``getPolicy`` again (out of scope the view shows zeros, the word keeps its
    limits and budget state).
    """
    policy = env.vault.functions.getPolicy(agent, token).call()
    if not _POLICIES_SLOT:
        assert policy[2] != 0, "locate the policies slot with a pair that has limits"
        base = _layout_slot()
        found = [
            base + i
            for i in range(16)
            if _fields(_read_slot(env, _policy_key(agent, token, base + i))) == tuple(policy[:3])
        ]
        assert len(found) == 1, "policy word not found in storage: did the layout change?"
        _POLICIES_SLOT.append(found[0])
    word = _read_slot(env, _policy_key(agent, token, _POLICIES_SLOT[0]))
    assert bool(word & SCOPE) == (policy[2] != 0)
    if word & SCOPE:
        assert _fields(word) == tuple(policy[:3])
    return word


def _budget(word: int, t: int) -> int:
    """PolicyWord.budget: what the word's budget holds at time ``t``, in scope or not."""
    _max, allowance, period = _fields(word)
    if period == 0:
        return 0
    scaled, now = period << 8, t << 8
    start = max(word & TAT_MASK, now)
    return 0 if start >= now + scaled else (now + scaled - start) * allowance // scaled


def _fast(env: Env, agent: str, token: str) -> bool:
    return _word(env, agent, token) & FAST != 0


def _balance(env: Env, token: str, holder: str) -> int:
    if token == ETH:
        return env.eth_of(holder)
    if token == env.usdc.address:
        return env.usdc_of(holder)
    erc20 = env.contract("TestUSDC", token)
    return int(erc20.functions.balanceOf(holder).call())


def _funds(env: Env, tokens: list[str], holders: list[str]) -> dict[tuple[str, str], int]:
    """Balances of every (token, holder), the vault always included."""
    return {(t, h): _balance(env, t, h) for t in tokens for h in [env.vault.address, *holders]}


def _warm(
    env: Env,
    token: str,
    amount: int,
    *,
    agent: LocalAccount | None = None,
    label: str = "warm",
    gas: int | None = None,
) -> None:
    """A direct payment that leaves FAST set in the (agent, token) word (asserted)."""
    who = agent or env.agent
    to = fresh_address(f"{label}-{who.address}-{token}")
    before = _balance(env, token, to)
    _receipt, request_id = env.pay(token, to, amount, ref(label), agent=who, gas=gas)
    assert request_id == 0
    assert _balance(env, token, to) == before + amount
    assert _fast(env, who.address, token), "the fast path is not warm after a direct payment"


def _blocked(
    env: Env,
    error: str,
    *args: Any,
    token: str,
    amount: int,
    agent: LocalAccount | None = None,
    to: str | None = None,
) -> None:
    """The payment reverts with ``error`` (and ``args``); no balance and no request moves."""
    who = agent or env.agent
    recipient = to or fresh_address(f"blocked-{who.address}-{token}")
    funds = _funds(env, [token], [recipient])
    count = env.vault.functions.requestCount().call()
    with expect_revert(error, *args):
        env.pay(token, recipient, amount, ref("attack"), agent=who)
    # the same answer from a plain eth_call, which does not go through gas estimation
    with expect_revert(error, *args):
        env.vault.functions.pay(token, recipient, amount, ref("attack")).call({"from": who.address})
    assert _funds(env, [token], [recipient]) == funds
    assert env.vault.functions.requestCount().call() == count


def _escalated(
    env: Env,
    reasons: int,
    *,
    token: str,
    amount: int,
    agent: LocalAccount | None = None,
    to: str | None = None,
    gas: int | None = None,
) -> int:
    """The payment becomes a pending request with exactly ``reasons``; nothing is paid (the
    request is then cancelled by the agent)."""
    who = agent or env.agent
    recipient = to or fresh_address(f"escalated-{who.address}-{token}")
    funds = _funds(env, [token], [recipient])
    word = _word(env, who.address, token)
    receipt, request_id = env.pay(token, recipient, amount, ref("attack"), agent=who, gas=gas)
    assert request_id != 0
    created = env.event(receipt, "PaymentRequested")
    assert (created["agent"], created["token"]) == (who.address, token)
    assert (created["to"], created["amount"], created["reasons"]) == (recipient, amount, reasons)
    assert env.events(receipt, "PaymentExecuted") == []
    assert env.status(request_id) == PENDING
    assert _funds(env, [token], [recipient]) == funds
    assert _word(env, who.address, token) == word  # the budget was not consumed
    # withdraw it again so a test can escalate more than MAX_OPEN times
    env.send(env.rq.cancel(request_id), who)
    assert env.status(request_id) == CANCELLED
    return request_id


def _paid(
    env: Env,
    token: str,
    amount: int,
    *,
    agent: LocalAccount | None = None,
    to: str | None = None,
    gas: int | None = None,
) -> None:
    """A direct payment that runs: exactly ``amount`` moves from the vault to ``to``."""
    who = agent or env.agent
    recipient = to or fresh_address(f"paid-{who.address}-{token}")
    vault_before = _balance(env, token, env.vault.address)
    to_before = _balance(env, token, recipient)
    receipt, request_id = env.pay(token, recipient, amount, ref("paid"), agent=who, gas=gas)
    assert request_id == 0
    executed = env.event(receipt, "PaymentExecuted")
    assert (executed["agent"], executed["token"], executed["to"]) == (who.address, token, recipient)
    assert (executed["amount"], executed["ref"]) == (amount, ref("paid"))
    assert env.events(receipt, "PaymentRequested") == []
    assert _balance(env, token, env.vault.address) == vault_before - amount
    assert _balance(env, token, recipient) == to_before + amount


def _agents(env: Env) -> list[str]:
    return list(env.vault.functions.getAgents().call())


def _tokens(env: Env, agent: str) -> list[str]:
    return list(env.vault.functions.getAgentTokens(agent).call())


def _pause(env: Env, owner: int = 2) -> None:
    receipt = env.send(env.vault.functions.pause(), env.owners[owner])
    assert env.event(receipt, "VaultPaused")["by"] == env.owners[owner].address
    assert env.vault.functions.paused().call()


def _unpause(env: Env) -> None:
    receipt, request_id = env.govern("unpause")
    assert env.event(receipt, "VaultUnpaused")["requestId"] == request_id
    assert not env.vault.functions.paused().call()


def _second_agent(env: Env, account: LocalAccount, **kwargs: Any) -> None:
    """Add ``account`` as an agent with the same tUSDC and ETH limits as the main agent."""
    env.add_agent(
        account.address,
        limits={
            env.usdc.address: (USDC_MAX, USDC_ALLOWANCE, PERIOD),
            ETH: (ETH_MAX, ETH_ALLOWANCE, PERIOD),
        },
        **kwargs,
    )


def _extra_token(env: Env) -> Contract:
    token = env.deploy("TestUSDC")
    env.send(token.functions.mint(env.vault.address, 1_000_000 * USDC), env.deployer)
    return token


def _send_all(env: Env, sender: LocalAccount, calls: list[ContractFunction]) -> None:
    """Send ``calls`` back to back (fixed gas, consecutive nonces), then check every receipt:
    much faster than one round trip per transaction for a large set-up."""
    nonce = env.w3.eth.get_transaction_count(sender.address, "pending")
    fees = env.chain.fee_params()
    hashes = []
    for i, fn in enumerate(calls):
        tx: dict[str, Any] = {
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "value": 0,
            "gas": FIXED_GAS,
            "nonce": nonce + i,
            "chainId": env.chain.chain_id,
            **fees,
        }
        hashes.append(env.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    for tx_hash in hashes:
        receipt = env.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
        assert receipt["status"] == 1
        assert len(env.events(receipt, "RequestExecuted")) == 1


# ------------------------------------------------------------------------------------ tests


def test_pause_by_one_owner_stops_warm_agents_on_every_token(env: Env) -> None:
    second = env.spare[0]
    _second_agent(env, second)
    usdc = env.usdc.address
    pairs = [(a, t) for a in (env.agent, second) for t in (usdc, ETH)]
    for agent, token in pairs:
        _warm(env, token, 1 if token == usdc else 1000, agent=agent)

    _pause(env)
    for agent, token in pairs:
        assert not _fast(env, agent.address, token)
        _blocked(env, "VaultIsPaused", token=token, amount=1, agent=agent)
        # an amount that would escalate does not even become a request
        _blocked(env, "VaultIsPaused", token=token, amount=USDC_MAX + 1, agent=agent)

    _unpause(env)
    for agent, token in pairs:
        assert _fast(env, agent.address, token)
        _paid(env, token, 2, agent=agent)


def test_pause_agent_stops_it_and_only_a_full_unpause_path_restores_it(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    _warm(env, usdc, 5 * USDC)
    _warm(env, ETH, ETHER // 10)

    receipt = env.send(v.pauseAgent(agent), env.owners[0])
    assert env.event(receipt, "AgentStatusChanged")["status"] == AGENT_PAUSED
    # an owner may still cut a paused agent's limits: that must not reopen the fast path
    env.send(v.reduceLimits(agent, usdc, USDC_MAX, USDC_ALLOWANCE), env.owners[1])
    env.send(v.reduceLimits(agent, ETH, ETH_MAX // 2, ETH_ALLOWANCE), env.owners[1])
    for token in (usdc, ETH):
        assert not _fast(env, agent, token)
        _blocked(env, "AgentNotActive", agent, AGENT_PAUSED, token=token, amount=1)

    receipt, _rid = env.govern("unpauseAgent", agent)
    assert env.event(receipt, "AgentStatusChanged")["status"] == AGENT_ACTIVE
    for token in (usdc, ETH):
        assert _fast(env, agent, token)
        _paid(env, token, 3)

    # unpausing the agent while the vault is paused must not re-enable it
    _pause(env)
    env.send(v.pauseAgent(agent), env.owners[1])
    env.govern("unpauseAgent", agent)
    assert v.getAgent(agent).call()[0] == AGENT_ACTIVE
    for token in (usdc, ETH):
        assert not _fast(env, agent, token)
        _blocked(env, "VaultIsPaused", token=token, amount=1)

    # ... and unpausing the vault must not re-enable a paused agent
    env.send(v.pauseAgent(agent), env.owners[2])
    _unpause(env)
    for token in (usdc, ETH):
        assert not _fast(env, agent, token)
        _blocked(env, "AgentNotActive", agent, AGENT_PAUSED, token=token, amount=1)

    env.govern("unpauseAgent", agent)
    for token in (usdc, ETH):
        _paid(env, token, 4)
        assert _fast(env, agent, token)


def test_revoked_agent_stays_blocked_and_comes_back_only_as_a_new_lineage(env: Env) -> None:
    """Rule change: revoking used to keep the agent's token list and limits, and re-adding the
    address brought them back. Now revoking takes every token out of scope (each word keeps its
    limits and budget state), empties the token list, and re-adding the address starts a new
    lineage with no tokens, no limits and no allowlist entries; limits granted again for a
    token it had spent still cannot refill that budget."""
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    allowed = fresh_address("revoked-allowed")
    env.govern("allowRecipient", agent, allowed)
    _warm(env, usdc, 60 * USDC)
    _warm(env, ETH, ETHER // 2)
    lineage = v.getAgent(agent).call()[5]
    limits = {usdc: (USDC_MAX, USDC_ALLOWANCE), ETH: (ETH_MAX, ETH_ALLOWANCE)}
    words = {t: _word(env, agent, t) for t in limits}
    assert agent in _agents(env)

    receipt = env.send(v.revokeAgent(agent), env.owners[1])
    assert env.event(receipt, "AgentStatusChanged")["status"] == AGENT_REVOKED
    assert agent not in _agents(env)
    assert _tokens(env, agent) == []
    flags = SCOPE | FAST | ALLOWLIST
    for token in limits:
        word = _word(env, agent, token)
        assert word & flags == 0
        assert word & ~flags == words[token] & ~flags  # limits and budget state are kept
        assert tuple(v.getPolicy(agent, token).call()) == (0, 0, 0, 0)
        _blocked(env, "AgentNotActive", agent, AGENT_REVOKED, token=token, amount=1)
    assert not v.isRecipientAllowed(agent, allowed).call()

    # nothing that rewrites the flags may bring a revoked agent back: the risk-adding calls
    # refuse it, the risk-reducing ones find nothing in scope, a vault pause + unpause skips it
    for function, args in (
        ("setLimits", (agent, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)),
        ("allowRecipient", (agent, allowed)),
        ("unpauseAgent", (agent,)),
    ):
        _r, gid = env.propose(function, *args)
        with expect_revert("AgentNotActive", agent, AGENT_REVOKED):
            env.send(env.rq.approve(gid), env.owners[1])
    with expect_revert("TokenNotInScope", agent, ETH):
        env.send(v.reduceLimits(agent, ETH, ETH_MAX, ETH_ALLOWANCE), env.owners[2])
    with expect_revert("TokenNotInScope", agent, usdc):
        env.send(v.removeToken(agent, usdc), env.owners[2])
    env.send(v.enforceAllowlist(agent), env.owners[0])
    _pause(env)
    _unpause(env)
    assert agent not in _agents(env)
    for token in limits:
        assert not _fast(env, agent, token)
        _blocked(env, "AgentNotActive", agent, AGENT_REVOKED, token=token, amount=1, to=allowed)

    # re-adding it (threshold): a new lineage that starts from nothing
    receipt, gid = env.govern("addAgent", agent, 0, 0, False)
    info = v.getAgent(agent).call()
    assert (info[0], info[1], info[4]) == (AGENT_ACTIVE, False, 0)
    assert info[5] != lineage
    assert env.event(receipt, "AgentConfigured")["lineage"] == info[5]
    assert agent in _agents(env)
    assert _tokens(env, agent) == []
    assert not v.isRecipientAllowed(agent, allowed).call()
    for token in limits:
        assert tuple(v.getPolicy(agent, token).call()) == (0, 0, 0, 0)
        _escalated(env, REASON_TOKEN_NOT_IN_SCOPE, token=token, amount=1, to=allowed)

    # the old limits granted again: what was spent is still spent (only time refills it)
    for token, (maximum, allowance) in limits.items():
        _r, gid = env.propose("setLimits", agent, token, maximum, allowance, PERIOD)
        t = env.now() + 10
        before = _budget(_word(env, agent, token), t)
        assert before < allowance
        env.set_next_timestamp(t)
        env.send(env.rq.approve(gid), env.owners[1], gas=FIXED_GAS)
        now = v.getPolicy(agent, token).call()
        assert tuple(now[:3]) == (maximum, allowance, PERIOD)
        assert now[3] <= before
        assert _fast(env, agent, token)
        _paid(env, token, 7)
    # ... and the allowlist has to be granted again as well
    env.send(v.enforceAllowlist(agent), env.owners[0])
    _escalated(env, REASON_RECIPIENT_NOT_ALLOWED, token=usdc, amount=1, to=allowed)
    env.govern("allowRecipient", agent, allowed)
    _paid(env, usdc, 1, to=allowed)


def test_enforce_allowlist_on_a_warm_agent_escalates_other_recipients(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    allowed = fresh_address("allowlisted")
    stranger = fresh_address("stranger")
    env.govern("allowRecipient", agent, allowed)
    _paid(env, usdc, 5 * USDC, to=stranger)  # no allowlist yet: anyone can be paid
    _paid(env, ETH, ETHER // 10, to=stranger)
    for token in (usdc, ETH):
        assert _word(env, agent, token) & (FAST | ALLOWLIST) == FAST

    receipt = env.send(v.enforceAllowlist(agent), env.owners[2])
    assert env.event(receipt, "AgentConfigured")["useAllowlist"] is True
    for token in (usdc, ETH):
        assert _word(env, agent, token) & (FAST | ALLOWLIST) == FAST | ALLOWLIST
        _escalated(env, REASON_RECIPIENT_NOT_ALLOWED, token=token, amount=1, to=stranger)
        _escalated(
            env,
            REASON_RECIPIENT_NOT_ALLOWED | REASON_OVER_PER_PAYMENT,
            token=token,
            amount=USDC_MAX + 1 if token == usdc else ETH_MAX + 1,
            to=stranger,
        )
        _paid(env, token, 1, to=allowed)

    # the fast path reads the allowlist itself: removing a recipient takes effect at once
    env.send(v.removeRecipient(agent, allowed), env.owners[0])
    for token in (usdc, ETH):
        assert _fast(env, agent, token)
        _escalated(env, REASON_RECIPIENT_NOT_ALLOWED, token=token, amount=1, to=allowed)
    assert v.checkPayment(agent, usdc, allowed, 1).call() == REASON_RECIPIENT_NOT_ALLOWED


def test_remove_token_escalates_and_re_adding_it_does_not_refill_the_budget(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    # a large per-payment limit so most of the allowance can be spent in one payment; the
    # timestamps are pinned so the budget is known to the base unit
    env.govern("setLimits", agent, usdc, USDC_ALLOWANCE, USDC_ALLOWANCE, PERIOD)
    t0 = env.now() + 10
    env.set_next_timestamp(t0)
    _warm(env, usdc, USDC_ALLOWANCE * 9 // 10, gas=FIXED_GAS)

    def budget(t: int) -> int:
        """tUSDC available at time t: a tenth of the allowance left at t0, then the refill."""
        return min(USDC_ALLOWANCE, (t - t0 + PERIOD // 10) * USDC_ALLOWANCE // PERIOD)

    assert env.available(usdc) == budget(t0) == USDC_ALLOWANCE // 10
    _warm(env, ETH, ETHER // 10)

    receipt = env.send(v.removeToken(agent, usdc), env.owners[1])
    changed = env.event(receipt, "LimitsChanged")
    assert (changed["maxPerPayment"], changed["allowance"], changed["period"]) == (0, 0, 0)
    assert _tokens(env, agent) == [ETH]
    assert tuple(v.getPolicy(agent, usdc).call()) == (0, 0, 0, 0)
    assert not _fast(env, agent, usdc)
    _escalated(env, REASON_TOKEN_NOT_IN_SCOPE, token=usdc, amount=1)
    # the other token keeps its fast path
    assert _fast(env, agent, ETH)
    _paid(env, ETH, 5)

    # re-adding the token (threshold) puts it back in the list, but the spent budget stays spent:
    # the budget goes on from what the kept word holds (rounded down to what the budget can
    # represent at the new rate, less than 1/256 s of refill)
    _r, gid = env.propose("setLimits", agent, usdc, USDC_ALLOWANCE, USDC_ALLOWANCE, PERIOD)
    t_readd = env.now() + 10
    env.set_next_timestamp(t_readd)
    env.send(env.rq.approve(gid), env.owners[2], gas=FIXED_GAS)
    assert sorted(_tokens(env, agent)) == sorted([usdc, ETH])
    assert _fast(env, agent, usdc)
    quantum = USDC_ALLOWANCE // (PERIOD << 8) + 1
    assert budget(t_readd) - quantum <= env.available(usdc) <= budget(t_readd)
    word = _word(env, agent, usdc)
    t1 = env.now() + 10
    env.set_next_timestamp(t1)
    env.chain.mine()
    assert env.available(usdc) == _budget(word, t1) < USDC_ALLOWANCE // 5
    assert budget(t1) - quantum <= _budget(word, t1) <= budget(t1)
    env.set_next_timestamp(t1 + 1)
    over = _budget(word, t1 + 1) + 1
    _escalated(env, REASON_OVER_ALLOWANCE, token=usdc, amount=over, gas=FIXED_GAS)
    env.set_next_timestamp(t1 + 10)  # (the escalated request was cancelled in between)
    _paid(env, usdc, _budget(word, t1 + 10), gas=FIXED_GAS)  # exactly what is left, not a unit more
    assert env.available(usdc) == 0


def test_reduce_limits_on_a_warm_agent_escalates_at_once(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    _warm(env, usdc, 50 * USDC)
    _warm(env, ETH, ETHER // 10)

    receipt = env.send(v.reduceLimits(agent, usdc, 10 * USDC, USDC_ALLOWANCE), env.owners[0])
    assert env.event(receipt, "LimitsChanged")["maxPerPayment"] == 10 * USDC
    assert _fast(env, agent, usdc)  # the limits live in the same word: still one read
    _escalated(env, REASON_OVER_PER_PAYMENT, token=usdc, amount=50 * USDC)
    _escalated(env, REASON_OVER_PER_PAYMENT, token=usdc, amount=10 * USDC + 1)
    _paid(env, usdc, 10 * USDC)

    # cut to nothing: every amount escalates, on both tokens
    env.send(v.reduceLimits(agent, usdc, 0, 0), env.owners[1])
    env.send(v.reduceLimits(agent, ETH, 0, 0), env.owners[2])
    for token in (usdc, ETH):
        _escalated(env, REASON_OVER_PER_PAYMENT | REASON_OVER_ALLOWANCE, token=token, amount=1)
        assert v.checkPayment(agent, token, fresh_address("x"), 1).call() == (
            REASON_OVER_PER_PAYMENT | REASON_OVER_ALLOWANCE
        )


def test_valid_until_turns_the_fast_path_off_and_expires_the_agent(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    _warm(env, usdc, 1 * USDC)
    _warm(env, ETH, ETHER // 10)

    valid_until = env.now() + 1_000
    receipt, _rid = env.govern("addAgent", agent, 0, valid_until, False)
    assert env.event(receipt, "AgentConfigured")["validUntil"] == valid_until
    for token in (usdc, ETH):
        assert not _fast(env, agent, token)
        # it still pays inside its window, through the full checks, which do not set FAST
        _paid(env, token, 2)
        assert not _fast(env, agent, token)
    env.send(v.reduceLimits(agent, usdc, USDC_MAX, USDC_ALLOWANCE), env.owners[0])
    assert not _fast(env, agent, usdc)

    env.set_next_timestamp(valid_until)  # valid to validUntil inclusive
    _paid(env, usdc, 3, gas=FIXED_GAS)
    env.set_next_timestamp(valid_until + 1)
    env.chain.mine()
    for token in (usdc, ETH):
        _blocked(env, "AgentExpired", agent, valid_until, token=token, amount=1)


def test_valid_after_in_the_future_blocks_and_lazy_promotion_does_not_skip_pause(
    env: Env,
) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    _warm(env, usdc, 1 * USDC)
    _warm(env, ETH, ETHER // 10)

    valid_after = env.now() + 1_000
    env.govern("addAgent", agent, valid_after, 0, False)
    for token in (usdc, ETH):
        assert not _fast(env, agent, token)
        _blocked(env, "AgentNotYetValid", agent, valid_after, token=token, amount=1)

    # an agent added with a future validAfter never starts warm either
    late = env.spare[1]
    _second_agent(env, late, valid_after=valid_after)
    for token in (usdc, ETH):
        assert not _fast(env, late.address, token)
        _blocked(
            env, "AgentNotYetValid", late.address, valid_after, token=token, amount=1, agent=late
        )

    # from validAfter on, the first payment passes the full checks and promotes the word
    env.set_next_timestamp(valid_after)
    _paid(env, usdc, 2, gas=FIXED_GAS)
    assert _fast(env, agent, usdc)
    assert not _fast(env, agent, ETH)  # promotion is per word, on use
    _paid(env, usdc, 3)  # now on the fast path
    _paid(env, ETH, 4)
    assert _fast(env, agent, ETH)
    _paid(env, ETH, 5)
    _paid(env, usdc, 6, agent=late)
    assert _fast(env, late.address, usdc)

    # promotion did not bypass pause or pauseAgent
    _pause(env, owner=0)
    for who in (env.agent, late):
        for token in (usdc, ETH):
            assert not _fast(env, who.address, token)
            _blocked(env, "VaultIsPaused", token=token, amount=1, agent=who)
    _unpause(env)
    env.send(v.pauseAgent(late.address), env.owners[1])
    for token in (usdc, ETH):
        _blocked(
            env, "AgentNotActive", late.address, AGENT_PAUSED, token=token, amount=1, agent=late
        )
        _paid(env, token, 7)


def test_risk_adding_governance_while_paused_never_re_enables_the_fast_path(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    v = env.vault.functions
    second = env.spare[0]
    _second_agent(env, second)
    _warm(env, usdc, 1 * USDC)
    _warm(env, ETH, ETHER // 10)
    _warm(env, usdc, 1 * USDC, agent=second)
    env.send(v.revokeAgent(second.address), env.owners[0])
    _pause(env)

    # every call that rewrites the flags, made while the vault is paused
    env.govern("addAgent", agent, 0, 0, False)
    env.govern("setLimits", agent, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    env.govern("setLimits", agent, ETH, ETH_MAX, ETH_ALLOWANCE, PERIOD)
    env.send(v.enforceAllowlist(agent), env.owners[1])
    env.govern("allowRecipient", agent, fresh_address("paused-allowed"))
    env.send(v.pauseAgent(agent), env.owners[1])
    env.govern("unpauseAgent", agent)
    env.govern("addAgent", second.address, 0, 0, False)  # re-adding a revoked agent
    # (a new lineage: nothing comes back, both tokens need limits again)
    env.govern("setLimits", second.address, usdc, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    env.govern("setLimits", second.address, ETH, ETH_MAX, ETH_ALLOWANCE, PERIOD)
    env.send(v.reduceLimits(agent, usdc, USDC_MAX, USDC_ALLOWANCE), env.owners[2])
    env.send(v.reduceLimits(second.address, ETH, ETH_MAX, ETH_ALLOWANCE), env.owners[2])
    for who in (env.agent, second):
        for token in (usdc, ETH):
            assert not _fast(env, who.address, token)
            _blocked(
                env,
                "VaultIsPaused",
                token=token,
                amount=1,
                agent=who,
                to=fresh_address("paused-allowed"),
            )

    _unpause(env)
    _paid(env, usdc, 1, to=fresh_address("paused-allowed"))
    _escalated(env, REASON_RECIPIENT_NOT_ALLOWED, token=ETH, amount=1)  # the allowlist holds
    _paid(env, ETH, 1, agent=second)


def test_agent_and_token_lists_are_bounded_and_slots_are_freed(anvil_env: Env) -> None:
    env = anvil_env
    v = env.vault.functions
    agent = env.agent.address
    usdc = env.usdc.address
    _warm(env, usdc, 1 * USDC)

    # threshold 1 for the set-up: each proposal executes in the proposing transaction
    env.govern("changeThreshold", 1)

    def run(function: str, *args: Any) -> None:
        receipt, request_id = env.propose(function, *args)
        assert env.event(receipt, "RequestExecuted")["requestId"] == request_id

    listed = _agents(env)
    assert listed == [agent]
    fillers = [fresh_address(f"filler-{i}") for i in range(MAX_AGENTS - len(listed))]
    _send_all(
        env,
        env.owners[0],
        [v.propose(env.calldata("addAgent", f, 0, 0, False), ref("fill")) for f in fillers],
    )
    assert sorted(_agents(env)) == sorted([agent, *fillers])
    extra = fresh_address("one-too-many")
    with expect_revert("TooManyAgents", MAX_AGENTS):
        env.propose("addAgent", extra, 0, 0, False)
    # re-configuring a listed agent takes no new slot
    run("addAgent", fillers[0], 0, 0, True)
    assert len(_agents(env)) == MAX_AGENTS

    # revoking frees a slot (and a revoked agent re-added needs one again)
    env.send(v.revokeAgent(fillers[1]), env.owners[0])
    assert len(_agents(env)) == MAX_AGENTS - 1
    assert fillers[1] not in _agents(env)
    run("addAgent", extra, 0, 0, False)
    assert extra in _agents(env)
    with expect_revert("TooManyAgents", MAX_AGENTS):
        env.propose("addAgent", fillers[1], 0, 0, False)
    # swap-and-pop bookkeeping: revoke the agent that was moved into the hole, a paused one
    # and the last one, then fill the list up again
    moved = _agents(env)[2]
    last = _agents(env)[-1]
    env.send(v.pauseAgent(fillers[5]), env.owners[1])
    for gone in (moved, fillers[5], last):
        env.send(v.revokeAgent(gone), env.owners[2])
    expected = {agent, *fillers, extra} - {fillers[1], moved, fillers[5], last}
    assert sorted(_agents(env)) == sorted(expected)
    assert len(_agents(env)) == MAX_AGENTS - 3
    for gone in (moved, fillers[5], last):
        run("addAgent", gone, 0, 0, False)
    assert sorted(_agents(env)) == sorted(expected | {moved, fillers[5], last})
    with expect_revert("TooManyAgents", MAX_AGENTS):
        env.propose("addAgent", fillers[1], 0, 0, False)

    # tokens: the agent has tUSDC and ETH; fill up with tokens that need no code for limits
    assert sorted(_tokens(env, agent)) == sorted([usdc, ETH])
    more = [fresh_address(f"token-{i}") for i in range(MAX_TOKENS_PER_AGENT - 2)]
    for token in more:
        run("setLimits", agent, token, 1, 1, PERIOD)
    assert sorted(_tokens(env, agent)) == sorted([usdc, ETH, *more])
    new_token = fresh_address("token-one-too-many")
    with expect_revert("TooManyTokens", agent, MAX_TOKENS_PER_AGENT):
        env.propose("setLimits", agent, new_token, 1, 1, PERIOD)
    run("setLimits", agent, more[0], 2, 2, PERIOD)  # an existing token takes no new slot
    assert len(_tokens(env, agent)) == MAX_TOKENS_PER_AGENT
    env.send(v.removeToken(agent, more[1]), env.owners[2])
    assert more[1] not in _tokens(env, agent)
    with expect_revert("TokenNotInScope", agent, more[1]):  # removing it again: nothing to free
        env.send(v.removeToken(agent, more[1]), env.owners[2])
    assert len(_tokens(env, agent)) == MAX_TOKENS_PER_AGENT - 1
    run("setLimits", agent, new_token, 1, 1, PERIOD)
    assert len(_tokens(env, agent)) == MAX_TOKENS_PER_AGENT
    for token in _tokens(env, agent):
        assert _fast(env, agent, token)

    # with both lists full, one owner's pause still clears them (worst case: the next test)
    receipt = env.send(v.pause(), env.owners[1])
    assert receipt["gasUsed"] < 1_000_000
    for token in _tokens(env, agent):
        assert not _fast(env, agent, token)
    _blocked(env, "VaultIsPaused", token=usdc, amount=1)
    _blocked(env, "VaultIsPaused", token=ETH, amount=1)
    run("unpause")
    _paid(env, usdc, 1)
    _paid(env, ETH, 1)


def test_pause_clears_every_agent_and_token_and_check_payment_ignores_the_flags(
    env: Env,
) -> None:
    usdc = env.usdc.address
    other = _extra_token(env).address
    tokens = [usdc, ETH, other]
    allowed = fresh_address("grid-allowed")
    stranger = fresh_address("grid-stranger")
    agents = [env.agent, env.spare[0], env.spare[1]]
    env.govern("setLimits", env.agent.address, other, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    for account in agents[1:]:
        _second_agent(env, account)
        env.govern("setLimits", account.address, other, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    env.govern("allowRecipient", agents[2].address, allowed)
    env.send(env.vault.functions.enforceAllowlist(agents[2].address), env.owners[0])
    for account in agents:
        for token in tokens:
            _paid(env, token, 10, agent=account, to=allowed)
            assert _fast(env, account.address, token)
    assert _word(env, agents[2].address, usdc) & ALLOWLIST
    assert not _word(env, agents[0].address, usdc) & ALLOWLIST

    def views() -> list[Any]:
        out: list[Any] = []
        for account in agents:
            for token in tokens:
                out.append(env.vault.functions.getPolicy(account.address, token).call()[:3])
                for to in (allowed, stranger):
                    for amount in (1, USDC_MAX + 1, USDC_ALLOWANCE + 1):
                        fn = env.vault.functions.checkPayment(account.address, token, to, amount)
                        out.append(fn.call())
        return out

    warm = views()
    assert REASON_RECIPIENT_NOT_ALLOWED in warm  # the allowlisted agent and the stranger
    _pause(env, owner=1)
    assert views() == warm
    for account in agents:
        for token in tokens:
            assert not _fast(env, account.address, token)
            _blocked(env, "VaultIsPaused", token=token, amount=1, agent=account, to=allowed)
    _unpause(env)
    assert views() == warm
    for account in agents:
        for token in tokens:
            assert _fast(env, account.address, token)
            _paid(env, token, 11, agent=account, to=allowed)


@pytest.mark.parametrize("action", ["pause", "pauseAgent", "revokeAgent"])
def test_blocked_agent_cannot_pay_even_without_gas_estimation(env: Env, action: str) -> None:
    """The revert is not an artefact of estimation: a mined transaction fails as well."""
    usdc = env.usdc.address
    _warm(env, usdc, 1 * USDC)
    fn = env.vault.functions
    call = fn.pause() if action == "pause" else getattr(fn, action)(env.agent.address)
    env.send(call, env.owners[0])
    to = fresh_address(f"mined-{action}")
    funds = _funds(env, [usdc], [to])
    receipt = env.send(fn.pay(usdc, to, 1, ref("mined")), env.agent, gas=FIXED_GAS, check=False)
    assert receipt["status"] == 0
    assert env.events(receipt, "PaymentExecuted") == []
    assert _funds(env, [usdc], [to]) == funds


def test_pause_at_full_capacity_fits_in_one_transaction(anvil_env: Env) -> None:
    """The worst case for pause and unpause: MAX_AGENTS agents x MAX_TOKENS_PER_AGENT words."""
    env = anvil_env
    v = env.vault.functions
    env.govern("changeThreshold", 1)  # each proposal executes in the proposing transaction
    proposer = env.owners[0]

    def proposal(function: str, *args: Any) -> ContractFunction:
        return v.propose(env.calldata(function, *args), ref(function))

    agents: list[str] = [env.agent.address]
    agents += [fresh_address(f"capacity-{i}") for i in range(MAX_AGENTS - 1)]
    tokens = [fresh_address(f"capacity-token-{i}") for i in range(MAX_TOKENS_PER_AGENT)]
    _send_all(env, proposer, [proposal("addAgent", a, 0, 0, False) for a in agents[1:]])
    _send_all(
        env,
        proposer,
        [
            proposal("setLimits", a, t, 1, 1, PERIOD)
            for a in agents
            for t in tokens[: MAX_TOKENS_PER_AGENT - len(_tokens(env, a))]
        ],
    )
    assert len(_agents(env)) == MAX_AGENTS
    assert all(len(_tokens(env, a)) == MAX_TOKENS_PER_AGENT for a in agents)
    _warm(env, env.usdc.address, 1)
    assert _fast(env, agents[-1], tokens[-1])

    receipt = env.send(v.pause(), env.owners[2])
    assert receipt["gasUsed"] < TX_GAS_CAP, receipt["gasUsed"]
    for agent in (agents[0], agents[-1]):
        for token in _tokens(env, agent):
            assert not _fast(env, agent, token)
    _blocked(env, "VaultIsPaused", token=env.usdc.address, amount=1)
    # unpausing (a governance call) rewrites them all again, within the same bound
    receipt = env.send(proposal("unpause"), proposer)
    assert receipt["gasUsed"] < TX_GAS_CAP, receipt["gasUsed"]
    assert _fast(env, agents[-1], tokens[-1])
    _paid(env, env.usdc.address, 1)
