"""The x402 loop end to end on anvil, all on 127.0.0.1: the example paid API (x402 server
side), ``agentwallet facilitator`` (exact/erc7710, settling through the vault's
``redeemDelegations``) and the agent's client (:func:`fetch_paid`). Each test is the attack or
failure it stops: a price over the cap (nothing signed), a replayed payment, an exhausted budget,
a revoked agent, a facilitator changing what the agent signed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from x402 import PaymentPayload
from x402.http.constants import PAYMENT_SIGNATURE_HEADER
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_signature_header,
    encode_payment_signature_header,
)

from agentwallet.agent import AgentWallet
from agentwallet.chain.node import free_port
from agentwallet.errors import ContractRevertError
from agentwallet.examples.paid_api import paid_app
from agentwallet.facilitator import (
    Erc7710Facilitator,
    facilitator_app,
    redeem_calldata,
    transfer_execution,
)
from agentwallet.keys import KeyStore
from agentwallet.tools import AgentTools
from agentwallet.x402client import (
    Erc7710ClientScheme,
    PaymentRejectedError,
    PriceOverLimitError,
    fetch_paid,
    resource_ref,
    sign_intent_context,
)
from tests.agents.conftest import PASSWORD, USDC, AgentHome

PRICE = 2 * USDC  # inside the agent's 100 tUSDC per payment
EXPENSIVE = 150 * USDC  # over it


class ServerThread:
    """A uvicorn server on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Loop:
    home: AgentHome
    facilitator: Erc7710Facilitator
    facilitator_url: str
    api: str

    @property
    def paid_url(self) -> str:
        return self.api + "/paid"

    def wallet(self) -> AgentWallet:
        return self.home.wallet()


@pytest.fixture
def loop(servers: Loop) -> Loop:
    """The servers, with the facilitator's memory of settled payments rolled back with the
    chain (each test starts from the same snapshot, so the same payment can be signed again)."""
    servers.facilitator._settled.clear()
    return servers


@pytest.fixture(scope="session")
def servers(agent_home: AgentHome) -> Iterator[Loop]:
    world = agent_home.world
    scheme = Erc7710Facilitator(world.chain, world.chain.dev_accounts[9])
    fac = ServerThread(facilitator_app(scheme))
    prices = {"/paid": PRICE, "/expensive": EXPENSIVE}
    api = ServerThread(
        paid_app(fac.url, world.payee, world.usdc.address, prices, world.chain.chain_id)
    )
    yield Loop(agent_home, scheme, fac.url, api.url)
    api.stop()
    fac.stop()


