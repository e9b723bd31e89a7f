"""Agent payments: what runs at once, what escalates, and what an agent can never get."""

from __future__ import annotations

from tests.contracts.conftest import (
    AGENT_PAUSED,
    AGENT_REVOKED,
    AGENT_REVOKED_REQUEST,
    CANCELLED,
    CLOSED,
    DAY,
    ETH,
    ETH_MAX,
    EXPIRED,
    FIXED_GAS,
    MAX_LIMIT,
    MAX_OPEN,
    MAX_PERIOD,
    PENDING,
    PERIOD,
    REASON_OVER_ALLOWANCE,
    REASON_OVER_PER_PAYMENT,
    REASON_RECIPIENT_NOT_ALLOWED,
    REASON_TOKEN_NOT_IN_SCOPE,
    REQUEST_EXPIRY,
    USDC,
    USDC_ALLOWANCE,
    USDC_MAX,
    VAULT_USDC,
    Env,
    expect_revert,
    fresh_address,
    ref,
)


def test_payment_inside_limits_pays_at_once(env: Env) -> None:
    to = fresh_address("shop")
    fn = env.vault.functions.pay(env.usdc.address, to, 40 * USDC, ref("inv-1"))
    assert fn.call({"from": env.agent.address}) == 0
    receipt, request_id = env.pay(env.usdc.address, to, 40 * USDC, ref("inv-1"))
    assert request_id == 0
    assert env.usdc_of(to) == 40 * USDC
    assert env.usdc_of(env.vault.address) == VAULT_USDC - 40 * USDC
    event = env.event(receipt, "PaymentExecuted")
    assert event == {
        "agent": env.agent.address,
        "token": env.usdc.address,
        "to": to,
        "amount": 40 * USDC,
        "ref": ref("inv-1"),
    }
    assert env.events(receipt, "PaymentRequested") == []


def test_eth_payment_inside_limits_pays_at_once(env: Env) -> None:
    to = fresh_address("eth-shop")
    before = env.eth_of(env.vault.address)
    receipt, request_id = env.pay(ETH, to, ETH_MAX, ref("eth"))
    assert request_id == 0
    assert env.eth_of(to) == ETH_MAX
    assert env.eth_of(env.vault.address) == before - ETH_MAX
    assert env.event(receipt, "PaymentExecuted")["token"] == ETH


def test_payment_over_per_payment_limit_escalates(env: Env) -> None:
    to = fresh_address("big")
    amount = USDC_MAX + 1
    fn = env.vault.functions.pay(env.usdc.address, to, amount, ref("big"))
    predicted = fn.call({"from": env.agent.address})
    assert predicted == env.vault.functions.requestCount().call() + 1
    receipt, request_id = env.pay(env.usdc.address, to, amount, ref("big"))
    assert request_id == predicted
    created = env.event(receipt, "PaymentRequested")
    assert created["reasons"] == REASON_OVER_PER_PAYMENT
    assert created["agent"] == env.agent.address
    assert created["lineage"] == env.vault.functions.getAgent(env.agent.address).call()[5]
    assert created["slot"] == request_id  # a fresh slot: the id of its first request
    assert created["expiresAt"] == env.block_time(receipt) + REQUEST_EXPIRY
    assert env.usdc_of(to) == 0
    assert env.usdc_of(env.vault.address) == VAULT_USDC
    assert env.available(env.usdc.address) == USDC_ALLOWANCE  # the budget is untouched
    request = env.request(request_id)
    assert (request["status"], request["amount"], request["to"]) == (PENDING, amount, to)
    assert env.vault.functions.getAgent(env.agent.address).call()[4] == 1  # openRequests


def test_payment_over_period_allowance_escalates(env: Env) -> None:
    to = fresh_address("over-allowance")
    env.govern("setLimits", env.agent.address, env.usdc.address, 2_000 * USDC, 1_000 * USDC, DAY)
    receipt, request_id = env.pay(env.usdc.address, to, 1_000 * USDC + 1)
    assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_OVER_ALLOWANCE
    assert env.usdc_of(to) == 0


