"""``watch`` keeps raising its anomaly alerts with the newer events: scoped calls that spend,
call requests that escalate, by an agent whose key was rotated (issues 11, 13)."""

from __future__ import annotations

from decimal import Decimal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agentwallet.audit.index import AuditIndex
from agentwallet.audit.watch import WatchConfig, Watcher
from tests.audit._helpers import rotate_key
from tests.contracts.conftest import DAY, ETHER, USDC, Env, fresh_address, ref


def test_calls_spike_and_call_escalations_burst_after_a_rotation(
    any_env: Env, index: AuditIndex
) -> None:
    env, chain = any_env, any_env.chain
    vault, usdc = env.vault, env.usdc.address
    bot: LocalAccount = Account.from_key(Web3.keccak(text="watch-calls-bot"))
    env.send_eth(env.deployer, bot.address, ETHER)
    shop = env.deploy("Marketplace", fresh_address("watch-seller"))
    other = env.deploy("Marketplace", fresh_address("watch-other-seller"))
    buy = env.calldata("buy", usdc, 30 * USDC, vault=shop)
    env.govern_signed(
        [
            ("addAgent", (bot.address, 0, 0, False)),
            ("setLimits", (bot.address, usdc, 100 * USDC, 1000 * USDC, DAY)),
            ("grantCall", (bot.address, shop.address, buy[:4], 0, 0, DAY)),
        ],
        nonce=6101,
    )
    config = WatchConfig(expiry_window=2 * DAY, spike_min=Decimal(1), burst_count=3)
    watcher = Watcher(index, chain, [vault.address], config)
    watcher.poll()  # the deployment's own history: not what this test is about

    env.send(vault.functions.scopedCall(shop.address, 0, buy, usdc, 30 * USDC, ref("c")), bot)
    spikes = [a for a in watcher.poll() if a.kind == "spend_spike"]
    assert [(a.agent, a.details["token"], a.details["last_hour"]) for a in spikes] == [
        (bot.address, usdc, str(30 * USDC))
    ]
    assert "spent 30 tUSDC in the last hour" in spikes[0].message

    new_key: LocalAccount = Account.from_key(Web3.keccak(text="watch-calls-new-key"))
    env.send_eth(env.deployer, new_key.address, ETHER)
    rotate_key(env, bot, new_key)
    other_buy = env.calldata("buy", usdc, 7 * USDC, vault=other)
    for i in range(3):
        env.send(
            vault.functions.scopedCall(other.address, 0, other_buy, usdc, 7 * USDC, ref(f"x{i}")),
            new_key,
        )
    alerts = watcher.poll()
    bursts = [a for a in alerts if a.kind == "escalation_burst"]
    assert [a.agent for a in bursts] == [new_key.address]
    assert "3 payments or calls" in bursts[0].message
    waiting = [a for a in alerts if a.kind == "request_waiting"]
    assert len(waiting) == 3
    assert all("spending up to 7 tUSDC" in a.message for a in waiting), waiting
    assert not [a for a in alerts if a.kind == "new_recipient"]  # a call target is no payee
    assert watcher.poll() == []