class Recorder:
    """An httpx client that keeps every request it sends (to see what left the client)."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []
        self.client = httpx.Client(timeout=60, event_hooks={"request": [self.sent.append]})

    def signatures(self) -> list[str]:
        return [
            r.headers[PAYMENT_SIGNATURE_HEADER]
            for r in self.sent
            if PAYMENT_SIGNATURE_HEADER in r.headers
        ]


def test_a_402_resource_within_the_caps_is_paid_and_served(loop: Loop) -> None:
    world = loop.home.world
    token = world.chain.w3.eth.contract(address=world.usdc.address, abi=ERC20_ABI)
    before = token.functions.balanceOf(world.payee).call()
    free = fetch_paid(loop.wallet(), loop.api + "/free")
    assert free.status == "free" and free.http_status == 200
    result = fetch_paid(loop.wallet(), loop.paid_url)
    assert result.status == "paid" and result.http_status == 200
    assert '"the paid content"' in result.body and result.amount == "2" and result.token == "tUSDC"
    assert token.functions.balanceOf(world.payee).call() == before + PRICE
    receipt = world.chain.w3.eth.get_transaction_receipt(result.transaction)
    assert receipt["to"] == world.vault.address  # settled through the vault's redeemDelegations
    executed = [
        world.vault.bindings.decode_log(log)
        for log in receipt["logs"]
        if log["address"] == world.vault.address
    ]
    event = next(args for name, args in filter(None, executed) if name == "PaymentExecuted")
    assert bytes(event["ref"]) == resource_ref(loop.paid_url)  # the URL is bound in
    assert event["agent"] == world.agent.address and event["amount"] == PRICE
    # the same through the model's tool
    via_tool = AgentTools(loop.wallet()).call_tool("fetch_paid", {"url": loop.paid_url})
    assert via_tool["status"] == "paid" and via_tool["http_status"] == 200


def test_a_price_over_the_per_payment_cap_is_refused_before_signing(loop: Loop) -> None:
    recorder = Recorder()
    with pytest.raises(PriceOverLimitError, match="nothing was signed"):
        fetch_paid(loop.wallet(), loop.api + "/expensive", http=recorder.client)
    assert len(recorder.sent) == 1 and recorder.signatures() == []
    recorder = Recorder()
    with pytest.raises(PriceOverLimitError, match="you accept"):
        fetch_paid(loop.wallet(), loop.paid_url, max_amount="1.5", http=recorder.client)
    assert recorder.signatures() == []
    # escalating instead opens the owners' request; nothing is served
    out = fetch_paid(loop.wallet(), loop.api + "/expensive", on_over_limit="escalate")
    assert out.status == "escalated" and out.request_id and out.body == ""
    assert loop.home.world.vault.request(out.request_id).status == "pending"


def test_a_replayed_payment_is_refused_by_the_facilitator_and_by_the_vault(loop: Loop) -> None:
    world = loop.home.world
    recorder = Recorder()
    assert fetch_paid(loop.wallet(), loop.paid_url, http=recorder.client).status == "paid"
    (signature,) = recorder.signatures()
    # the server's buyer, or anyone who saw the header, sends it again
    again = httpx.get(loop.paid_url, headers={PAYMENT_SIGNATURE_HEADER: signature})
    assert again.status_code == 402 and "the paid content" not in again.text
    payload = decode_payment_signature_header(signature)
    body = {
        "x402Version": 2,
        "paymentPayload": payload.model_dump(by_alias=True, exclude_none=True),
        "paymentRequirements": payload.accepted.model_dump(by_alias=True, exclude_none=True),
    }
    verdict = httpx.post(loop.facilitator_url + "/verify", json=body).json()
    assert verdict["isValid"] is False and verdict["invalidReason"] == "payment_replayed"
    settled = httpx.post(loop.facilitator_url + "/settle", json=body).json()
    assert settled["success"] is False and settled["transaction"] == ""
    # a facilitator that forgets (a fresh one) is stopped by the vault: the nonce is spent
    context = bytes.fromhex(payload.payload["permissionContext"][2:])
    data = redeem_calldata(context, transfer_execution(world.usdc.address, world.payee, PRICE))
    with pytest.raises(ContractRevertError, match="NonceAlreadyUsed"):
        world.chain.transactor.simulate(world.outsider.address, world.vault.address, data)


def test_an_exhausted_budget_is_refused_before_signing(loop: Loop) -> None:
    world = loop.home.world
    wallet = loop.wallet()
    for _ in range(4):  # 4 x 100 + 98 of the 500 tUSDC per day
        wallet.pay(world.payee, 100 * USDC, world.usdc.address)
    wallet.pay(world.payee, 99 * USDC, world.usdc.address)
    recorder = Recorder()
    with pytest.raises(PriceOverLimitError, match="outside your limits"):
        fetch_paid(wallet, loop.paid_url, http=recorder.client)
    assert recorder.signatures() == []


def test_a_revoked_agent_cannot_pay_and_its_signed_payment_dies_with_it(loop: Loop) -> None:
    world = loop.home.world
    wallet = loop.wallet()
    # a payment signed before the revocation, presented after it
    recorder = Recorder()
    first = httpx.get(loop.paid_url)
    required = decode_payment_required_header(first.headers["PAYMENT-REQUIRED"])
    req = required.accepts[0]
    inner = Erc7710ClientScheme(wallet, resource_ref(loop.paid_url)).create_payment_payload(req)
    world.vault.revoke_agent(world.owners[0], world.agent.address)
    with pytest.raises(ContractRevertError, match="AgentNotActive"):
        fetch_paid(wallet, loop.paid_url, http=recorder.client)
    assert recorder.signatures() == []
    stale = PaymentPayload(payload=inner, accepted=req, resource=required.resource)
    late = httpx.get(
        loop.paid_url, headers={PAYMENT_SIGNATURE_HEADER: encode_payment_signature_header(stale)}
    )
    assert late.status_code == 402 and "the paid content" not in late.text


def test_a_facilitator_cannot_settle_another_amount_or_recipient(loop: Loop) -> None:
    world = loop.home.world
    wallet = loop.wallet()
    deadline = world.chain.timestamp() + 600
    context = sign_intent_context(
        wallet, world.usdc.address, world.payee, PRICE, resource_ref(loop.paid_url), deadline
    )
    thief = world.outsider.address
    for execution in (
        transfer_execution(world.usdc.address, world.payee, PRICE + 1),  # more
        transfer_execution(world.usdc.address, world.payee, PRICE - 1),  # less, then again
        transfer_execution(world.usdc.address, thief, PRICE),  # to itself
        transfer_execution(world.chain.dev_accounts[0].address, world.payee, PRICE),  # token
    ):
        with pytest.raises(ContractRevertError):
            world.chain.transactor.send(
                world.outsider, world.vault.address, redeem_calldata(context, execution)
            )
    # exactly what was signed goes through
    good = transfer_execution(world.usdc.address, world.payee, PRICE)
    receipt = world.chain.transactor.send(
        world.outsider, world.vault.address, redeem_calldata(context, good)
    )
    assert receipt["status"] == 1


ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


def test_malformed_payments_get_clear_refusals(loop: Loop) -> None:
    bad = httpx.post(loop.facilitator_url + "/verify", content=b"not json")
    assert bad.status_code == 400
    supported = httpx.get(loop.facilitator_url + "/supported").json()
    assert supported["kinds"][0]["scheme"] == "exact"
    assert supported["signers"]["eip155:*"] == [loop.facilitator.address]
    garbage = httpx.get(loop.paid_url, headers={PAYMENT_SIGNATURE_HEADER: "bm90IGEgcGF5bG9hZA=="})
    assert garbage.status_code in (400, 402)


def test_a_delegation_above_the_gas_ceiling_is_refused_and_the_client_says_so(loop: Loop) -> None:
    world = loop.home.world
    token = world.chain.w3.eth.contract(address=world.usdc.address, abi=ERC20_ABI)
    before = token.functions.balanceOf(world.payee).call()
    loop.facilitator.gas_ceiling = 30_000  # a hostile delegation manager would burn more
    try:
        with pytest.raises(PaymentRejectedError, match="nothing was paid"):
            fetch_paid(loop.wallet(), loop.paid_url)
    finally:
        loop.facilitator.gas_ceiling = 250_000
    assert token.functions.balanceOf(world.payee).call() == before


def test_the_cli_facilitator_and_fetch_run_the_loop(agent_home: AgentHome) -> None:
    world = agent_home.world
    KeyStore(agent_home.home, scrypt_n=2**10).import_key(
        "fac", world.chain.dev_accounts[6].key.hex(), PASSWORD
    )
    port = free_port()
    cli = [sys.executable, "-m", "agentwallet"]
    proc = subprocess.Popen(
        [*cli, "--as", "fac", "facilitator", "--port", str(port)],
        env=agent_home.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    fac_url = f"http://127.0.0.1:{port}"
    api = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(fac_url + "/supported", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        prices = {"/paid": PRICE, "/expensive": EXPENSIVE}
        app = paid_app(fac_url, world.payee, world.usdc.address, prices, world.chain.chain_id)
        api = ServerThread(app)

        def fetch(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*cli, "--json", "--as", "agent", "fetch", "--vault", "test", *args],
                env=agent_home.env,
                capture_output=True,
                text=True,
                timeout=120,
            )

        ok = fetch(api.url + "/paid")
        assert ok.returncode == 0, ok.stderr
        data = json.loads(ok.stdout)
        assert data["status"] == "paid" and data["transaction"] and "paid content" in data["body"]
        over = fetch(api.url + "/expensive")
        assert over.returncode == 1 and over.stderr.startswith("error: ")
        assert "nothing was signed" in over.stderr and "Traceback" not in over.stderr
    finally:
        if api is not None:
            api.stop()
        proc.terminate()
        proc.wait(timeout=20)
    assert PASSWORD not in ok.stdout + ok.stderr + over.stdout + over.stderr
