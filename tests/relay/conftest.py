"""Relay fixtures: the SDK's world (embedded chain and anvil) and a relay running in-process
(uvicorn in a thread on a free loopback port) with its own key (dev account 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwallet.chain import Chain
from agentwallet.chain.node import free_port
from agentwallet.relay import RelayServer, RelayService
from tests.sdk.conftest import World, build_world


@pytest.fixture(scope="session")
def world(any_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(any_chain, tmp_path_factory.mktemp("relay-deployments"))


@pytest.fixture
def relay(world: World) -> Iterator[RelayServer]:
    service = RelayService(world.chain, world.chain.dev_accounts[9])
    server = RelayServer(service, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWALLET_HOME", str(tmp_path / "home"))
