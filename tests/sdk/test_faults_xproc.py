"""Faults across processes and machines (issue 17): two "machines" (separate processes, two
``AGENTWALLET_HOME``s, one agent key) paying one ref while the first is still pending, on an
anvil node with automine off. Each test ends with the on-chain totals check: the vault's
``PaymentExecuted`` events for the ref and the balance it moved.

Who gains if the rule breaks: the payee (paid twice for one invoice) when a retrying worker
cannot see the first worker's pending payment."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentwallet import intents, once
from agentwallet.agent import AgentWallet
from agentwallet.chain import Chain, connect
from agentwallet.chain.node import AnvilProcess, free_port, start_anvil
from agentwallet.errors import (
    ChainConnectionError,
    JournalError,
    NodeUnavailableError,
    PaymentOutcomeUnknownError,
    RefPendingElsewhereError,
)
from agentwallet.keys import KeyStore
from agentwallet.protocol.models import Paid
from agentwallet.protocol.refs import to_ref
from agentwallet.vault import Vault

from .conftest import USDC, World, build_world

pytestmark = pytest.mark.anvil

PASSWORD = "xproc test password"
REPO = Path(__file__).resolve().parents[2]
#: The agent's key (anvil's dev account 5) as hex, which no output may contain.
AGENT_KEY = "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"

#: Machine A: the SDK in its own process and home; prints one JSON line.
SDK_CHILD = """
import json, sys
from pathlib import Path
from agentwallet.agent import AgentWallet
from agentwallet.chain import connect
from agentwallet.deployments import Deployments
from agentwallet.errors import AgentWalletError
from agentwallet.vault import Vault
url, vault, deployments, payee, ref, amount, strict = sys.argv[1:]
chain = connect(url)
wallet = AgentWallet(chain, Vault.at(chain, vault, Deployments(chain, Path(deployments))),
                     chain.dev_accounts[5])
try:
    out = wallet.pay(payee, int(amount), "tUSDC", ref=ref, exactly_once=strict == "1")
    print(json.dumps({"status": out.status, "tx_hash": out.tx_hash}))
except AgentWalletError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """An anvil of its own: these tests switch automine off."""
    with start_anvil(port=free_port()) as process:
        yield process


