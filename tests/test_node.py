from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from agentwallet.chain import connect
from agentwallet.chain.node import find_anvil, free_port, start_anvil
from agentwallet.errors import ChainConnectionError, NodeNotFoundError


@pytest.mark.anvil
def test_anvil_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "node-state.json"
    receiver = Account.create().address
    port = free_port()
    with start_anvil(port=port, state=state) as node:
        chain = connect(node.url)
        chain.send_transaction(chain.dev_accounts[0], {"to": receiver, "value": 12345})
    assert state.is_file()
    with start_anvil(port=port, state=state) as node:
        assert connect(node.url).w3.eth.get_balance(receiver) == 12345


@pytest.mark.anvil
def test_start_anvil_refuses_a_busy_port() -> None:
    with start_anvil(port=free_port()) as node:
        with pytest.raises(ChainConnectionError, match="already answers"):
            start_anvil(port=node.port)


def test_anvil_override_must_be_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWALLET_ANVIL", str(tmp_path / "missing-anvil"))
    with pytest.raises(NodeNotFoundError, match="AGENTWALLET_ANVIL"):
        find_anvil()
