"""The README's Python snippet runs as written, against a node set up as the README's
walkthrough leaves it (a 2-of-3 vault "main", the agent key "travel" with ETH limits)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from agentwallet.chain import Chain, connect
from agentwallet.chain.node import AnvilProcess, free_port, start_anvil
from agentwallet.deployments import Deployments
from agentwallet.faucet import faucet
from agentwallet.keys import KeyStore
from agentwallet.units import ETH, parse_amount
from agentwallet.vault import Vault

README = Path(__file__).resolve().parents[1] / "README.md"
PASSWORD = "readme password"
DEAD = Web3.to_checksum_address("0x000000000000000000000000000000000000dEaD")


def python_blocks(text: str) -> list[str]:
    """The ```python code blocks of a Markdown text."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def _python(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``home`` (also $AGENTWALLET_HOME), with no other AGENTWALLET_ setting
    than ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWALLET_")}
    full.update(env, AGENTWALLET_HOME=str(home))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=full, cwd=home, timeout=300
    )


@pytest.fixture
def node() -> Iterator[AnvilProcess]:
    with start_anvil(port=free_port()) as process:
        yield process


def _walkthrough_state(chain: Chain, home: Path) -> Vault:
    """What the README's walkthrough sets up before the agent pays: keys (travel's encrypted
    under $AGENTWALLET_HOME, with gas), the vault "main" funded with 5 ETH, travel added with
    0.5 ETH per payment and 2 ETH per day, co-signed by a second owner."""
    alice, bob, carol = chain.dev_accounts[:3]
    travel = KeyStore(home, scrypt_n=2**10).create("travel", PASSWORD)
    faucet(chain, travel.address, parse_amount("1", 18))
    deployments = Deployments(chain, home / "deployments")
    owners = [alice.address, bob.address, carol.address]
    vault = Vault.create(chain, alice, owners, 2, name="main", deployments=deployments)
    vault.fund(alice, parse_amount("5", 18))
    for ref in (
        vault.propose_add_agent(alice, travel.address),
        vault.propose_set_limits(
            alice, travel.address, ETH, parse_amount("0.5", 18), parse_amount("2", 18), 86400
        ),
    ):
        vault.approve(bob, ref.request_id)
    return vault


def test_the_readme_has_one_python_snippet() -> None:
    (snippet,) = python_blocks(README.read_text())
    assert "connect(" in snippet and 'Vault.at(chain, "main")' in snippet


@pytest.mark.anvil
def test_the_readme_python_snippet_runs_as_written(node: AnvilProcess, tmp_path: Path) -> None:
    (snippet,) = python_blocks(README.read_text())
    chain = connect(node.url)
    _walkthrough_state(chain, tmp_path)
    before = chain.w3.eth.get_balance(DEAD)
    run = _python(
        tmp_path,
        "-c",
        snippet,
        AGENTWALLET_RPC=node.url,
        AGENTWALLET_DEPLOYMENTS=str(tmp_path / "deployments"),
        AGENTWALLET_PASSWORD=PASSWORD,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"0x[0-9a-f]{64} \d+", lines[1]), run.stdout  # paid: tx hash, gas
    assert chain.w3.eth.get_balance(DEAD) - before == parse_amount("0.3", 18)
    assert "ETH" in lines[2]  # what it can still spend
    assert PASSWORD not in run.stdout + run.stderr


def test_json_demo_emits_the_whole_story(tmp_path: Path) -> None:
    """README: "`agentwallet --json demo` gives the same as JSON": every section with its tables
    and facts, the audit trail, and the summary, as one document on stdout."""
    run = _python(tmp_path, "-m", "agentwallet", "--json", "demo")
    assert run.returncode == 0, run.stderr
    assert "== " not in run.stdout + run.stderr  # no text story next to the JSON
    doc = json.loads(run.stdout)
    assert "the same as JSON" in README.read_text()
    titles = [section["title"] for section in doc["story"]]
    assert titles[0] == "" and titles[-1] == "Final state"
    assert [t.split(".")[0] for t in titles[1:-1]] == [str(n) for n in range(1, 9)]
    sections = {section["title"].split(".")[0]: section["items"] for section in doc["story"]}
    assert sections["1"][0]["facts"]["vault"] == doc["vault"]
    payments = sections["4"][0]["table"]
    assert [p["status"] for p in payments] == ["paid"] * 4 == ["paid"] * len(doc["paid"])
    assert payments[0]["ref"] == "flight LH-4711" and payments[0]["amount"] == "0.3 ETH"
    requests = sections["3"][0]["table"]
    assert len(requests) == 4 and {r["status"] for r in requests} == {"executed"}
    signed = sections["5"][1]
    assert "sign it off-chain" in signed["text"] and signed["facts"]["ref"]
    assert doc["escalated_status"] == "executed" and doc["rejected_status"] == "rejected"
    assert "AgentNotActive" in doc["revoked_error"]
    trail = doc["audit_trail"]
    assert len(trail) == doc["events"] == len(sections["8"][0]["table"])
    assert {"PaymentExecuted", "RequestRejected", "AgentStatusChanged"} <= {
        e["event"] for e in trail
    }
    assert all(e["tx"].startswith("0x") for e in trail)
