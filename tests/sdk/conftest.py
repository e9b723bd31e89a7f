"""SDK fixtures: a deployed "world" per chain (factory, tUSDC, a funded 2-of-3 vault and one
agent with limits), built once per session before the per-test snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from agentwallet.chain import Chain
from agentwallet.deployments import Deployments, TokenInfo
from agentwallet.keys import KeyStore
from agentwallet.vault import Vault

USDC = 10**6
ETHER = 10**18
DAY = 86400


@dataclass
class World:
    chain: Chain
    vault: Vault
    usdc: TokenInfo
    owners: list[LocalAccount]
    agent: LocalAccount
    payee: str
    outsider: LocalAccount
    deployments: Deployments


def build_world(chain: Chain, directory: Path) -> World:
    """Factory + tUSDC + vault (owners = dev accounts 0-2, threshold 2) funded with 5 ETH and
    10,000 tUSDC; agent = dev account 5 with limits 100/500 tUSDC and 0.1/0.5 ETH per day."""
    a = chain.dev_accounts
    deployments = Deployments(chain, directory)
    owners = a[:3]
    vault = Vault.create(
        chain, owners[0], [o.address for o in owners], 2, name="test", deployments=deployments
    )
    token = chain.deploy("TestUSDC", sender=a[0])
    deployments.record_token("tUSDC", token.address, 6)
    chain.transact(token.functions.mint(a[0].address, 1_000_000 * USDC), a[0])
    vault.fund(owners[0], 5 * ETHER)
    vault.fund(owners[0], 10_000 * USDC, "tUSDC")
    agent = a[5]
    ref = vault.propose_add_agent(owners[0], agent.address)
    vault.approve(owners[1], ref.request_id)
    for token_name, limits in (
        ("tUSDC", (100 * USDC, 500 * USDC)),
        (None, (ETHER // 10, ETHER // 2)),
    ):
        ref = vault.propose_set_limits(owners[0], agent.address, token_name, *limits, DAY)
        vault.approve(owners[1], ref.request_id)
    return World(
        chain, vault, vault.token("tUSDC"), list(owners), agent, a[7].address, a[8], deployments
    )


@pytest.fixture(scope="session")
def world(any_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world on the embedded chain and on anvil (tests using it run twice)."""
    return build_world(any_chain, tmp_path_factory.mktemp("deployments"))


@pytest.fixture(scope="session")
def eworld(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world on the embedded chain only."""
    return build_world(chain, tmp_path_factory.mktemp("deployments-embedded"))


@pytest.fixture(scope="session")
def aworld(anvil_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world on anvil only."""
    return build_world(anvil_chain, tmp_path_factory.mktemp("deployments-anvil"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AGENTWALLET_HOME (journal and keys) for the test."""
    monkeypatch.setenv("AGENTWALLET_HOME", str(tmp_path))
    monkeypatch.delenv("AGENTWALLET_PASSWORD", raising=False)
    return tmp_path


@pytest.fixture
def keystore(home: Path) -> KeyStore:
    """A keystore with a cheap scrypt cost (tests only)."""
    return KeyStore(home, scrypt_n=2**10)


@pytest.fixture(autouse=True)
def _private_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the real ~/.agentwallet: every test gets its own home (journal, keys)."""
    monkeypatch.setenv("AGENTWALLET_HOME", str(tmp_path_factory.mktemp("home")))
