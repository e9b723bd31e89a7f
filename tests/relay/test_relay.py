"""The relay as agents and attackers use it: over HTTP, against the embedded chain and anvil.

Who gains if a rule breaks: a relayer client that changes what it submits (recipient, amount,
fee), replays an intent or moves it to another vault; a revoked or rotated key that keeps
spending through someone else's gas. Every refusal happens before the relay spends gas."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from eth_account import Account

from agentwallet import intents
from agentwallet.agent import AgentWallet, Escalated, Paid
from agentwallet.chain.node import free_port
from agentwallet.errors import AgentNotActiveError, RefReusedError
from agentwallet.protocol.models import SignedIntent
from agentwallet.protocol.refs import to_ref
from agentwallet.relay import RelayClient, RelayServer, RelayService
from agentwallet.vault import Vault
from tests.sdk.conftest import USDC, World


def _post(relay: RelayServer, path: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(relay.url + path, content=content, timeout=30)


def _refused(
    world: World, relay: RelayServer, signed: SignedIntent, code: str, fee: int = 0
) -> str:
    """The relay answers 4xx with ``code`` and spends no gas."""
    relayer = relay.service.address
    before = world.chain.nonce(relayer), world.chain.balance(relayer)
    body = {"intent": json.loads(signed.to_json()), "fee": str(fee)}
    response = _post(relay, "/intents", body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert (world.chain.nonce(relayer), world.chain.balance(relayer)) == before
    return str(error["message"])


def test_an_agent_without_gas_pays_through_the_relay(world: World, relay: RelayServer) -> None:
    broke = Account.create()  # a fresh key with no ETH at all
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    wallet.rotate_key(broke)  # the agent moves onto the gasless key
    assert world.chain.balance(broke.address) == 0
    paid = wallet.pay(world.payee, 10 * USDC, "tUSDC", ref="relayed-1", relay=relay.url)
    assert isinstance(paid, Paid) and (paid.amount, paid.ref) == (10 * USDC, "relayed-1")
    assert world.chain.balance(broke.address) == 0 and world.chain.nonce(broke.address) == 0
    # the same ref again: the earlier result, nothing sent; another payment: refused
    nonce = world.chain.nonce(relay.service.address)
    assert wallet.pay(world.payee, 10 * USDC, "tUSDC", ref="relayed-1", relay=relay.url) == paid
    with pytest.raises(RefReusedError):
        wallet.pay(world.payee, 11 * USDC, "tUSDC", ref="relayed-1", relay=relay.url)
    assert world.chain.nonce(relay.service.address) == nonce
    state = wallet.payment_state("relayed-1")
    assert (state.state, state.outcome) == ("paid", paid)


def test_a_relayed_intent_that_escalates_becomes_the_agents_request(
    world: World, relay: RelayServer
) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    outcome = wallet.pay(world.payee, 300 * USDC, "tUSDC", ref="relayed-big", relay=relay.url)
    assert isinstance(outcome, Escalated) and "over per-payment limit" in outcome.reasons
    assert world.vault.request(outcome.request_id).agent == world.agent.address
    job = relay.service.status(
        RelayClient(relay.url).submit_intent(
            wallet.sign_intent(world.payee, USDC, "tUSDC", ref="x")
        )["id"]
    )
    assert job["kind"] == "intent"
    wallet.cancel(outcome.request_id)  # the agent owns the request, as after a direct pay


def test_the_relay_takes_its_fee_only_up_to_max_fee(world: World, relay: RelayServer) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    signed = wallet.sign_intent(world.payee, 5 * USDC, "tUSDC", ref="fee-1", max_fee=USDC)
    _refused(world, relay, signed, "fee_too_high", fee=USDC + 1)
    before = world.vault.balance("tUSDC")
    record = RelayClient(relay.url).submit_intent(signed, USDC)
    final = RelayClient(relay.url).wait(record["id"])
    assert final["status"] == "paid" and final["fee"] == str(USDC)
    assert world.vault.balance("tUSDC") == before - 6 * USDC


def test_tampered_replayed_expired_and_foreign_intents_are_refused_before_gas(
    world: World, relay: RelayServer
) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    signed = wallet.sign_intent(world.payee, 5 * USDC, "tUSDC", ref="attack-1", max_fee=USDC)
    for field, value in (
        ("to", world.outsider.address),
        ("amount", 50 * USDC),
        ("max_fee", 10 * USDC),
        ("deadline", signed.deadline + 60),
    ):
        _refused(world, relay, dataclasses.replace(signed, **{field: value}), "bad_signature")
    expired = wallet.sign_intent(
        world.payee, USDC, "tUSDC", ref="late", deadline=world.chain.timestamp() - 1
    )
    _refused(world, relay, expired, "expired")
    _refused(world, relay, dataclasses.replace(signed, chain_id=1), "wrong_chain")
    # replay: the first submission pays; a second relay (no memory of it) refuses the replay
    client = RelayClient(relay.url)
    assert client.wait(client.submit_intent(signed)["id"])["status"] == "paid"
    again = client.submit_intent(signed)  # the same relay answers with the earlier record
    assert again["status"] == "paid"
    with RelayServer(RelayService(world.chain, world.chain.dev_accounts[9]), free_port()) as url:
        fresh = RelayServer.__new__(RelayServer)
        fresh.url, fresh.service = url, relay.service
        assert "ran already" in _refused(world, fresh, signed, "nonce_used")
    # signed for another vault, submitted for this one
    owners = world.owners
    other = Vault.create(world.chain, owners[0], [o.address for o in owners], 2,
                         deployments=world.deployments, name="relay-other")  # fmt: skip
    foreign = intents.sign_intent(other, world.agent, world.payee, USDC, world.usdc, to_ref("xv"))
    _refused(world, relay, dataclasses.replace(foreign, vault=world.vault.address), "bad_signature")
    # out of policy and not escalatable: the vault is paused (a request cannot be opened)
    blocked = wallet.sign_intent(world.payee, USDC, "tUSDC", ref="while-paused")
    world.vault.pause(world.owners[2])
    assert "VaultIsPaused" in _refused(world, relay, blocked, "refused")


def test_revoked_and_rotated_keys_cannot_spend_through_the_relay(
    world: World, relay: RelayServer
) -> None:
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    before_rotation = wallet.sign_intent(world.payee, USDC, "tUSDC", ref="old-key")
    new = Account.create()
    wallet.rotate_key(new, relay=relay.url)  # rotation through the relay (POST /rotations)
    assert wallet.address == new.address
    assert "status rotated" in _refused(world, relay, before_rotation, "not_agent")
    stale = AgentWallet(world.chain, world.vault, world.agent)
    _refused(world, relay, stale.sign_intent(world.payee, USDC, "tUSDC"), "not_agent")
    assert isinstance(wallet.pay(world.payee, USDC, "tUSDC", relay=relay.url), Paid)
    pending = wallet.sign_intent(world.payee, USDC, "tUSDC", ref="before-revoke")
    world.vault.revoke_agent(world.owners[1], new.address)
    assert "status revoked" in _refused(world, relay, pending, "not_agent")
    with pytest.raises(AgentNotActiveError):  # the SDK says so before signing anything
        wallet.pay(world.payee, USDC, "tUSDC", relay=relay.url)


def test_malformed_requests_get_typed_json_errors(world: World, relay: RelayServer) -> None:
    for body, code in (
        (b"not json", "malformed"),
        ({"intent": "x"}, "malformed"),
        ({"intent": {"vault": "0x12"}}, "malformed"),
        ({"rotation": {}}, "malformed"),
    ):
        response = _post(relay, "/intents", body)
        assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert _post(relay, "/rotations", {"rotation": {"vault": 1}}).status_code == 400
    signed = AgentWallet(world.chain, world.vault, world.agent).sign_intent(world.payee, USDC)
    for address in (world.payee, world.usdc.address):  # no code; a contract but no vault
        _refused(world, relay, dataclasses.replace(signed, vault=address), "not_a_vault")
    missing = httpx.get(relay.url + "/intents/0x1234", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    health = httpx.get(relay.url + "/health", timeout=10).json()
    assert health["relayer"] == relay.service.address
    with pytest.raises(Exception, match="cannot be reached"):
        RelayClient("http://127.0.0.1:9").status("0x12")