@pytest.fixture(scope="module")
def xworld(node: AnvilProcess, tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(connect(node.url), tmp_path_factory.mktemp("xproc-deployments"))


def _env(home: Path, world: World, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWALLET_")}
    env.update(
        {
            "AGENTWALLET_HOME": str(home),
            "AGENTWALLET_DEPLOYMENTS": str(world.deployments.directory),
            "AGENTWALLET_PASSWORD": PASSWORD,
            "AGENTWALLET_RPC": url,
            "AGENTWALLET_SCRYPT_N": "1024",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    return env


def machine_a(world: World, url: str, home: Path, ref: str, amount: int, strict: bool) -> Any:
    """Start machine A's payment (SDK) as a process; it waits for its receipt."""
    args = [world.vault.address, str(world.deployments.directory), world.payee, ref]
    return subprocess.Popen(
        [sys.executable, "-c", SDK_CHILD, url, *args, str(amount), "1" if strict else "0"],
        env=_env(home, world, url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def machine_b(world: World, url: str, home: Path, *args: str) -> Any:
    """Start machine B's ``agentwallet pay`` (the CLI) in its own home with the agent's key."""
    if not (home / "keys").exists():
        key = "0x" + bytes(world.agent.key).hex()
        KeyStore(home, scrypt_n=1024).import_key("agent", key, PASSWORD)
    command = ["--as", "agent", "--json", "pay", world.payee, *args, "--vault", "test"]
    return subprocess.Popen(
        [sys.executable, "-m", "agentwallet", *command],
        env=_env(home, world, url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_pool(chain: Chain, address: str, count: int, procs: list[Any]) -> None:
    """Until ``count`` transactions of ``address`` wait in the pool (fail if a process ends)."""
    deadline = time.monotonic() + 30
    while chain.nonce(address, "pending") - chain.nonce(address) < count:
        for proc in procs:
            assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the payment never reached the pool"
        time.sleep(0.1)


def finish(proc: Any) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert AGENT_KEY not in out + err
    return proc.returncode, json.loads(out.strip().splitlines()[-1]) if out.strip() else {}, err


def executed(world: World, ref: str) -> list[Any]:
    """The vault's PaymentExecuted events with ``ref`` (the on-chain totals check)."""
    logs = world.vault.contract.events.PaymentExecuted().get_logs(from_block=0)
    return [log for log in logs if bytes(log["args"]["ref"]) == to_ref(ref)]


@pytest.fixture
def manual_mining(xworld: World) -> Iterator[Chain]:
    chain = xworld.chain
    chain.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield chain
    finally:
        chain.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def mine(chain: Chain) -> None:
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


# ------------------------------------------------------------------ two machines, one ref


def test_exactly_once_second_machine_cannot_pay_a_pending_ref_twice(
    xworld: World, node: AnvilProcess, manual_mining: Chain, tmp_path: Path
) -> None:
    chain, agent = manual_mining, xworld.agent.address
    before = xworld.vault.balance("tUSDC")
    a = machine_a(xworld, node.url, tmp_path / "home-a", "inv-x1", 2 * USDC, strict=True)
    wait_pool(chain, agent, 1, [a])
    # machine B (the CLI, another home, no shared journal) while A is pending
    b = machine_b(xworld, node.url, tmp_path / "home-b", "2", "--token", "tUSDC",
                  "--ref", "inv-x1", "--exactly-once")  # fmt: skip
    code, _, err = finish(b)
    assert code == 1 and err.startswith("error: payment ref 'inv-x1' is already in the node's")
    assert "nothing was sent" in err and "retry pay with the same ref" in err
    assert chain.nonce(agent, "pending") - chain.nonce(agent) == 1  # B sent nothing
    mine(chain)
    code, first, _ = finish(a)
    assert code == 0 and first["status"] == "paid", first
    # B retries once it is mined: the answer is A's payment
    b = machine_b(xworld, node.url, tmp_path / "home-b", "2", "--token", "tUSDC",
                  "--ref", "inv-x1", "--exactly-once")  # fmt: skip
    code, again, _ = finish(b)
    assert code == 0 and again["tx_hash"] == first["tx_hash"]
    assert len(executed(xworld, "inv-x1")) == 1
    assert xworld.vault.balance("tUSDC") == before - 2 * USDC


def test_payment_state_on_a_second_machine_says_pending_elsewhere_like_pay(
    xworld: World, node: AnvilProcess, manual_mining: Chain, tmp_path: Path
) -> None:
    """Machine A's exactly-once payment of ref R waits in the pool; machine B (this process,
    its own journal) asks ``payment_state(R)``: it answers what ``pay`` on B acts on (pending
    elsewhere, nothing sent) instead of "unknown", then A's payment once it is mined."""
    chain, agent = manual_mining, xworld.agent.address
    before = xworld.vault.balance("tUSDC")
    b = AgentWallet(chain, xworld.vault, xworld.agent, journal_dir=tmp_path / "home-b")
    assert b.payment_state("inv-x4").state == "unknown"
    a = machine_a(xworld, node.url, tmp_path / "home-a", "inv-x4", 2 * USDC, strict=True)
    wait_pool(chain, agent, 1, [a])
    state = b.payment_state("inv-x4")
    assert (state.state, state.guarantee, state.outcome) == ("pending_elsewhere", "pool", None)
    assert state.nonce == intents.ref_nonce(to_ref("inv-x4"))
    with pytest.raises(RefPendingElsewhereError, match="payment_state"):
        b.pay(xworld.payee, 2 * USDC, "tUSDC", ref="inv-x4", exactly_once=True)
    assert chain.nonce(agent, "pending") - chain.nonce(agent) == 1  # B sent nothing
    mine(chain)
    code, first, _ = finish(a)
    assert code == 0 and first["status"] == "paid", first
    state = b.payment_state("inv-x4")
    assert (state.state, state.guarantee, state.tx_hash) == ("paid", "chain", first["tx_hash"])
    assert len(executed(xworld, "inv-x4")) == 1
    assert xworld.vault.balance("tUSDC") == before - 2 * USDC


def test_a_warm_wallet_finds_a_ref_another_process_paid_in_its_one_log_read(
    xworld: World, node: AnvilProcess, tmp_path: Path
) -> None:
    """Machine B is warm (its ref index has a cursor, its policy cache is filled), so its next
    lookup is the single read shared with the cache; machine A, another process with its own
    home, pays ref R. B's pay with R answers A's payment and sends nothing."""
    chain = xworld.chain
    b = AgentWallet(chain, xworld.vault, xworld.agent, journal_dir=tmp_path / "home-b")
    for i in range(2):
        assert isinstance(b.pay(xworld.payee, USDC, "tUSDC", ref=f"warm-x5-{i}"), Paid)
    a = machine_a(xworld, node.url, tmp_path / "home-a", "inv-x5", 3 * USDC, strict=False)
    code, first, _ = finish(a)
    assert code == 0 and first["status"] == "paid", first
    before = xworld.vault.balance("tUSDC"), chain.nonce(xworld.agent.address)
    again = b.pay(xworld.payee, 3 * USDC, "tUSDC", ref="inv-x5")
    assert again.tx_hash == first["tx_hash"]
    assert (xworld.vault.balance("tUSDC"), chain.nonce(xworld.agent.address)) == before
    assert len(executed(xworld, "inv-x5")) == 1
    # this process counted the agent's nonces locally and A used some: later tests in this
    # process start from the node's count, as a fresh machine B would
    chain.transactor.nonces.resync(chain, xworld.agent.address)


def test_exactly_once_racing_into_one_block_reverts_the_loser_and_answers_the_winner(
    xworld: World, node: AnvilProcess, manual_mining: Chain, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """B does not see A in the pool (a node without a pending state): both transactions land
    in one block; the vault runs the ref once and B's reverts; B answers A's payment."""
    chain, agent = manual_mining, xworld.agent.address
    before = xworld.vault.balance("tUSDC")
    a = machine_a(xworld, node.url, tmp_path / "home-a", "inv-x2", 3 * USDC, strict=True)
    wait_pool(chain, agent, 1, [a])
    monkeypatch.setattr(once, "used_in_pending_block", lambda wallet, nonce: False)
    b = AgentWallet(chain, xworld.vault, xworld.agent, journal_dir=tmp_path / "journal-b")
    result: dict[str, Any] = {}

    def pay_b() -> None:
        result["b"] = b.pay(xworld.payee, 3 * USDC, "tUSDC", ref="inv-x2", exactly_once=True)

    thread = threading.Thread(target=pay_b)
    thread.start()
    wait_pool(chain, agent, 2, [a])
    mine(chain)
    thread.join(60)
    code, first, _ = finish(a)
    assert code == 0 and first["status"] == "paid", first
    assert isinstance(result["b"], Paid) and result["b"].tx_hash == first["tx_hash"]
    assert len(executed(xworld, "inv-x2")) == 1
    assert xworld.vault.balance("tUSDC") == before - 3 * USDC


def test_default_pay_is_per_journal_two_machines_pay_a_pending_ref_twice(
    xworld: World, node: AnvilProcess, manual_mining: Chain, tmp_path: Path
) -> None:
    """The documented limit of the default (docs/sdk.md, "Exactly once"): without a shared
    journal, a second machine cannot see a *pending* direct payment, so both pay."""
    chain, agent = manual_mining, xworld.agent.address
    before = xworld.vault.balance("tUSDC")
    a = machine_a(xworld, node.url, tmp_path / "home-a", "inv-x3", 4 * USDC, strict=False)
    wait_pool(chain, agent, 1, [a])
    b = machine_b(xworld, node.url, tmp_path / "home-b", "4", "--token", "tUSDC",
                  "--ref", "inv-x3")  # fmt: skip
    wait_pool(chain, agent, 2, [a, b])
    mine(chain)
    (code_a, first, _), (code_b, second, _) = finish(a), finish(b)
    assert code_a == code_b == 0 and first["tx_hash"] != second["tx_hash"]
    assert len(executed(xworld, "inv-x3")) == 2  # paid twice: per journal only
    assert xworld.vault.balance("tUSDC") == before - 8 * USDC
    # once mined, a third machine's retry finds a payment in the logs and pays nothing more
    third = AgentWallet(chain, xworld.vault, xworld.agent, journal_dir=tmp_path / "journal-c")
    chain.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert isinstance(third.pay(xworld.payee, 4 * USDC, "tUSDC", ref="inv-x3"), Paid)
    assert xworld.vault.balance("tUSDC") == before - 8 * USDC


# ------------------------------------------------------------------ a failing node


class Proxy:
    """A tiny JSON-RPC proxy in front of the node that fails on demand: ``mode`` is
    "forward", "500" (HTTP 500), "rpc-error" (a JSON-RPC error reply) or "garbage" (not
    JSON); ``after_send`` applies the mode only once a transaction was forwarded; ``stop``
    closes the port (the node "dies" after the client connected)."""

    def __init__(self, target: str) -> None:
        self.target, self.mode, self.after_send, self.sent = target, "forward", False, 0
        self.server: ThreadingHTTPServer | None = None
        self.port = free_port()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                failing = proxy.mode != "forward" and (not proxy.after_send or proxy.sent > 0)
                if not failing:
                    forwarded = urllib.request.Request(
                        proxy.target, body, {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(forwarded, timeout=10) as answer:
                        reply, status = answer.read(), 200
                    if request.get("method") == "eth_sendRawTransaction":
                        proxy.sent += 1
                elif proxy.mode == "500":
                    reply, status = b"internal server error", 500
                elif proxy.mode == "rpc-error":
                    error = {"code": -32603, "message": "backend unavailable"}
                    reply = json.dumps({"jsonrpc": "2.0", "id": request.get("id"),
                                        "error": error}).encode()  # fmt: skip
                    status = 200
                else:
                    reply, status = b"<html>bad gateway</html>", 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def proxy(node: AnvilProcess) -> Iterator[Proxy]:
    p = Proxy(node.url)
    yield p
    p.stop()


def _proxied_wallet(world: World, proxy: Proxy, journal: Path) -> AgentWallet:
    chain = connect(proxy.url)
    vault = Vault.at(chain, world.vault.address, world.deployments)
    return AgentWallet(chain, vault, world.agent, journal_dir=journal)


@pytest.mark.parametrize("mode", ["stop", "500", "rpc-error", "garbage"])
def test_a_node_failing_before_the_send_is_typed_nothing_was_sent(
    xworld: World, proxy: Proxy, tmp_path: Path, mode: str
) -> None:
    """The client connected, then the node died (port closed), answered HTTP 500, a JSON-RPC
    error or not JSON: NodeUnavailableError saying nothing was sent; the retry pays once."""
    before, nonce = xworld.vault.balance("tUSDC"), xworld.chain.nonce(xworld.agent.address)
    wallet = _proxied_wallet(xworld, proxy, tmp_path)
    ref = f"node-{mode}"
    if mode == "stop":
        proxy.stop()
    else:
        proxy.mode = mode
    with pytest.raises(NodeUnavailableError, match="nothing was sent") as caught:
        wallet.pay(xworld.payee, USDC, "tUSDC", ref=ref)
    assert "retry pay with the same ref" in str(caught.value)
    assert AGENT_KEY not in str(caught.value)
    assert xworld.vault.balance("tUSDC") == before
    assert xworld.chain.nonce(xworld.agent.address) == nonce
    if mode == "stop":
        proxy.start()
    proxy.mode = "forward"
    assert isinstance(wallet.pay(xworld.payee, USDC, "tUSDC", ref=ref), Paid)
    assert len(executed(xworld, ref)) == 1
    assert xworld.vault.balance("tUSDC") == before - USDC


@pytest.mark.parametrize("mode", ["500", "rpc-error", "garbage"])
@pytest.mark.parametrize("strict", [False, True], ids=["direct", "exactly-once"])
def test_a_node_failing_after_the_send_is_typed_may_have_been_sent(
    xworld: World, proxy: Proxy, tmp_path: Path, mode: str, strict: bool
) -> None:
    """The transaction reached the node (and was mined), then every answer fails: the error
    says it MAY have been sent and to retry with the same ref; the retry answers the payment
    and nothing is paid twice."""
    before = xworld.vault.balance("tUSDC")
    wallet = _proxied_wallet(xworld, proxy, tmp_path)
    ref = f"after-{mode}-{strict}"
    proxy.mode, proxy.after_send = mode, True
    with pytest.raises(PaymentOutcomeUnknownError, match="MAY have been sent") as caught:
        wallet.pay(xworld.payee, 2 * USDC, "tUSDC", ref=ref, exactly_once=strict)
    assert caught.value.ref == ref and caught.value.tx_hash.startswith("0x")
    assert "same ref" in str(caught.value)
    proxy.mode = "forward"
    result = wallet.pay(xworld.payee, 2 * USDC, "tUSDC", ref=ref, exactly_once=strict)
    assert isinstance(result, Paid) and result.tx_hash == caught.value.tx_hash
    assert len(executed(xworld, ref)) == 1
    assert xworld.vault.balance("tUSDC") == before - 2 * USDC


def test_a_closed_port_is_a_typed_connection_error() -> None:
    with pytest.raises(ChainConnectionError, match=r"127\.0\.0\.1"):
        connect(f"http://127.0.0.1:{free_port()}", timeout=1)


def test_a_corrupt_journal_entry_is_named_kept_and_nothing_is_sent(
    xworld: World, tmp_path: Path
) -> None:
    before = xworld.vault.balance("tUSDC")
    wallet = AgentWallet(xworld.chain, xworld.vault, xworld.agent, journal_dir=tmp_path)
    key = (xworld.chain.chain_id, xworld.vault.address, xworld.agent.address)
    for ref, damage in (("torn-1", '{"ref": "0x'), ("torn-2", "[1, 2]")):
        path = wallet.journal._path(*key, to_ref(ref))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(damage)
        for strict in (False, True):
            with pytest.raises(JournalError, match="nothing was sent") as caught:
                wallet.pay(xworld.payee, USDC, "tUSDC", ref=ref, exactly_once=strict)
            assert str(path) in str(caught.value) and caught.value.path == path
            assert "payment_state" in str(caught.value)
        assert path.read_text() == damage  # kept as it was
        path.rename(path.with_suffix(".damaged"))  # what the message says to do
        assert isinstance(wallet.pay(xworld.payee, USDC, "tUSDC", ref=ref), Paid)
        assert path.with_suffix(".damaged").read_text() == damage
        assert len(executed(xworld, ref)) == 1
    assert xworld.vault.balance("tUSDC") == before - 2 * USDC


# ------------------------------------------------------------------ the node killed without state


def test_node_killed_without_state_retry_later_ref_first_pays_each_once(tmp_path: Path) -> None:
    """A real node loses two mined payments (SIGKILL, restarted from the state saved before
    them); the payer, a separate process each time, retries the LATER ref first: it re-sends
    the earlier journaled transaction first, so nothing waits on the nonce gap and each ref is
    paid once, with its journaled transaction."""
    port, state, saved = free_port(), tmp_path / "anvil.json", tmp_path / "before.json"
    node = start_anvil(port=port, state=state)
    try:
        world = build_world(connect(node.url), tmp_path / "deployments")
    finally:
        node.stop()  # writes the state: the world, no payments
    shutil.copy(state, saved)
    home = tmp_path / "home"
    amounts = {"kill-1": 2 * USDC, "kill-2": 3 * USDC}

    def pay(url: str, ref: str) -> str:
        code, out, _ = finish(machine_a(world, url, home, ref, amounts[ref], strict=False))
        assert code == 0 and out.get("status") == "paid", out
        return str(out["tx_hash"])

    node = start_anvil(port=port, state=state)
    try:
        chain = connect(node.url)
        vault = Vault.at(chain, world.vault.address, world.deployments)
        wallet = AgentWallet(chain, vault, world.agent, journal_dir=home / "journal")
        first = {r: wallet.pay(world.payee, amounts[r], "tUSDC", ref=r).tx_hash for r in amounts}
        assert vault.balance("tUSDC") == 10_000 * USDC - 5 * USDC
    finally:
        node.process.kill()  # no state written
        node.process.wait(10)
    shutil.copy(saved, state)
    node = start_anvil(port=port, state=state)
    try:
        chain = connect(node.url)
        vault = Vault.at(chain, world.vault.address, world.deployments)
        assert vault.balance("tUSDC") == 10_000 * USDC  # both payments are gone
        world = dataclasses.replace(world, chain=chain, vault=vault)
        assert pay(node.url, "kill-2") == first["kill-2"]  # the later one first, in a process
        retry = AgentWallet(chain, vault, world.agent, journal_dir=home / "journal")
        assert (
            retry.pay(world.payee, amounts["kill-1"], "tUSDC", ref="kill-1").tx_hash
            == (first["kill-1"])
        )
        for ref in amounts:
            assert len(executed(world, ref)) == 1
        assert vault.balance("tUSDC") == 10_000 * USDC - 5 * USDC
    finally:
        node.stop()
