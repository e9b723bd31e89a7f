"""The demo story: a family vault, two AI agents, limits, escalation, co-signing, revocation.

Runs on a fresh embedded chain in this process (``agentwallet demo``), in well under a minute.
Everything goes through the public SDK (:class:`Vault`, :class:`AgentWallet`), exactly as an
integrator would call it; ``echo`` receives the story, one block of text at a time, and
:attr:`DemoResult.story` holds the same story as data (``agentwallet --json demo``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from agentwallet._text import budget, kv_table, short, span, table
from agentwallet.errors import AgentWalletError

Echo = Callable[[str], None]

# Made-up merchants the agents pay (plain addresses with no code).
MERCHANTS = {
    "0x00000000000000000000000000000000000a1e11": "airline",
    "0x0000000000000000000000000000000000070e11": "hotel",
    "0x00000000000000000000000000000000000c10d0": "cloud provider",
    "0x000000000000000000000000000000000000bad0": "unknown reseller",
}


@dataclass
class DemoResult:
    """What happened, for tests and ``agentwallet --json demo``."""

    vault: str = ""
    chain_id: int = 0
    owners: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    paid: list[str] = field(default_factory=list)  #: tx hashes of direct payments
    escalated_request: int = 0
    escalated_status: str = ""
    rejected_request: int = 0
    rejected_status: str = ""
    revoked_error: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: The story as told: sections (title, then its text, tables as rows keyed by column and
    #: key/value facts), in order; what ``agentwallet --json demo`` emits besides the summary.
    story: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary, the whole story and the audit trail, as JSON-ready data."""
        return {
            "story": self.story,
            "audit_trail": self.events,
            "vault": self.vault,
            "chain_id": self.chain_id,
            "owners": self.owners,
            "agents": self.agents,
            "paid": self.paid,
            "escalated_request": self.escalated_request,
            "escalated_status": self.escalated_status,
            "rejected_request": self.rejected_request,
            "rejected_status": self.rejected_status,
            "revoked_error": self.revoked_error,
            "events": len(self.events),
        }


@dataclass
class _Story:
    """Tells the story to ``echo`` and records the same as data in ``sections``."""

    echo: Echo
    sections: list[dict[str, Any]]

    def _add(self, item: dict[str, Any]) -> None:
        if not self.sections:
            self.sections.append({"title": "", "items": []})
        self.sections[-1]["items"].append(item)

    def section(self, title: str) -> None:
        self.echo(f"\n== {title} ==")
        self.sections.append({"title": title, "items": []})

    def text(self, text: str) -> None:
        self.echo(text)
        self._add({"text": text.strip()})

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.echo(table(list(headers), [tuple(r) for r in rows]))
        self._add({"table": [dict(zip(headers, row, strict=True)) for row in rows]})

    def facts(self, pairs: Sequence[tuple[str, Any]], intro: str = "") -> None:
        self.echo(intro + kv_table(list(pairs)))
        self._add(
            {"text": intro.strip(), "facts": dict(pairs)} if intro else {"facts": dict(pairs)}
        )


def _merchant(address: str) -> str:
    return MERCHANTS.get(address.lower(), short(address))


def run_demo(echo: Echo) -> DemoResult:
    """Tell the story on a fresh embedded chain; return what happened."""
    with tempfile.TemporaryDirectory(prefix="agentwallet-demo-") as journal:
        return _story(echo, Path(journal))


