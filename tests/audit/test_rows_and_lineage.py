"""Rows an auditor joins on (refs, amounts, approvals) and agents followed across key rotations
and delegation (issues 10, 11, 13)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agentwallet.audit.index import AuditIndex
from agentwallet.audit.spend import spend_payments, spend_report
from agentwallet.audit.trail import AuditRow, trail
from agentwallet.cli import main
from tests.audit._helpers import rotate_key
from tests.contracts.conftest import DAY, ETH, ETHER, USDC, Env, fresh_address

BINARY_REF = bytes([0, 0xFF, 0x10]) + bytes(29)


def _by_ref(rows: list[AuditRow], ref: str, event: str = "PaymentExecuted") -> AuditRow:
    found = [r for r in rows if r.ref == ref and r.event == event]
    assert len(found) == 1, [(r.event, r.ref) for r in rows]
    return found[0]


def test_trail_and_spend_rows_carry_refs_amounts_and_approvals(
    any_env: Env, index: AuditIndex, tmp_path: Path
) -> None:
    env, chain = any_env, any_env.chain
    vault, agent, usdc = env.vault, env.agent, env.usdc.address
    payee, other = fresh_address("rows-payee"), fresh_address("rows-other")
    direct, _ = env.pay(ETH, payee, ETHER // 100, b"inv-7")
    binary, _ = env.pay(usdc, other, 2 * USDC, BINARY_REF)
    _r, rid = env.pay(usdc, payee, 500 * USDC, b"inv-9")
    assert rid
    env.send(env.rq.approve(rid), env.owners[2])
    executed = env.send(env.rq.approve(rid), env.owners[0])
    index.sync(chain, [vault.address])
    cid = chain.chain_id

    rows = trail(index, cid, vault.address, agent.address, names={agent.address: "bot"})
    inv7 = _by_ref(rows, "inv-7")
    assert (inv7.agent, inv7.agent_name, inv7.delegation) == (agent.address, "bot", [])
    assert (inv7.token, inv7.symbol, inv7.recipient) == (ETH, "ETH", payee)
    assert (inv7.amount, inv7.amount_formatted) == (str(ETHER // 100), "0.01")
    assert (inv7.tx, inv7.block) == (direct["transactionHash"].to_0x_hex(), direct["blockNumber"])
    assert (inv7.via, inv7.request_id, inv7.approvals) == ("direct", 0, [])
    hexed = _by_ref(rows, "0x" + BINARY_REF.hex())
    assert (hexed.symbol, hexed.amount, hexed.tx) == (
        "tUSDC",
        str(2 * USDC),
        binary["transactionHash"].to_0x_hex(),
    )
    asked = _by_ref(rows, "inv-9", "PaymentRequested")
    assert asked.request_id == rid and "over per-payment limit" in asked.what
    paid = _by_ref(rows, "inv-9")
    assert (paid.via, paid.request_id) == (f"request #{rid}", rid)
    assert paid.approvals == [env.owners[2].address, env.owners[0].address]
    assert paid.tx == executed["transactionHash"].to_0x_hex()

    spent = spend_payments(index, cid, vault.address, agent=agent.address)
    assert [r.ref for r in spent][-3:] == ["inv-7", "0x" + BINARY_REF.hex(), "inv-9"]
    assert spent[-1].approvals == paid.approvals

    # the CLI: the table shows the ref; JSON and CSV rows are the same structured rows
    db = tmp_path / "rows.sqlite"
    with AuditIndex(db) as copy:
        copy.sync(chain, [vault.address])
    runner = CliRunner()
    base = ["audit", "trail", "--vault", vault.address, "--db", str(db), "--agent", agent.address]
    table = runner.invoke(main, base)
    assert table.exit_code == 0, table.output
    assert "inv-7" in table.output and "inv-9" in table.output and "ref" in table.output
    as_json = runner.invoke(main, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = [r for r in json.loads(as_json.output) if r["ref"] == "inv-9"]
    assert {r["event"] for r in data} >= {"PaymentRequested", "PaymentExecuted"}
    executed_row = next(r for r in data if r["event"] == "PaymentExecuted")
    assert executed_row["approvals"] == paid.approvals
    assert executed_row["amount"] == str(500 * USDC) and executed_row["symbol"] == "tUSDC"
    spend_cmd = ["audit", "spend", "--vault", vault.address, "--db", str(db)]
    as_csv = runner.invoke(main, [*spend_cmd, "--agent", agent.address, "--csv"])
    assert as_csv.exit_code == 0, as_csv.output
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    row = next(r for r in parsed if r["ref"] == "inv-9")
    assert row["approvals"] == ";".join(paid.approvals) and row["request_id"] == str(rid)
    assert row["token"] == usdc and row["amount_formatted"] == "500"
    daily = runner.invoke(main, [*spend_cmd, "--by", "day", "--json"])
    assert daily.exit_code == 0 and "via_request" in json.loads(daily.output)[0]


def _agent(label: str, env: Env) -> LocalAccount:
    account: LocalAccount = Account.from_key(Web3.keccak(text=label))
    env.send_eth(env.deployer, account.address, ETHER)
    return account


def test_trail_follows_rotations_and_shows_the_delegation_chain(
    any_env: Env, index: AuditIndex
) -> None:
    env, chain = any_env, any_env.chain
    vault = env.vault
    payee = fresh_address("lineage-payee")
    parent, child, new_key = (_agent(f"lineage-{x}", env) for x in ("parent", "child", "new-key"))
    env.govern_signed(
        [
            ("addAgent", (parent.address, 0, 0, False)),
            ("setLimits", (parent.address, ETH, ETHER, 2 * ETHER, DAY)),
        ],
        nonce=4101,
    )
    env.pay(ETH, payee, 1000, b"before-rotation", agent=parent)
    env.send(vault.functions.addSubAgent(parent.address, child.address, 0, 0, False), parent)
    env.send(
        vault.functions.setSubAgentLimits(child.address, ETH, ETHER // 10, ETHER // 2, DAY),
        parent,
    )
    env.pay(ETH, payee, 2000, b"child-direct", agent=child)
    rotate_key(env, parent, new_key)
    env.pay(ETH, payee, 3000, b"after-rotation", agent=new_key)
    _r, rid = env.pay(ETH, payee, ETHER, b"child-escalates", agent=child)
    assert rid
    index.sync(chain, [vault.address])
    cid = chain.chain_id

    old_trail = trail(index, cid, vault.address, parent.address)
    refs = {r.ref for r in old_trail}
    assert {"before-rotation", "after-rotation"} <= refs
    assert not {"child-direct", "child-escalates"} & refs
    assert [r.event for r in old_trail].count("AgentRotated") == 1
    assert any(r.event == "SubAgentAdded" and child.address in r.what for r in old_trail)
    # either key gives the same lineage
    assert trail(index, cid, vault.address, new_key.address) == old_trail

    tree = trail(index, cid, vault.address, new_key.address, subtree=True)
    direct = _by_ref(tree, "child-direct")
    assert (direct.agent, direct.delegation) == (child.address, [parent.address])
    asked = _by_ref(tree, "child-escalates", "PaymentRequested")
    assert asked.delegation == [new_key.address]  # the parent's key at that block
    child_trail = trail(index, cid, vault.address, child.address)
    assert {r.ref for r in child_trail} >= {"child-direct", "child-escalates"}
    assert "before-rotation" not in {r.ref for r in child_trail}

    spent = spend_payments(index, cid, vault.address, agent=parent.address)
    assert [r.ref for r in spent] == ["before-rotation", "after-rotation"]
    with_children = spend_payments(index, cid, vault.address, agent=parent.address, subtree=True)
    assert [r.ref for r in with_children] == ["before-rotation", "child-direct", "after-rotation"]
    daily = spend_report(index, cid, vault.address, agent=new_key.address, subtree=True)
    assert sum(r.total_base_units for r in daily) == 6000
