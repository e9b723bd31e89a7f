"""Scoped calls move funds: the audit counts them in spend, what-if and reconcile, and lists
call requests (issue 13)."""

from __future__ import annotations

from web3.contract import Contract

from agentwallet.audit.index import AuditIndex
from agentwallet.audit.reconcile import reconcile
from agentwallet.audit.requests import requests_report
from agentwallet.audit.spend import spend_payments, spend_report
from agentwallet.audit.trail import trail
from agentwallet.audit.whatif import Limits, whatif
from tests.contracts.conftest import DAY, ETH, ETHER, USDC, Env, fresh_address, ref


def _grant(env: Env, shop: Contract, data: bytes, max_value: int, nonce: int) -> None:
    args = (env.agent.address, shop.address, data[:4], max_value, max_value, DAY)
    env.govern_signed([("grantCall", args)], nonce=nonce)


def test_calls_count_in_spend_whatif_and_reconcile_and_call_requests_are_listed(
    any_env: Env, index: AuditIndex
) -> None:
    env, chain = any_env, any_env.chain
    vault, usdc = env.vault, env.usdc.address
    shop = env.deploy("Marketplace", fresh_address("audit-seller"))
    other = env.deploy("Marketplace", fresh_address("audit-other-seller"))
    buy = env.calldata("buy", usdc, 30 * USDC, vault=shop)
    buy_eth = env.calldata("buyWithEth", vault=shop)
    _grant(env, shop, buy, 0, 5101)
    _grant(env, shop, buy_eth, ETHER, 5102)
    call = vault.functions.scopedCall
    env.send(call(shop.address, 0, buy, usdc, 30 * USDC, ref("call-usdc")), env.agent)
    env.send(call(shop.address, ETHER // 4, buy_eth, ETH, 0, ref("call-eth")), env.agent)
    # calls outside the grants escalate: one stays open, one the owners execute by signature
    other_buy = env.calldata("buy", usdc, 7 * USDC, vault=other)
    receipt = env.send(call(other.address, 0, other_buy, usdc, 7 * USDC, ref("open")), env.agent)
    open_id = env.event(receipt, "CallRequested")["requestId"]
    receipt = env.send(call(other.address, 0, other_buy, usdc, 7 * USDC, ref("signed")), env.agent)
    signed_id = env.event(receipt, "CallRequested")["requestId"]
    env.send(
        env.rq.executeWithSignatures(signed_id, env.packed(signed_id, env.owners[:2])),
        env.outsider,
    )
    index.sync(chain, [vault.address])
    cid = chain.chain_id

    rows = [
        r
        for r in spend_payments(index, cid, vault.address, agent=env.agent.address)
        if r.event == "CallExecuted"
    ]
    assert [(r.ref, r.symbol, r.amount, r.via) for r in rows] == [
        ("call-usdc", "tUSDC", str(30 * USDC), "direct"),
        ("call-eth", "ETH", str(ETHER // 4), "direct"),
        ("signed", "tUSDC", str(7 * USDC), f"request #{signed_id}"),
    ]
    assert rows[0].recipient == shop.address
    assert sorted(rows[2].approvals) == sorted(o.address for o in env.owners[:2])
    daily = spend_report(index, cid, vault.address, agent=env.agent.address, token=usdc)
    assert sum(r.total_base_units for r in daily) >= 37 * USDC

    recon = {r.symbol: r for r in reconcile(index, chain, vault.address)}
    assert recon["tUSDC"].difference_base_units == 0, recon["tUSDC"]
    assert recon["ETH"].difference_base_units == 0, recon["ETH"]

    requests = {r.request_id: r for r in requests_report(index, cid, vault.address, "all")}
    assert requests[open_id].kind == "call" and requests[open_id].status == "pending"
    assert (requests[open_id].ref, requests[open_id].to) == ("open", other.address)
    assert requests[open_id].amount == "7 tUSDC"
    assert requests[signed_id].status == "executed"
    assert open_id in {r.request_id for r in requests_report(index, cid, vault.address, "open")}

    texts = [r.what for r in trail(index, cid, vault.address, env.agent.address)]
    assert any(t.startswith(f"called {shop.address}") and "30 tUSDC" in t for t in texts)
    assert any(t.startswith(f"escalated a call to {other.address}") for t in texts)

    replay = whatif(index, cid, vault.address, env.agent.address, {usdc: Limits(USDC, USDC, DAY)})
    calls = [r for r in replay if r.to in (shop.address, other.address)]
    # the 30 tUSDC call ran; under a 1 tUSDC limit it would have escalated
    assert [(r.amount, r.actual, r.proposed) for r in calls][0] == (
        "30 tUSDC",
        "paid",
        "escalates",
    )
    assert [r.actual.split(" ")[0] for r in calls] == ["paid", "escalated", "escalated"]
