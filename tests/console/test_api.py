"""The console's server side on the embedded chain: pages show what owners decide on; the API
builds exactly the transactions and typed data the wallet signs, and refuses (before anything is
signed) a request no longer pending, a non-owner, and any signature that is not an owner's over
the vault's digest of that request. A "wallet" here is the owner's dev account signing what the
API returned, as a browser wallet would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from starlette.testclient import TestClient

from agentwallet.console import create_app
from agentwallet.protocol import typed_data
from tests.console.conftest import USDC, Env, escalate

BASE = "http://127.0.0.1"


@pytest.fixture
def client(env: Env) -> TestClient:
    return TestClient(create_app(env.console), base_url=BASE)


def send(env: Env, account: LocalAccount, prepared: dict[str, Any]) -> dict[str, Any]:
    """What a wallet does with eth_sendTransaction: sign and send the given tx, unchanged."""
    tx = prepared["tx"]
    assert tx["from"] == account.address
    receipt = env.chain.transactor.send(
        account, tx["to"], bytes(HexBytes(tx["data"])), int(tx["value"], 16), gas=int(tx["gas"], 16)
    )
    return dict(receipt)


def wallet_sign(account: LocalAccount, typed: dict[str, Any]) -> str:
    """What a wallet does with eth_signTypedData_v4: sign the JSON document as given."""
    signed = account.sign_message(encode_typed_data(full_message=json.loads(json.dumps(typed))))
    return HexBytes(signed.signature).to_0x_hex()


def typed_for(client: TestClient, request_id: int, owner: LocalAccount) -> dict[str, Any]:
    """The typed data the console gives ``owner``'s wallet for request ``request_id``."""
    answer = post(
        client, f"/api/vaults/test/requests/{request_id}/typed-data", {"from": owner.address}
    )
    assert answer.status_code == 200, answer.text
    typed: dict[str, Any] = answer.json()["typedData"]
    return typed


def post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, json=body)


