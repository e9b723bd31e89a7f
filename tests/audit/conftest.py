"""Session-wide deployed worlds for the audit tests (deployed before the per-test snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwallet.audit.index import AuditIndex
from agentwallet.chain import Chain
from tests.audit._helpers import World, build_world
from tests.contracts.conftest import Env, env_for


@pytest.fixture(scope="session")
def anvil_world(anvil_chain: Chain) -> World:
    return build_world(anvil_chain)


@pytest.fixture(scope="session")
def embedded_world(chain: Chain) -> World:
    return build_world(chain)


@pytest.fixture(scope="session")
def vault_env(chain: Chain) -> Env:
    """The contract tests' deployment on the embedded chain (its helpers sign every newer
    message: signed governance, intents, rotations), shared with them."""
    return env_for(chain, "embedded")


@pytest.fixture
def index(tmp_path: Path) -> AuditIndex:
    idx = AuditIndex(tmp_path / "audit.sqlite")
    yield idx  # type: ignore[misc]
    idx.close()


@pytest.fixture(scope="session")
def any_env(any_chain: Chain) -> Env:
    """The contract tests' deployment on each chain (tests using it run on embedded and anvil)."""
    return env_for(any_chain, "embedded" if any_chain.is_embedded else "anvil")
