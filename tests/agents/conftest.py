"""Agent-tool fixtures: the SDK's funded world (a 2-of-3 vault, tUSDC, agent = dev account 5
with 100/500 tUSDC and 0.1/0.5 ETH per day) plus an AGENTWALLET_HOME whose keystore holds the
agent's key, for the MCP server and the x402 loop run as separate processes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentwallet.agent import AgentWallet
from agentwallet.chain import Chain
from agentwallet.keys import KeyStore
from agentwallet.tools import AgentTools
from tests.sdk.conftest import USDC, World, build_world
from tests.sdk.conftest import world as world  # noqa: F401 - the shared fixture, both chains

PASSWORD = "agent password for tests"

__all__ = ["PASSWORD", "USDC", "AgentHome"]


@dataclass
class AgentHome:
    """A home with the agent's key as ``agent`` and the environment a child process needs."""

    world: World
    home: Path
    env: dict[str, str]

    def wallet(self) -> AgentWallet:
        return AgentWallet(self.world.chain, self.world.vault, self.world.agent, self.home / "j")


@pytest.fixture(scope="session")
def aworld(anvil_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world on anvil only (child processes connect to it)."""
    return build_world(anvil_chain, tmp_path_factory.mktemp("deployments-anvil"))


@pytest.fixture(scope="session")
def agent_home(aworld: World, tmp_path_factory: pytest.TempPathFactory) -> AgentHome:
    home = tmp_path_factory.mktemp("agent-home")
    KeyStore(home, scrypt_n=2**10).import_key("agent", aworld.agent.key.hex(), PASSWORD)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "AGENTWALLET_HOME": str(home),
        "AGENTWALLET_DEPLOYMENTS": str(aworld.deployments.directory),
        "AGENTWALLET_RPC": str(aworld.chain.url),
        "AGENTWALLET_PASSWORD": PASSWORD,
    }
    return AgentHome(aworld, home, env)


@pytest.fixture
def tools(world: World, tmp_path: Path) -> AgentTools:
    """The tools bound to the world's agent (embedded chain and anvil)."""
    return AgentTools(AgentWallet(world.chain, world.vault, world.agent, tmp_path / "journal"))