def test_requests_page_shows_everything_an_owner_decides_on(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    page = client.get("/vaults/test/requests")
    assert page.status_code == 200
    html = page.text
    assert f'id="request-{rid}"' in html
    for text in (
        "travel-agent (0x9965…A4dc) wants to pay 250 tUSDC to acme-hotels (0x14dC…9955)",
        "inv-2026-0042",  # the ref as text
        "over per-payment limit",
        "250000000 base units",
        "0/2 on-chain: none",
        "0/2 off-chain",
        "expires",
    ):
        assert text in html, text


def test_governance_proposal_in_plain_words(env: Env, client: TestClient) -> None:
    alice = env.owners[0]
    env.world.vault.propose_set_limits(
        alice, env.world.agent.address, "tUSDC", 50 * USDC, 200 * USDC, 86400
    )
    html = client.get("/vaults/test/requests").text
    assert "alice" in html and "proposes" in html
    assert "setLimits" in html and "travel-agent" in html and "tUSDC" in html


def test_approve_on_chain_then_execute_by_threshold(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice, bob = env.owners[:2]
    prepared = post(
        client, f"/api/vaults/test/requests/{rid}/tx", {"action": "approve", "from": alice.address}
    ).json()
    assert prepared["tx"]["to"] == env.world.vault.address
    request = env.world.vault.find_request(rid)
    assert (
        prepared["tx"]["data"]
        == "0x" + env.world.vault.bindings.encode_request_call("approve", request).hex()
    )
    assert ("ref", "inv-2026-0042") in [tuple(r) for r in prepared["table"]]
    send(env, alice, prepared)
    assert env.world.vault.request(rid).approvals == (alice.address,)
    # alice again: the simulation refuses before her wallet is asked
    again = post(
        client, f"/api/vaults/test/requests/{rid}/tx", {"action": "approve", "from": alice.address}
    )
    assert again.status_code == 400 and again.json()["type"] == "AlreadyApprovedError"
    before = env.world.vault.balance("tUSDC")
    send(
        env,
        bob,
        post(
            client,
            f"/api/vaults/test/requests/{rid}/tx",
            {"action": "approve", "from": bob.address},
        ).json(),
    )
    assert env.world.vault.request(rid).status == "executed"
    assert env.world.vault.balance("tUSDC") == before - 250 * USDC


def test_signatures_collected_until_threshold_then_executed(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice, bob, carol = env.owners
    base = f"/api/vaults/test/requests/{rid}"
    signed = []
    for owner in (carol, alice):
        answer = post(client, base + "/typed-data", {"from": owner.address}).json()
        typed = answer["typedData"]
        # exactly the SDK's wallet JSON of the request, whose digest is the vault's
        request = env.world.vault.find_request(rid)
        domain = env.world.vault.bindings.eip712_domain()
        assert typed == typed_data.wallet_json(typed_data.request_message(domain, request))
        assert answer["digest"] == "0x" + env.world.vault.bindings.request_digest(request).hex()
        kept = post(
            client,
            base + "/signatures",
            {"signature": wallet_sign(owner, typed), "signer": owner.address},
        )
        assert kept.status_code == 200, kept.text
        signed.append(owner.address)
        assert kept.json()["signatures"] == sorted(signed)
    html = client.get("/vaults/test/requests").text
    assert "2/2 off-chain" in html and "Execute with 2 signatures" in html
    # anyone may send the execution: bob, who signed nothing
    prepared = post(
        client, base + "/tx", {"action": "executeWithSignatures", "from": bob.address}
    ).json()
    send(env, bob, prepared)
    assert env.world.vault.request(rid).status == "executed"
    # and it is no longer offered
    assert f'id="request-{rid}"' not in client.get("/vaults/test/requests").text


def test_signatures_survive_a_restart_of_the_console(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice = env.owners[0]
    typed = typed_for(client, rid, alice)
    post(
        client,
        f"/api/vaults/test/requests/{rid}/signatures",
        {"signature": wallet_sign(alice, typed)},
    )
    from tests.console.conftest import make_console

    fresh = TestClient(create_app(make_console(env.world, env.home)), base_url=BASE)
    assert "1/2 off-chain: alice" in fresh.get("/vaults/test/requests").text


# ------------------------------------------------------------------------- as an attacker


def test_signature_by_a_stranger_is_refused_and_not_kept(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice = env.owners[0]
    typed = typed_for(client, rid, alice)
    answer = post(
        client,
        f"/api/vaults/test/requests/{rid}/signatures",
        {"signature": wallet_sign(env.world.outsider, typed)},
    )
    assert answer.status_code == 400
    assert answer.json()["type"] == "SignatureMismatchError"
    assert "not an owner" in answer.json()["error"]
    assert "0/2 off-chain" in client.get("/vaults/test/requests").text


def test_a_stranger_gets_no_typed_data_and_no_transaction(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    stranger = env.world.outsider.address
    for path, body in (
        ("/typed-data", {"from": stranger}),
        ("/tx", {"action": "approve", "from": stranger}),
        ("/tx", {"action": "reject", "from": stranger}),
    ):
        answer = post(client, f"/api/vaults/test/requests/{rid}{path}", body)
        assert answer.status_code == 403, path
        assert "not an owner" in answer.json()["error"]
    answer = post(client, "/api/vaults/test/actions", {"action": "pause", "from": stranger})
    assert answer.status_code == 403


def test_signature_made_for_another_request_or_changed_data_is_refused(
    env: Env, client: TestClient
) -> None:
    first = escalate(env.world, ref="inv-1")
    second = escalate(env.world, 300 * USDC, ref="inv-2")
    alice = env.owners[0]
    typed = typed_for(client, first, alice)
    # alice's real signature of request 1, replayed for request 2
    answer = post(
        client,
        f"/api/vaults/test/requests/{second}/signatures",
        {"signature": wallet_sign(alice, typed)},
    )
    assert answer.status_code == 400 and answer.json()["type"] == "SignatureMismatchError"
    # a page (or an extension) that lowered the amount before the wallet signed it
    tampered = json.loads(json.dumps(typed))
    tampered["message"]["amount"] = "1"
    answer = post(
        client,
        f"/api/vaults/test/requests/{first}/signatures",
        {"signature": wallet_sign(alice, tampered)},
    )
    assert answer.status_code == 400
    # the signature claims alice but is by someone else
    answer = post(
        client,
        f"/api/vaults/test/requests/{first}/signatures",
        {"signature": wallet_sign(env.owners[1], typed), "signer": alice.address},
    )
    assert answer.status_code == 400 and "not by the wallet's account" in answer.json()["error"]
    for junk in ("0x1234", "not hex", "0x" + "00" * 65):
        answer = post(client, f"/api/vaults/test/requests/{first}/signatures", {"signature": junk})
        assert answer.status_code == 400, junk
        assert answer.json()["type"] == "SignatureMismatchError"
    assert "0/2 off-chain" in client.get("/vaults/test/requests").text


def test_one_signature_does_not_execute(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice = env.owners[0]
    typed = typed_for(client, rid, alice)
    post(
        client,
        f"/api/vaults/test/requests/{rid}/signatures",
        {"signature": wallet_sign(alice, typed)},
    )
    answer = post(
        client,
        f"/api/vaults/test/requests/{rid}/tx",
        {"action": "executeWithSignatures", "from": alice.address},
    )
    assert answer.status_code == 400
    assert "needs 2 owner signatures, got 1" in answer.json()["error"]


def test_request_no_longer_pending_is_refused_before_signing(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice, bob = env.owners[:2]
    typed = typed_for(client, rid, alice)
    env.world.vault.reject(bob, rid)  # decided behind the page's back
    for path, body in (
        ("/typed-data", {"from": alice.address}),
        ("/tx", {"action": "approve", "from": alice.address}),
        ("/tx", {"action": "reject", "from": alice.address}),
        ("/signatures", {"signature": wallet_sign(alice, typed)}),
    ):
        answer = post(client, f"/api/vaults/test/requests/{rid}{path}", body)
        assert answer.status_code == 409, path
        assert answer.json()["type"] == "RequestNotPendingError"
        assert "rejected, not pending" in answer.json()["error"]


def test_reject_closes_the_payment_request(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    carol = env.owners[2]
    send(
        env,
        carol,
        post(
            client,
            f"/api/vaults/test/requests/{rid}/tx",
            {"action": "reject", "from": carol.address},
        ).json(),
    )
    assert env.world.vault.request(rid).status == "rejected"


def test_risk_reduction_transactions(env: Env, client: TestClient) -> None:
    vault, agent, alice = env.world.vault, env.world.agent.address, env.owners[0]
    state = client.get("/vaults/test/state").text
    assert "travel-agent" in state and "10000 tUSDC" not in state  # amounts in their own cells
    assert "100" in state and "500" in state
    prepared = post(
        client,
        "/api/vaults/test/actions",
        {
            "action": "reduceLimits",
            "from": alice.address,
            "agent": agent,
            "token": env.world.usdc.address,
            "max": "40",
            "allowance": "200",
        },
    ).json()
    assert ["max per payment", "100 → 40 tUSDC"] in prepared["table"]
    send(env, alice, prepared)
    assert vault.policy(agent, "tUSDC").max_per_payment == 40 * USDC
    raised = post(
        client,
        "/api/vaults/test/actions",
        {
            "action": "reduceLimits",
            "from": alice.address,
            "agent": agent,
            "token": "tUSDC",
            "max": "90",
            "allowance": "200",
        },
    )
    assert raised.status_code == 400 and raised.json()["type"] == "LimitNotReducedError"
    send(
        env,
        alice,
        post(
            client,
            "/api/vaults/test/actions",
            {"action": "pauseAgent", "from": alice.address, "agent": agent},
        ).json(),
    )
    assert vault.agent(agent).status == "paused"
    send(
        env,
        alice,
        post(client, "/api/vaults/test/actions", {"action": "pause", "from": alice.address}).json(),
    )
    assert vault.paused()
    assert 'id="vault-status">paused' in client.get("/vaults/test/state").text
    send(
        env,
        alice,
        post(
            client,
            "/api/vaults/test/actions",
            {"action": "revokeAgent", "from": alice.address, "agent": agent},
        ).json(),
    )
    assert vault.agent(agent).status == "revoked"


def test_audit_page_shows_trail_with_refs_and_alerts(env: Env, client: TestClient) -> None:
    rid = escalate(env.world, ref="inv-77")
    html = client.get("/vaults/test/audit").text
    assert "PaymentRequested" in html and "inv-77" in html
    assert "request_waiting" in html and f"request #{rid}" in html
    filtered = client.get(f"/vaults/test/audit?agent={env.world.agent.address}").text
    assert "PaymentRequested" in filtered


def test_bad_input_is_a_typed_error(env: Env, client: TestClient) -> None:
    rid = escalate(env.world)
    alice = env.owners[0].address
    assert client.get("/vaults/nope/requests").status_code == 404
    assert "serves no vault named &#39;nope&#39;" in client.get("/vaults/nope/requests").text
    answer = client.post(
        f"/api/vaults/test/requests/{rid}/tx",
        content="action=approve",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]
    answer = post(client, f"/api/vaults/test/requests/{rid}/tx", {"action": "drain", "from": alice})
    assert answer.status_code == 400 and "unknown action" in answer.json()["error"]
    answer = post(client, f"/api/vaults/test/requests/{rid}/tx", {"action": "approve"})
    assert answer.status_code == 400 and "missing 'from'" in answer.json()["error"]
    answer = post(client, "/api/vaults/test/requests/999/tx", {"action": "approve", "from": alice})
    assert answer.status_code == 404
    answer = post(client, "/api/vaults/test/actions", {"action": "pauseAgent", "from": "0xnot"})
    assert answer.status_code == 400 and answer.json()["type"] == "InvalidAddressError"


def test_other_hosts_are_refused(env: Env) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 gets nothing."""
    evil = TestClient(create_app(env.console), base_url="http://evil.example")
    assert evil.get("/vaults/test/requests").status_code == 400
    assert evil.get("/api/vaults/test/context").status_code == 400


def test_context_gives_the_chain_and_owners(env: Env, client: TestClient) -> None:
    ctx = client.get("/api/vaults/test/context").json()
    assert ctx["chainId"] == env.chain.chain_id
    assert ctx["owners"] == env.world.vault.owners()
    assert ctx["vault"] == env.world.vault.address


def test_an_agents_ref_cannot_inject_script_into_the_owners_page(
    env: Env, client: TestClient
) -> None:
    """The agent chooses the ref: as page content it is text, never markup."""
    hostile = "<script>alert(1)</script>"
    rid = escalate(env.world, ref=hostile)
    for path in ("/vaults/test/requests", "/vaults/test/audit"):
        html = client.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert hostile not in html, path
    table = post(
        client,
        f"/api/vaults/test/requests/{rid}/tx",
        {"action": "approve", "from": env.owners[0].address},
    ).json()["table"]
    assert ["ref", hostile] in table  # JSON for the script, which sets it as textContent


def test_a_sub_agents_request_shows_its_delegation_chain(env: Env, client: TestClient) -> None:
    from agentwallet.agent import AgentWallet, Escalated

    world = env.world
    parent, child = world.agent, env.chain.dev_accounts[6]
    vault = world.vault
    for data in (
        vault.bindings.encode("addSubAgent", parent.address, child.address, 0, 0, False),
        vault.bindings.encode(
            "setSubAgentLimits", child.address, world.usdc.address, 50 * USDC, 100 * USDC, 86400
        ),
    ):
        env.chain.transactor.send(parent, vault.address, data)
    outcome = AgentWallet(env.chain, vault, child).pay(world.payee, 60 * USDC, "tUSDC", ref="sub-1")
    assert isinstance(outcome, Escalated)
    html = client.get("/vaults/test/requests").text
    assert f"{child.address[:6]}" in html
    assert "delegation" in html and "← travel-agent" in html
