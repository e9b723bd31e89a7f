"""Console fixtures: the SDK tests' world (2-of-3 vault, owners = dev accounts 0-2, agent = dev
account 5 with 100/500 tUSDC per day) and a Console over it; an agent escalation helper."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from agentwallet.agent import AgentWallet, Escalated
from agentwallet.chain import Chain
from agentwallet.console import Console
from tests.sdk.conftest import USDC, World, build_world

__all__ = ["USDC", "Env", "escalate"]


@dataclass
class Env:
    world: World
    console: Console
    home: Path

    @property
    def chain(self) -> Chain:
        return self.world.chain

    @property
    def owners(self) -> list[LocalAccount]:
        return self.world.owners


def escalate(world: World, amount: int = 250 * USDC, ref: str = "inv-2026-0042") -> int:
    """The agent pays ``amount`` tUSDC (over its 100 tUSDC per-payment limit) to the payee with
    ``ref``: a payment request; returns its id."""
    wallet = AgentWallet(world.chain, world.vault, world.agent)
    outcome = wallet.pay(world.payee, amount, "tUSDC", ref=ref)
    assert isinstance(outcome, Escalated), outcome
    return outcome.request_id


def make_console(world: World, home: Path) -> Console:
    names = {
        world.owners[0].address: "alice",
        world.owners[1].address: "bob",
        world.owners[2].address: "carol",
        world.agent.address: "travel-agent",
        world.payee: "acme-hotels",
    }
    return Console(world.chain, {"test": world.vault}, home, names)


@pytest.fixture(scope="session")
def eworld_console(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(chain, tmp_path_factory.mktemp("console-deployments"))


@pytest.fixture(scope="session")
def aworld_console(anvil_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world on anvil (owners are anvil's unlocked dev accounts)."""
    return build_world(anvil_chain, tmp_path_factory.mktemp("console-anvil"))


@pytest.fixture
def env(eworld_console: World, tmp_path: Path, chain: Chain) -> Env:
    """A console over the embedded world, with a fresh home (signatures, audit index)."""
    return Env(eworld_console, make_console(eworld_console, tmp_path), tmp_path)