def test_splitting_into_small_payments_cannot_exceed_the_allowance(env: Env) -> None:
    to = fresh_address("split")
    # odd-sized pieces so rounding is exercised; 7 pieces exceed the allowance plus the refill
    # of the few seconds (one block per second, whatever the machine's load) the test takes
    piece = USDC_ALLOWANCE // 7 + 50_003
    env.govern(
        "setLimits", env.agent.address, env.usdc.address, USDC_ALLOWANCE, USDC_ALLOWANCE, PERIOD
    )
    paid = 0
    escalated = 0
    start = env.next_time()
    # one block per second from here: a loaded machine must not let the budget refill more
    base = start + 1
    for i in range(9):
        env.set_next_timestamp(base + i)
        receipt, request_id = env.pay(env.usdc.address, to, piece, ref(f"split-{i}"))
        if request_id == 0:
            paid += piece
        else:
            escalated += 1
            assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_OVER_ALLOWANCE
    elapsed = env.chain.timestamp() - start  # the last payment's block
    assert elapsed < 20
    assert paid <= USDC_ALLOWANCE + elapsed * USDC_ALLOWANCE // PERIOD
    assert (paid, escalated) == (6 * piece, 3)
    assert env.usdc_of(to) == paid


def test_full_allowance_refills_after_exactly_one_period_never_more_in_a_burst(env: Env) -> None:
    to = fresh_address("boundary")
    env.govern(
        "setLimits", env.agent.address, env.usdc.address, USDC_ALLOWANCE, USDC_ALLOWANCE, PERIOD
    )
    t0 = env.now() + 100
    env.set_next_timestamp(t0)
    _r, rid = env.pay(env.usdc.address, to, USDC_ALLOWANCE, gas=FIXED_GAS)
    assert rid == 0
    # one second short of a full period: a full payment escalates
    env.set_next_timestamp(t0 + PERIOD - 1)
    receipt, rid = env.pay(env.usdc.address, to, USDC_ALLOWANCE, gas=FIXED_GAS)
    assert rid != 0
    assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_OVER_ALLOWANCE
    # exactly one period later: the full allowance again...
    env.set_next_timestamp(t0 + PERIOD)
    _r, rid = env.pay(env.usdc.address, to, USDC_ALLOWANCE, gas=FIXED_GAS)
    assert rid == 0
    # ...but never more than the allowance in a burst: a second later only that second's
    # refill (allowance / period) is available, and one base unit more escalates
    env.set_next_timestamp(t0 + PERIOD + 1)
    receipt, rid = env.pay(env.usdc.address, to, USDC_ALLOWANCE // PERIOD + 1, gas=FIXED_GAS)
    assert rid != 0
    assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_OVER_ALLOWANCE
    assert env.usdc_of(to) == 2 * USDC_ALLOWANCE


def test_after_half_a_period_about_half_the_allowance_is_back(env: Env) -> None:
    to = fresh_address("half")
    env.govern(
        "setLimits", env.agent.address, env.usdc.address, USDC_ALLOWANCE, USDC_ALLOWANCE, PERIOD
    )
    t0 = env.now() + 100
    env.set_next_timestamp(t0)
    env.pay(env.usdc.address, to, USDC_ALLOWANCE, gas=FIXED_GAS)
    env.set_next_timestamp(t0 + PERIOD // 2)
    env.chain.mine()
    assert env.available(env.usdc.address) == USDC_ALLOWANCE // 2
    half = USDC_ALLOWANCE // 2
    # the same second: half plus a little escalates, half pays
    env.set_next_timestamp(t0 + PERIOD // 2 + 1)
    _r, over = env.pay(env.usdc.address, to, half + 2 * (USDC_ALLOWANCE // PERIOD), gas=FIXED_GAS)
    assert over != 0
    _r, rid = env.pay(env.usdc.address, to, half, gas=FIXED_GAS)
    assert rid == 0


def test_recipient_not_on_the_allowlist_escalates(env: Env) -> None:
    allowed = fresh_address("allowed")
    stranger = fresh_address("stranger")
    env.govern("allowRecipient", env.agent.address, allowed)
    env.send(env.vault.functions.enforceAllowlist(env.agent.address), env.owners[2])
    _r, rid = env.pay(env.usdc.address, allowed, 10 * USDC)
    assert rid == 0
    receipt, rid = env.pay(env.usdc.address, stranger, 10 * USDC)
    assert rid != 0
    assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_RECIPIENT_NOT_ALLOWED
    receipt, rid = env.pay(env.usdc.address, stranger, USDC_MAX + 1)
    assert env.event(receipt, "PaymentRequested")["reasons"] == (
        REASON_RECIPIENT_NOT_ALLOWED | REASON_OVER_PER_PAYMENT
    )
    assert env.usdc_of(stranger) == 0
    assert (
        env.vault.functions.checkPayment(env.agent.address, env.usdc.address, stranger, 1).call()
        == REASON_RECIPIENT_NOT_ALLOWED
    )


def test_token_not_in_scope_escalates(env: Env) -> None:
    other = env.deploy("TestUSDC")
    env.send(other.functions.mint(env.vault.address, 10 * USDC), env.deployer)
    to = fresh_address("other-token")
    receipt, rid = env.pay(other.address, to, 1)
    assert rid != 0
    assert env.event(receipt, "PaymentRequested")["reasons"] == REASON_TOKEN_NOT_IN_SCOPE
    assert other.functions.balanceOf(to).call() == 0


def test_paused_vault_rejects_payments(env: Env) -> None:
    env.send(env.vault.functions.pause(), env.owners[0])
    with expect_revert("VaultIsPaused"):
        env.pay(env.usdc.address, fresh_address("x"), 1)
    with expect_revert("VaultIsPaused"):
        env.pay(env.usdc.address, fresh_address("x"), USDC_MAX + 1)  # not even a request


def test_paused_or_revoked_agent_cannot_pay(env: Env) -> None:
    env.send(env.vault.functions.pauseAgent(env.agent.address), env.owners[0])
    with expect_revert("AgentNotActive", env.agent.address, AGENT_PAUSED):
        env.pay(env.usdc.address, fresh_address("x"), 1)
    env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[1])
    with expect_revert("AgentNotActive", env.agent.address, AGENT_REVOKED):
        env.pay(env.usdc.address, fresh_address("x"), USDC_MAX + 1)


def test_unknown_address_cannot_pay(env: Env) -> None:
    with expect_revert("AgentNotActive", env.outsider.address, 0):
        env.pay(env.usdc.address, fresh_address("x"), 1, agent=env.outsider)
    with expect_revert("AgentNotActive"):
        env.pay(env.usdc.address, fresh_address("x"), 1, agent=env.owners[0])


def test_agent_outside_its_validity_window_cannot_pay(env: Env) -> None:
    late = env.spare[0]
    start = env.next_time() + 1_000
    end = start + 1_000
    env.add_agent(
        late.address,
        valid_after=start,
        valid_until=end,
        limits={env.usdc.address: (USDC_MAX, USDC_ALLOWANCE, PERIOD)},
    )
    to = fresh_address("window")
    pay = env.vault.functions.pay(env.usdc.address, to, 1, ref("w"))
    with expect_revert("AgentNotYetValid", late.address, start):
        env.send(pay, late)
    env.set_next_timestamp(start)  # valid from validAfter inclusive
    env.send(pay, late, gas=FIXED_GAS)
    env.set_next_timestamp(end)  # ... to validUntil inclusive
    env.send(pay, late, gas=FIXED_GAS)
    assert env.usdc_of(to) == 2
    env.set_next_timestamp(end + 1)
    env.chain.mine()
    with expect_revert("AgentExpired", late.address, end):
        env.send(pay, late)


def test_zero_recipient_and_zero_amount_revert(env: Env) -> None:
    with expect_revert("ZeroAddress"):
        env.pay(env.usdc.address, ETH, 1)
    with expect_revert("ZeroAmount"):
        env.pay(env.usdc.address, fresh_address("x"), 0)


def test_absurd_amount_escalates_with_reasons_instead_of_panicking(env: Env) -> None:
    to = fresh_address("absurd")
    for token in (env.usdc.address, ETH):
        receipt, rid = env.pay(token, to, 2**256 - 1)
        assert rid != 0
        assert env.event(receipt, "PaymentRequested")["reasons"] == (
            REASON_OVER_PER_PAYMENT | REASON_OVER_ALLOWANCE
        )
    assert (
        env.vault.functions.checkPayment(env.agent.address, env.usdc.address, to, 2**256 - 1).call()
        == REASON_OVER_PER_PAYMENT | REASON_OVER_ALLOWANCE
    )
    # ... and approving it fails cleanly on the balance, not with a panic
    env.send(env.rq.approve(rid), env.owners[0])
    with expect_revert("InsufficientBalance", ETH, env.eth_of(env.vault.address), 2**256 - 1):
        env.send(env.rq.approve(rid), env.owners[1])


def test_limits_above_max_limit_revert_limit_too_large(env: Env) -> None:
    _r, rid = env.propose("setLimits", env.agent.address, env.usdc.address, 1, MAX_LIMIT + 1, DAY)
    with expect_revert("LimitTooLarge", MAX_LIMIT + 1, MAX_LIMIT):
        env.send(env.rq.approve(rid), env.owners[1])
    _r, rid = env.propose("setLimits", env.agent.address, env.usdc.address, MAX_LIMIT + 1, 1, DAY)
    with expect_revert("LimitTooLarge", MAX_LIMIT + 1, MAX_LIMIT):
        env.send(env.rq.approve(rid), env.owners[1])
    # MAX_LIMIT itself is fine and a payment of all of it is computed without overflow, with
    # the longest period there is. (A token that never had limits starts full; raising tUSDC's
    # limits to the maximum adds nothing to what is available now.)
    token = fresh_address("max-limit-token")
    env.govern("setLimits", env.agent.address, token, MAX_LIMIT, MAX_LIMIT, MAX_PERIOD)
    assert env.vault.functions.getPolicy(env.agent.address, token).call() == (
        MAX_LIMIT,
        MAX_LIMIT,
        MAX_PERIOD,
        MAX_LIMIT,
    )
    to = fresh_address("x")
    assert env.vault.functions.checkPayment(env.agent.address, token, to, MAX_LIMIT).call() == 0
    assert env.vault.functions.checkPayment(env.agent.address, token, to, MAX_LIMIT + 1).call() == (
        REASON_OVER_PER_PAYMENT | REASON_OVER_ALLOWANCE
    )
    env.govern("setLimits", env.agent.address, env.usdc.address, MAX_LIMIT, MAX_LIMIT, MAX_PERIOD)
    assert env.available(env.usdc.address) <= USDC_ALLOWANCE
    assert (
        env.vault.functions.checkPayment(env.agent.address, env.usdc.address, to, MAX_LIMIT).call()
        == REASON_OVER_ALLOWANCE
    )


def test_request_spam_stops_at_max_open_requests(env: Env) -> None:
    ids = [env.escalate() for _ in range(MAX_OPEN)]
    with expect_revert("TooManyOpenRequests", env.agent.address, MAX_OPEN, MAX_OPEN):
        env.escalate()
    # direct payments still work while the request slots are full
    _r, rid = env.pay(env.usdc.address, fresh_address("ok"), 1)
    assert rid == 0
    # cancelling frees exactly one slot
    receipt = env.send(env.rq.cancel(ids[0]), env.agent)
    assert env.event(receipt, "RequestCancelled")["requestId"] == ids[0]
    assert env.status(ids[0]) == CANCELLED
    env.escalate()
    with expect_revert("TooManyOpenRequests"):
        env.escalate()


def test_only_the_requesting_agent_can_cancel(env: Env) -> None:
    rid = env.escalate()
    with expect_revert("NotRequestAgent", rid, env.owners[0].address):
        env.send(env.rq.cancel(rid), env.owners[0])
    env.send(env.rq.cancel(rid), env.agent)
    with expect_revert("RequestNotPending", rid, CANCELLED):
        env.send(env.rq.cancel(rid), env.agent)


def test_request_expires_after_request_expiry_and_frees_its_slot(env: Env) -> None:
    ids = [env.escalate() for _ in range(MAX_OPEN)]
    expires_at = env.request(ids[0])["expiresAt"]
    with expect_revert("RequestNotExpired", ids[0], expires_at):
        env.send(env.rq.expire(ids[0]), env.outsider)
    # at expiresAt it can still be approved (expired means strictly after)
    env.set_next_timestamp(expires_at)
    env.send(env.rq.approve(ids[0]), env.owners[0], gas=FIXED_GAS)
    assert env.vault.functions.hasApproved(ids[0], env.owners[0].address).call()
    env.chain.increase_time(1)
    with expect_revert("RequestHasExpired", ids[0], expires_at):
        env.send(env.rq.approve(ids[0]), env.owners[1])
    with expect_revert("RequestHasExpired", ids[0], expires_at):
        env.send(env.rq.execute(ids[0]), env.outsider)
    receipt = env.send(env.rq.expire(ids[0]), env.outsider)
    assert env.event(receipt, "RequestExpired") == {"requestId": ids[0]}
    assert env.status(ids[0]) == EXPIRED
    with expect_revert("RequestNotPending", ids[0], EXPIRED):
        env.send(env.rq.execute(ids[0]), env.outsider)
    # the agent's slot is free again, and its storage goes to the next request: the expired one
    # reads as Closed and still cannot be acted on (its record is another request's now)
    later = env.escalate()
    assert env.request(later)["slot"] == env.request(ids[0])["slot"]
    assert env.status(ids[0]) == CLOSED
    with expect_revert("RequestMismatch", ids[0]):
        env.send(env.rq.execute(ids[0]), env.outsider)
    with expect_revert("RequestMismatch", ids[0]):
        env.send(env.rq.approve(ids[0]), env.owners[0])


def test_period_must_be_one_second_to_max_period(env: Env) -> None:
    """A period outside 1..2^29-1 (MAX_PERIOD, 17 years) reverts InvalidPeriod (2^32-1, which
    the old 32-bit field took, is now out of range too); the bounds themselves are fine."""
    agent, usdc = env.agent.address, env.usdc.address
    for period in (0, MAX_PERIOD + 1, 2**30 - 1, 2**32 - 1):
        _r, rid = env.propose("setLimits", agent, usdc, USDC_MAX, USDC_ALLOWANCE, period)
        with expect_revert("InvalidPeriod", period):
            env.send(env.rq.approve(rid), env.owners[1])
        assert env.status(rid) == PENDING
    for period in (1, MAX_PERIOD):
        receipt, _gid = env.govern("setLimits", agent, usdc, USDC_MAX, USDC_ALLOWANCE, period)
        assert env.event(receipt, "LimitsChanged")["period"] == period
        assert env.vault.functions.getPolicy(agent, usdc).call()[2] == period


def test_revoking_an_agent_closes_its_open_requests_for_good(env: Env) -> None:
    agent = env.agent.address
    lineage = env.vault.functions.getAgent(agent).call()[5]
    first, second = env.escalate(), env.escalate()
    env.send(env.rq.approve(first), env.owners[0])  # one approval short
    receipt = env.send(env.vault.functions.revokeAgent(agent), env.owners[2])
    assert env.event(receipt, "OpenRequestsClosed") == {
        "agent": agent,
        "lineage": lineage,
        "count": 2,
    }
    assert env.vault.functions.getAgent(agent).call()[4] == 0  # openRequests
    vault_before = env.usdc_of(env.vault.address)
    for rid in (first, second):
        assert env.status(rid) == AGENT_REVOKED_REQUEST
        with expect_revert("RequestNotPending", rid, AGENT_REVOKED_REQUEST):
            env.send(env.rq.approve(rid), env.owners[1])
        with expect_revert("RequestNotPending", rid, AGENT_REVOKED_REQUEST):
            env.send(
                env.rq.executeWithSignatures(rid, env.packed(rid, env.owners[:2])), env.outsider
            )
        with expect_revert("NotRequestAgent", rid, agent):
            env.send(env.rq.cancel(rid), env.agent)
    # re-added, the address is a new lineage: the old requests stay dead
    env.govern("addAgent", agent, 0, 0, False)
    assert env.vault.functions.getAgent(agent).call()[5] != lineage
    for rid in (first, second):
        assert env.status(rid) == AGENT_REVOKED_REQUEST
        with expect_revert("RequestNotPending", rid, AGENT_REVOKED_REQUEST):
            env.send(env.rq.approve(rid), env.owners[1])
    # a fresh lineage has all its request slots, none of them the dead requests' storage
    env.govern("setLimits", agent, env.usdc.address, USDC_MAX, USDC_ALLOWANCE, PERIOD)
    for _ in range(MAX_OPEN):
        rid = env.escalate()
        assert env.request(rid)["slot"] == rid
    for rid in (first, second):
        assert env.status(rid) == AGENT_REVOKED_REQUEST
    # with a threshold the old approval meets, execute still refuses the dead request
    env.govern("changeThreshold", 1)
    with expect_revert("RequestNotPending", first, AGENT_REVOKED_REQUEST):
        env.send(env.rq.execute(first), env.outsider)
    assert env.usdc_of(env.vault.address) == vault_before
