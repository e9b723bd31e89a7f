"""Re-entrancy attacks: recipients and tokens that call back into the vault mid-payment."""

from __future__ import annotations

from web3.contract import Contract

from tests.contracts.conftest import (
    ETH,
    ETHER,
    EXECUTED,
    PENDING,
    USDC,
    Env,
    decode_error,
    expect_revert,
    fresh_address,
    ref,
)


def _recipient_agent(env: Env) -> Contract:
    """A ReentrantRecipient that is also an active agent with ETH limits (so a re-entrant
    `pay` would pass every check but the guard)."""
    attacker = env.deploy("ReentrantRecipient")
    env.add_agent(attacker.address, limits={ETH: (ETHER, 5 * ETHER, 86_400)})
    return attacker


def _assert_blocked(attacker: Contract) -> None:
    assert attacker.functions.attempted().call()
    assert not attacker.functions.reentryOk().call()
    name, _args = decode_error(attacker.functions.reentryData().call())
    assert name == "ReentrancyGuardReentrantCall"


def test_reentrant_pay_from_an_eth_recipient_is_blocked(env: Env) -> None:
    attacker = _recipient_agent(env)
    sink = fresh_address("sink")
    again = env.calldata("pay", ETH, sink, ETHER // 2, ref("again"))
    env.send(attacker.functions.arm(env.vault.address, again, False), env.deployer)
    before = env.eth_of(env.vault.address)
    receipt, rid = env.pay(ETH, attacker.address, ETHER // 2, ref("outer"))
    assert rid == 0
    _assert_blocked(attacker)
    assert env.eth_of(sink) == 0
    assert env.eth_of(env.vault.address) == before - ETHER // 2
    assert len(env.events(receipt, "PaymentExecuted")) == 1
    # without the guard the attacker's own budget would have paid: it is untouched
    assert env.available(ETH, attacker.address) == 5 * ETHER


def test_recipient_that_bubbles_the_blocked_reentry_makes_the_payment_fail(env: Env) -> None:
    attacker = _recipient_agent(env)
    again = env.calldata("pay", ETH, fresh_address("sink"), ETHER // 2, ref("again"))
    env.send(attacker.functions.arm(env.vault.address, again, True), env.deployer)
    before = env.eth_of(env.vault.address)
    with expect_revert("EthTransferFailed", attacker.address, ETHER // 2):
        env.pay(ETH, attacker.address, ETHER // 2)
    assert env.eth_of(env.vault.address) == before
    assert env.eth_of(attacker.address) == 0


def test_reentrant_cancel_from_an_eth_recipient_is_blocked(env: Env) -> None:
    attacker = _recipient_agent(env)
    # the attacker (as an agent) opens a request of its own
    big = env.calldata("pay", ETH, fresh_address("x"), 3 * ETHER, ref("mine"))
    receipt = env.send(attacker.functions.call(env.vault.address, big), env.deployer)
    own = env.event(receipt, "PaymentRequested")["requestId"]
    env.send(
        attacker.functions.arm(
            env.vault.address, env.calldata("cancelPayment", env.rq.req(own)), False
        ),
        env.deployer,
    )
    env.pay(ETH, attacker.address, ETHER // 4)
    _assert_blocked(attacker)
    assert env.status(own) == PENDING


def test_reentrant_execute_while_a_request_pays_is_blocked(env: Env) -> None:
    attacker = env.deploy("ReentrantRecipient")
    rid = env.pay(ETH, attacker.address, 2 * ETHER)[1]  # over the per-payment limit
    env.send(
        attacker.functions.arm(
            env.vault.address, env.calldata("executePayment", env.rq.req(rid)), False
        ),
        env.deployer,
    )
    before = env.eth_of(env.vault.address)
    env.send(env.rq.approve(rid), env.owners[0])
    receipt = env.send(env.rq.approve(rid), env.owners[1])
    _assert_blocked(attacker)
    assert len(env.events(receipt, "PaymentExecuted")) == 1
    assert env.eth_of(attacker.address) == 2 * ETHER
    assert env.eth_of(env.vault.address) == before - 2 * ETHER
    assert env.status(rid) == EXECUTED


def test_reentrant_approve_by_an_owner_recipient_is_blocked(env: Env) -> None:
    """An owner that is a contract approves another request while being paid."""
    attacker = env.deploy("ReentrantRecipient")
    env.govern("addOwner", attacker.address, 2)
    other = env.pay(ETH, fresh_address("other"), 3 * ETHER)[1]
    env.send(env.rq.approve(other), env.owners[0])  # one approval short
    paying = env.pay(ETH, attacker.address, 2 * ETHER)[1]
    env.send(
        attacker.functions.arm(
            env.vault.address, env.calldata("approvePayment", env.rq.req(other)), False
        ),
        env.deployer,
    )
    env.send(env.rq.approve(paying), env.owners[0])
    env.send(env.rq.approve(paying), env.owners[1])
    _assert_blocked(attacker)
    assert env.status(other) == PENDING
    assert env.vault.functions.approvalCount(other).call() == 1
    assert env.eth_of(fresh_address("other")) == 0


def test_reentrant_execute_with_signatures_is_blocked(env: Env) -> None:
    attacker = env.deploy("ReentrantRecipient")
    target = fresh_address("sig-target")
    other = env.pay(ETH, target, 3 * ETHER)[1]
    sigs = env.packed(other, env.owners[:2])
    paying = env.pay(ETH, attacker.address, 2 * ETHER)[1]
    data = env.calldata("executePaymentWithSignatures", env.rq.req(other), sigs)
    env.send(attacker.functions.arm(env.vault.address, data, False), env.deployer)
    env.send(
        env.rq.executeWithSignatures(paying, env.packed(paying, env.owners[1:])),
        env.outsider,
    )
    _assert_blocked(attacker)
    assert env.eth_of(target) == 0
    assert env.status(other) == PENDING


def _callback_token(env: Env) -> Contract:
    token = env.deploy("CallbackToken")
    env.send(token.functions.mint(env.vault.address, 10_000 * USDC), env.deployer)
    env.govern("setLimits", env.agent.address, token.address, 100 * USDC, 1_000 * USDC, 86_400)
    return token


def test_malicious_token_reentering_pay_during_transfer_is_blocked(env: Env) -> None:
    token = _callback_token(env)
    to = fresh_address("token-to")
    again = env.calldata("pay", token.address, fresh_address("sink"), 50 * USDC, ref("x"))
    env.send(token.functions.arm(env.vault.address, again, False), env.deployer)
    env.pay(token.address, to, 50 * USDC)
    _assert_blocked(token)
    assert token.functions.balanceOf(to).call() == 50 * USDC
    assert token.functions.balanceOf(env.vault.address).call() == 10_000 * USDC - 50 * USDC
    # bubbled: the whole payment reverts with the guard's error, nothing moves
    env.send(token.functions.arm(env.vault.address, again, True), env.deployer)
    with expect_revert("ReentrancyGuardReentrantCall"):
        env.pay(token.address, to, 50 * USDC)
    assert token.functions.balanceOf(to).call() == 50 * USDC


def test_malicious_token_reentering_execute_of_its_own_request_is_blocked(env: Env) -> None:
    token = _callback_token(env)
    to = fresh_address("token-req")
    rid = env.pay(token.address, to, 500 * USDC)[1]
    env.send(
        token.functions.arm(
            env.vault.address, env.calldata("executePayment", env.rq.req(rid)), False
        ),
        env.deployer,
    )
    env.send(env.rq.approve(rid), env.owners[0])
    env.send(env.rq.approve(rid), env.owners[2])
    _assert_blocked(token)
    assert token.functions.balanceOf(to).call() == 500 * USDC
    assert token.functions.balanceOf(env.vault.address).call() == 10_000 * USDC - 500 * USDC


def test_reentrant_signed_payment_from_its_recipient_is_blocked(env: Env) -> None:
    """A signed payment's recipient replays another valid signed payment while being paid."""
    attacker = env.deploy("ReentrantRecipient")
    signers = env.owners[:2]
    deadline = env.now() + 3_600
    sink = fresh_address("signed-sink")
    inner = (env.agent.address, ETH, sink, ETHER, ref("inner"), 2, deadline)
    outer = (env.agent.address, ETH, attacker.address, ETHER, ref("outer"), 1, deadline)
    data = env.calldata("payWithSignatures", inner, env.signed_payment(inner, signers))
    env.send(attacker.functions.arm(env.vault.address, data, False), env.deployer)
    before = env.eth_of(env.vault.address)
    receipt = env.send(
        env.vault.functions.payWithSignatures(outer, env.signed_payment(outer, signers)),
        env.outsider,
    )
    _assert_blocked(attacker)
    assert len(env.events(receipt, "SignedPaymentExecuted")) == 1
    assert env.eth_of(sink) == 0
    assert env.eth_of(env.vault.address) == before - ETHER
    space = env.vault.functions.paymentNonceSpace().call()
    assert env.vault.functions.isNonceUsed(space, 1).call()
    assert not env.vault.functions.isNonceUsed(space, 2).call()  # the inner one can still run
