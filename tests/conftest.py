"""Shared fixtures: chains, an anvil node, and per-test state isolation.

Chains are session-scoped; every test that uses ``chain``, ``anvil_chain`` or ``any_chain``
runs between a snapshot and a revert (autouse ``_isolate_chain_state``), so it sees the state
it started with and leaves nothing behind.

Deploy once per session per chain with a session-scoped fixture; it is set up before the
per-test snapshot, so it survives every revert::

    @pytest.fixture(scope="session")
    def vault(any_chain: Chain) -> Contract:
        return any_chain.deploy("AgentVault", owners, threshold)

Function-scoped fixtures run after the snapshot and are reverted with the test.
Tests that use ``anvil_chain``/``anvil_node`` (or the anvil side of ``any_chain``) are marked
``anvil``: deselect them with ``-m "not anvil"`` when no anvil is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentwallet._build.compiler import compile_all
from agentwallet.chain import Chain, connect
from agentwallet.chain.node import AnvilProcess, free_port, start_anvil

CHAIN_FIXTURES = ("chain", "anvil_chain", "any_chain")
#: fixtures that start anvil: tests using them get the ``anvil`` mark (tests/cli's ``cli`` starts
#: one per module), so ``-m "not anvil"`` runs only what needs no node
ANVIL_FIXTURES = {"anvil_node", "anvil_chain", "cli"}

PROBE_SOURCE = """\
// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IProbe} from "./IProbe.sol";

library Bounds {
    function check(uint256 value, uint256 max) internal pure returns (bool) { return value <= max; }
}

abstract contract Base is IProbe {
    uint256 public stored;
}

/// A throwaway contract for the foundation tests.
contract Probe is Base, Ownable {
    error TooBig(uint256 value, uint256 max);

    constructor(uint256 initial) Ownable(msg.sender) { stored = initial; }

    function store(uint256 value) external {
        if (!Bounds.check(value, 100)) revert TooBig(value, 100);
        require(value != 42, "no answers");
        stored = value;
        emit Stored(msg.sender, value);
    }

    function divide(uint256 by) external view returns (uint256) { return stored / by; }
}
"""

IPROBE_SOURCE = """\
// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IProbe {
    event Stored(address indexed by, uint256 value);
}
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ANVIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.anvil)


@pytest.fixture(scope="session")
def chain() -> Chain:
    """The embedded py-evm chain."""
    return connect("embedded")


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilProcess]:
    """An anvil node on a free loopback port, for the whole session."""
    with start_anvil(port=free_port()) as node:
        yield node


@pytest.fixture(scope="session")
def anvil_chain(anvil_node: AnvilProcess) -> Chain:
    return connect(anvil_node.url)


@pytest.fixture(
    scope="session", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)]
)
def any_chain(request: pytest.FixtureRequest) -> Chain:
    """Each test using it runs twice: on the embedded chain and on anvil."""
    name = "chain" if request.param == "embedded" else "anvil_chain"
    result: Chain = request.getfixturevalue(name)
    return result


@pytest.fixture(autouse=True)
def _isolate_chain_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Snapshot every chain the test uses before it, revert after it."""
    chains: list[Chain] = []
    for name in CHAIN_FIXTURES:
        if name in request.fixturenames:
            c: Chain = request.getfixturevalue(name)
            if all(c is not seen for seen in chains):
                chains.append(c)
    snapshots = [(c, c.snapshot()) for c in chains]
    yield
    for c, snapshot_id in reversed(snapshots):
        c.revert(snapshot_id)


def write_probe_project(root: Path) -> Path:
    """A tiny project (contracts/Probe.sol + IProbe.sol) in ``root``; returns ``root``."""
    (root / "contracts").mkdir(parents=True, exist_ok=True)
    (root / "contracts" / "Probe.sol").write_text(PROBE_SOURCE)
    (root / "contracts" / "IProbe.sol").write_text(IPROBE_SOURCE)
    return root


@pytest.fixture(scope="session")
def probe_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_probe_project(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="session")
def probe_artifact(probe_project: Path) -> dict[str, Any]:
    """The compiled throwaway Probe contract (not written anywhere)."""
    return compile_all(write=False, root=probe_project)["Probe"]
