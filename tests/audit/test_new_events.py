"""The four-part vault's newer paths (signed governance, intents with relay fees, rotation,
sub-agents, per-recipient budgets, nonce invalidation, revocation with open requests) leave
events the audit decodes, indexes and reports on, and the vault still reconciles."""

from __future__ import annotations

from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from agentwallet.audit.events import EventCodec, EventFilter, read_events
from agentwallet.audit.index import AuditIndex
from agentwallet.audit.reconcile import reconcile
from agentwallet.audit.reports import (
    owners_report,
    requests_report,
    spend_report,
    summary_report,
    trail,
)
from agentwallet.audit.whatif import Limits, whatif
from agentwallet.chain import Chain
from tests.contracts.conftest import DAY, ETH, ETHER, USDC, Env, fresh_address


def test_every_new_event_is_decoded_indexed_and_reported(
    chain: Chain, vault_env: Env, index: AuditIndex
) -> None:
    env = vault_env
    vault, agent, usdc = env.vault, env.agent, env.usdc.address
    start = chain.block_number() + 1
    payee = fresh_address("audit-new-payee")

    # signed governance: a second agent and a per-recipient budget, no request stored
    second = Account.from_key(Web3.keccak(text="audit-new-second"))
    env.send_eth(env.deployer, second.address, ETHER)
    env.govern_signed(
        [
            ("addAgent", (second.address, 0, 0, False)),
            ("setLimits", (second.address, ETH, ETHER, 2 * ETHER, DAY)),
            ("setRecipientBudget", (agent.address, usdc, payee, 5 * USDC, 10 * USDC, DAY)),
        ],
        nonce=77,
    )
    # one owner tightens a budget and burns a signed-payment nonce
    env.send(
        vault.functions.limitRecipient(agent.address, usdc, payee, 4 * USDC, 8 * USDC, DAY),
        env.owners[1],
    )
    space = vault.functions.paymentNonceSpace().call()
    env.send(vault.functions.invalidateNonces(space, 0, 1), env.owners[2])
    # a relayer submits the agent's intent and takes a fee
    intent = env.intent(payee, 3 * USDC, token=usdc, nonce=9, max_fee=USDC // 10)
    env.relay_intent(intent, env.sign_intent(intent), USDC // 10, env.outsider)
    # the second agent delegates to a sub-agent, then rotates its key
    child = Account.from_key(Web3.keccak(text="audit-new-child"))
    env.send(vault.functions.addSubAgent(second.address, child.address, 0, 0, False), second)
    new_key = Account.from_key(Web3.keccak(text="audit-new-key"))
    deadline = env.now() + DAY
    typed = env.typed_rotation(second.address, new_key.address, 1, deadline)
    rotate = vault.functions.rotateAgentKey(
        second.address, new_key.address, 1, deadline, b"", env.sign_typed(typed, new_key)
    )
    env.send(rotate, second)
    # the first agent escalates, then is revoked: its open request dies with it
    request_id = env.escalate(to=payee)
    env.send(vault.functions.revokeAgent(agent.address), env.owners[0])

    events = read_events(chain, EventFilter(vaults=(vault.address,), from_block=start))
    names = {e.name for e in events}
    assert {
        "GovernanceExecuted",
        "RecipientBudgetChanged",
        "NoncesInvalidated",
        "RelayFeePaid",
        "SubAgentAdded",
        "AgentRotated",
        "OpenRequestsClosed",
        "PaymentRequested",
    } <= names
    for e in events:  # every field as web3 decodes it
        receipt = chain.w3.eth.get_transaction_receipt(e.tx_hash)
        (decoded,) = [
            d
            for d in vault.events[e.name]().process_receipt(receipt, errors=DISCARD)
            if d["logIndex"] == e.log_index
        ]
        expected = {
            k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in decoded["args"].items()
        }
        assert dict(e.args) == expected
    fee = next(e for e in events if e.name == "RelayFeePaid")
    assert (fee.amount, fee.actor, fee.agent) == (USDC // 10, env.outsider.address, agent.address)
    assert next(e for e in events if e.name == "AgentRotated").agent == second.address
    assert next(e for e in events if e.name == "SubAgentAdded").agent == child.address
    assert set(EventCodec().by_name) >= {
        item["name"] for item in vault.abi if item["type"] == "event"
    }

    index.sync(chain, [vault.address])
    cid = chain.chain_id
    texts = [e.what for e in trail(index, cid, vault.address, agent.address)]
    assert any("relayer" in t and "fee of 0.1 tUSDC" in t for t in texts), texts
    assert any("budget for" in t for t in texts), texts
    assert any("open request(s) closed" in t for t in texts), texts
    statuses = {r.request_id: r.status for r in requests_report(index, cid, vault.address, "all")}
    assert statuses[request_id] == "agent_revoked"
    summary = summary_report(index, cid, vault.address)
    assert summary["agents"][new_key.address]["status"] == "active"
    assert summary["agents"][second.address]["status"] == "rotated"
    assert summary["relay_fees"] == {"tUSDC": "0.1 tUSDC"}
    owners = {r.owner: r for r in owners_report(index, cid, vault.address)}
    assert owners[env.owners[0].address].by_signature >= 1
    spend = spend_report(index, cid, vault.address, agent=agent.address, token=usdc)
    assert sum(r.total_base_units for r in spend) >= 3 * USDC + USDC // 10
    rows = {r.symbol: r for r in reconcile(index, chain, vault.address)}
    assert rows["tUSDC"].difference_base_units == 0, rows["tUSDC"]
    limits = {usdc: Limits(3 * USDC, 10 * USDC, DAY)}
    replay = whatif(index, cid, vault.address, agent.address, limits)
    # the relayed 3 tUSDC cost the agent 3.1 tUSDC of its limits: over a 3 tUSDC maximum
    assert [r.proposed for r in replay if r.actual == "paid"] == ["escalates"]