def _story(echo: Echo, journal: Path) -> DemoResult:
    from agentwallet.agent import AgentWallet, Escalated
    from agentwallet.chain import connect
    from agentwallet.deployments import Deployments
    from agentwallet.faucet import deploy_test_token, faucet, mint_test_token
    from agentwallet.keys import Signer
    from agentwallet.protocol.addresses import checksum
    from agentwallet.units import ETH, format_amount, parse_amount
    from agentwallet.vault import Vault

    started = time.monotonic()
    result = DemoResult()
    story = _Story(echo, result.story)
    chain = connect("embedded")
    deployments = Deployments(chain)
    dev = chain.dev_accounts
    alice, bob, carol = (Signer(n, dev[i]) for i, n in enumerate(("alice", "bob", "carol"), 1))
    travel = Signer("travel-agent", Account.create())
    cloud = Signer("cloud-agent", Account.create())
    names: dict[str, str] = {s.address: s.name for s in (alice, bob, carol, travel, cloud)}
    names.update({k.lower(): v for k, v in MERCHANTS.items()})

    def who(address: str | None) -> str:
        if not address:
            return "-"
        return names.get(address) or names.get(address.lower()) or short(address)

    section = story.section
    story.text(
        "agentwallet demo: AI agents spend from an on-chain vault within limits set by humans.\n"
        f"Fresh in-process chain (chain id {chain.chain_id}); every step below is a real "
        "transaction."
    )
    start_block = chain.block_number() + 1

    # ----------------------------------------------------------------- 1. the vault
    section("1. Alice, Bob and Carol create a 2-of-3 vault")
    vault = Vault.create(
        chain, alice, [alice.address, bob.address, carol.address], 2,
        name="family", deployments=deployments,
    )  # fmt: skip
    usdc = deploy_test_token(chain, alice, deployments)
    result.vault, result.chain_id = vault.address, chain.chain_id
    names[vault.address] = "the vault"
    result.owners = {s.name: s.address for s in (alice, bob, carol)}
    story.facts(
        [
            ("vault", vault.address),
            ("owners", ", ".join(f"{s.name} ({short(s.address)})" for s in (alice, bob, carol))),
            ("threshold", f"{vault.threshold()} of 3: anything risky needs two humans"),
            ("test token", f"tUSDC (6 decimals) at {usdc.address}"),
        ]
    )

    # ----------------------------------------------------------------- 2. funding
    section("2. The owners fund it")
    eth = vault.token(None)
    tusdc = vault.token("tUSDC")
    vault.fund(alice, parse_amount("5", 18))
    mint_test_token(chain, alice, usdc, bob.address, parse_amount("1000", 6))
    vault.fund(bob, parse_amount("1000", 6), tusdc.address)
    story.table(
        ["token", "vault balance", "funded by"],
        [
            ("ETH", format_amount(vault.balance(None), 18), "alice"),
            ("tUSDC", format_amount(vault.balance(tusdc.address), 6), "bob"),
        ],
    )

    # ----------------------------------------------------------------- 3. agents
    section("3. Two agents are added through co-signed governance requests")
    for agent in (travel, cloud):  # gas money for the agents, from a dev account
        faucet(chain, agent.address, parse_amount("0.05", 18))
    day = 86400
    proposals: list[tuple[str, Any, Signer, Signer]] = []
    r = vault.propose_add_agent(alice, travel.address)
    proposals.append(("add travel-agent", r, alice, bob))
    r = vault.propose_set_limits(
        alice, travel.address, ETH, parse_amount("0.5", 18), parse_amount("2", 18), day
    )
    proposals.append(("travel-agent: ETH 0.5 per payment, 2 per day", r, alice, bob))
    r = vault.propose_add_agent(bob, cloud.address)
    proposals.append(("add cloud-agent", r, bob, carol))
    r = vault.propose_set_limits(
        bob, cloud.address, tusdc.address, parse_amount("50", 6), parse_amount("200", 6), day
    )
    proposals.append(("cloud-agent: tUSDC 50 per payment, 200 per day", r, bob, carol))
    rows: list[tuple[Any, ...]] = []
    for action, ref, proposer, approver in proposals:
        vault.approve(approver, ref.request_id)
        status = vault.request(ref.request_id).status
        rows.append((ref.request_id, action, proposer.name, approver.name, status))
    story.table(["request", "action", "proposed by", "co-signed by", "status"], rows)
    result.agents = {travel.name: travel.address, cloud.name: cloud.address}

    # ----------------------------------------------------------------- 4. payments inside limits
    section("4. The agents pay inside their limits: no human needed")
    travel_wallet = AgentWallet(chain, vault, travel, journal_dir=journal)
    cloud_wallet = AgentWallet(chain, vault, cloud, journal_dir=journal)
    airline, hotel, provider, reseller = (checksum(a) for a in MERCHANTS)
    rows = []
    wallets = {travel_wallet: travel.name, cloud_wallet: cloud.name}
    for wallet, to, text, info, ref in (
        (travel_wallet, airline, "0.3", eth, "flight LH-4711"),
        (travel_wallet, hotel, "0.45", eth, "hotel 2 nights"),
        (cloud_wallet, provider, "42.5", tusdc, "invoice 2024-11"),
        (cloud_wallet, provider, "19.99", tusdc, "invoice 2024-12"),
    ):
        amount = parse_amount(text, info.decimals)
        paid = wallet.pay(to, amount, None if info.symbol == "ETH" else info.address, ref=ref)
        left = wallet.remaining()[info.symbol]
        result.paid.append(paid.tx_hash)
        rows.append(
            (wallets[wallet], _merchant(to), f"{text} {info.symbol}", ref, paid.status,
             f"{budget(left.available, info.decimals)} {info.symbol}", paid.gas_used)
        )  # fmt: skip
    story.table(["agent", "to", "amount", "ref", "status", "budget left", "gas"], rows)

    # ----------------------------------------------------------------- 5. escalation
    section("5. Over the per-payment limit: the payment waits for two humans")
    over = travel_wallet.pay(airline, parse_amount("0.8", 18), ref="business class upgrade")
    if not isinstance(over, Escalated):
        raise AgentWalletError(f"demo: expected the 0.8 ETH payment to escalate, got {over}")
    pending = vault.request(over.request_id)
    now = chain.timestamp()
    story.table(
        ["id", "agent", "to", "amount", "reasons", "expires in", "approvals"],
        [
            (
                pending.id,
                who(pending.agent),
                _merchant(pending.to),
                pending.amount_text,
                ", ".join(pending.reasons),
                span(pending.expires_at - now),
                f"{len(pending.approvals)}/{pending.threshold}",
            )
        ],
    )
    story.facts(
        [
            ("vault", vault.address),
            ("chain id", chain.chain_id),
            ("request", pending.id),
            ("agent", f"{who(pending.agent)} {pending.agent}"),
            ("recipient", f"{_merchant(pending.to)} {pending.to}"),
            ("amount", pending.amount_text),
            ("reasons", ", ".join(pending.reasons)),
            ("ref", pending.ref),
        ],
        "\nBob and Carol each check the request and sign it off-chain (EIP-712, nothing sent):\n",
    )
    signatures = [vault.sign(bob, over.request_id), vault.sign(carol, over.request_id)]
    executed = vault.execute_with_signatures(alice, over.request_id, signatures)
    done = vault.request(over.request_id)
    result.escalated_request, result.escalated_status = done.id, done.status
    story.text(
        f"\nAlice relays both signatures: request {done.id} is {done.status} "
        f"(tx {short(executed.tx_hash)}, gas {executed.gas_used}); the airline got 0.8 ETH."
    )

    # ----------------------------------------------------------------- 6. rejection
    section("6. A suspicious payment is rejected by one owner")
    odd = cloud_wallet.pay(reseller, parse_amount("180", 6), tusdc.address, ref="gpu credits")
    if not isinstance(odd, Escalated):
        raise AgentWalletError(f"demo: expected the 180 tUSDC payment to escalate, got {odd}")
    vault.reject(carol, odd.request_id)
    rejected = vault.request(odd.request_id)
    result.rejected_request, result.rejected_status = rejected.id, rejected.status
    story.table(
        ["id", "agent", "to", "amount", "reasons", "decided by", "status"],
        [
            (
                rejected.id,
                who(rejected.agent),
                _merchant(rejected.to),
                rejected.amount_text,
                ", ".join(rejected.reasons),
                "carol",
                rejected.status,
            )
        ],
    )
    story.text("One owner's no is enough: reducing risk never waits for the threshold.")

    # ----------------------------------------------------------------- 7. revocation
    section("7. Alice revokes the travel agent; it can no longer pay")
    vault.revoke_agent(alice, travel.address)
    try:
        travel_wallet.pay(hotel, parse_amount("0.1", 18), ref="late checkout")
    except AgentWalletError as exc:
        result.revoked_error = f"{type(exc).__name__}: {exc}"
    else:
        raise AgentWalletError("demo: a revoked agent was able to pay")
    story.text(f"travel-agent tries to pay 0.1 ETH to the hotel:\n  {result.revoked_error}")

    # ----------------------------------------------------------------- 8. audit trail
    section("8. Audit trail: every event the vault emitted")
    rows = []
    for event in _vault_events(chain, vault.address, start_block):
        result.events.append(event)
        rows.append(
            (event["block"], event["event"], event["request"] or "", who(event["agent"]),
             who(event["actor"]), event["detail"])
        )  # fmt: skip
    story.table(["block", "event", "request", "agent", "by", "detail"], rows)

    section("Final state")
    story.table(
        ["token", "vault balance"],
        [
            ("ETH", format_amount(vault.balance(None), 18)),
            ("tUSDC", format_amount(vault.balance(tusdc.address), 6)),
        ],
    )
    result.seconds = time.monotonic() - started
    return result


