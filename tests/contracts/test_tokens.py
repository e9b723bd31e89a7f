"""Non-standard ERC-20s: no return value, false return value, fee on transfer."""

from __future__ import annotations

from web3.contract import Contract

from tests.contracts.conftest import USDC, Env, expect_revert, fresh_address, ref

LIMITS = (100 * USDC, 1_000 * USDC, 86_400)


def _funded(env: Env, artifact: str, amount: int = 10_000 * USDC) -> Contract:
    """Deploy ``artifact``, deposit ``amount`` through the vault, give the agent limits."""
    token = env.deploy(artifact)
    env.send(token.functions.mint(env.deployer.address, amount), env.deployer)
    env.send(token.functions.approve(env.vault.address, amount), env.deployer)
    env.send(env.vault.functions.deposit(token.address, amount), env.deployer)
    env.govern("setLimits", env.agent.address, token.address, *LIMITS)
    return token


def test_token_without_return_value_works(env: Env) -> None:
    token = _funded(env, "NoReturnToken")
    to = fresh_address("usdt")
    _r, rid = env.pay(token.address, to, 60 * USDC, ref("usdt"))
    assert rid == 0
    assert token.functions.balanceOf(to).call() == 60 * USDC
    rid = env.pay(token.address, to, 600 * USDC)[1]
    env.send(env.rq.approve(rid), env.owners[0])
    env.send(env.rq.approve(rid), env.owners[1])
    assert token.functions.balanceOf(to).call() == 660 * USDC
    assert token.functions.balanceOf(env.vault.address).call() == 10_000 * USDC - 660 * USDC


def test_token_returning_false_reverts_and_moves_nothing(env: Env) -> None:
    token = _funded(env, "FalseToken")
    to = fresh_address("false")
    rid = env.pay(token.address, to, 600 * USDC)[1]
    env.send(env.rq.approve(rid), env.owners[0])
    env.send(token.functions.setFailing(True), env.deployer)
    budget = env.available(token.address)
    with expect_revert("SafeERC20FailedOperation", token.address):
        env.pay(token.address, to, 60 * USDC)
    with expect_revert("SafeERC20FailedOperation", token.address):
        env.send(env.rq.approve(rid), env.owners[1])
    assert env.available(token.address) == budget  # the reverted payment consumed nothing
    assert token.functions.balanceOf(to).call() == 0
    assert token.functions.balanceOf(env.vault.address).call() == 10_000 * USDC
    assert env.status(rid) == 1
    assert env.vault.functions.approvalCount(rid).call() == 1
    # deposits through a false-returning transferFrom revert too
    env.send(token.functions.mint(env.deployer.address, 1), env.deployer)
    env.send(token.functions.approve(env.vault.address, 1), env.deployer)
    with expect_revert("SafeERC20FailedOperation", token.address):
        env.send(env.vault.functions.deposit(token.address, 1), env.deployer)


def test_fee_on_transfer_deposit_credits_what_arrived_and_payments_send_the_amount(
    env: Env,
) -> None:
    token = env.deploy("FeeToken")
    env.send(token.functions.mint(env.deployer.address, 10_000 * USDC), env.deployer)
    env.send(token.functions.approve(env.vault.address, 10_000 * USDC), env.deployer)
    receipt = env.send(env.vault.functions.deposit(token.address, 10_000 * USDC), env.deployer)
    deposited = env.event(receipt, "Deposited")
    assert deposited == {
        "from": env.deployer.address,
        "token": token.address,
        "amount": 9_900 * USDC,
    }
    assert token.functions.balanceOf(env.vault.address).call() == 9_900 * USDC
    env.govern("setLimits", env.agent.address, token.address, *LIMITS)
    to = fresh_address("fee")
    receipt, rid = env.pay(token.address, to, 100 * USDC)
    assert rid == 0
    assert env.event(receipt, "PaymentExecuted")["amount"] == 100 * USDC
    assert token.functions.balanceOf(env.vault.address).call() == 9_800 * USDC
    assert token.functions.balanceOf(to).call() == 99 * USDC  # the token took its fee


def test_deposit_rejects_eth_address_and_zero_amount(env: Env) -> None:
    with expect_revert("ZeroAddress"):
        env.send(env.vault.functions.deposit("0x" + "00" * 20, 1), env.deployer)
    with expect_revert("ZeroAmount"):
        env.send(env.vault.functions.deposit(env.usdc.address, 0), env.deployer)


def test_plain_eth_transfer_is_a_deposit(env: Env) -> None:
    receipt = env.send_eth(env.outsider, env.vault.address, 12345)
    assert env.event(receipt, "Deposited") == {
        "from": env.outsider.address,
        "token": "0x" + "00" * 20,
        "amount": 12345,
    }