def _vault_events(chain: Any, vault: str, start_block: int) -> list[dict[str, Any]]:
    """The vault's events since ``start_block``, decoded by :mod:`agentwallet.audit.events`."""
    from agentwallet.audit.events import EventFilter, read_events
    from agentwallet.protocol.constants import ETH, AgentStatus
    from agentwallet.units import format_amount

    tokens: dict[str, tuple[str, int]] = {}

    def amount(token: str | None, value: int | None) -> str:
        if value is None:
            return ""
        token = token or ETH
        if token not in tokens:
            from agentwallet.deployments import Deployments

            info = Deployments(chain).token(token)
            tokens[token] = (info.symbol, info.decimals)
        symbol, decimals = tokens[token]
        return f"{format_amount(value, decimals)} {symbol}"

    out = []
    for e in read_events(chain, EventFilter(vaults=(vault,), from_block=start_block)):
        args = dict(e.args)
        detail = ""
        if e.name in ("PaymentExecuted", "Deposited", "PaymentRequested"):
            detail = amount(e.token, e.amount)
        elif e.name == "GovernanceProposed":
            detail = "governance call"
        elif e.name == "LimitsChanged":
            detail = f"max {amount(e.token, int(args['maxPerPayment']))}"
        elif e.name == "AgentStatusChanged":
            status = args.get("status")
            detail = AgentStatus.text_of(status) if isinstance(status, int) else ""
        elif e.name == "RequestApproved":
            detail = f"{args.get('approvals')} approvals"
        elif e.name == "RequestExecuted":
            detail = f"{len(args.get('signers', []))} owners authorised it"
        elif e.name == "OpenRequestsClosed":
            detail = f"{args.get('count')} open requests closed"
        out.append(
            {"block": e.block_number, "event": e.name, "request": e.request_id, "agent": e.agent,
             "actor": e.actor, "detail": detail, "tx": e.tx_hash}
        )  # fmt: skip
    return out
