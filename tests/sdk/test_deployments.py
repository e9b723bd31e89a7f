import json
from pathlib import Path

import pytest

from agentwallet.chain import Chain
from agentwallet.deployments import Deployments, network_name
from agentwallet.errors import ChainMismatchError, InvalidAddressError, UnknownVaultError
from agentwallet.vault import Vault

from .conftest import World

ADDR = "0x00000000000000000000000000000000000000aa"


def test_network_names(chain: Chain, anvil_chain: Chain) -> None:
    assert network_name(chain) == "embedded"
    assert network_name(anvil_chain) == "anvil"


def test_embedded_record_stays_in_memory(eworld: World, tmp_path: Path) -> None:
    d = Deployments(eworld.chain, tmp_path)
    d.record_vault("mem", ADDR, owners=[ADDR], threshold=1)
    assert Deployments(eworld.chain, tmp_path).vault_address("mem").lower() == ADDR
    assert not list(tmp_path.iterdir())


def test_record_and_resolve_on_file(aworld: World, tmp_path: Path) -> None:
    d = Deployments(aworld.chain, tmp_path)
    d.record_vault(
        "main",
        aworld.vault.address,
        owners=[o.address for o in aworld.owners],
        threshold=2,
        block=1,
    )
    d.record_token("tUSDC", aworld.usdc.address, 6)
    again = Deployments(aworld.chain, tmp_path)
    assert again.vault_address("main") == aworld.vault.address
    assert again.vault_address(aworld.vault.address.lower()) == aworld.vault.address
    assert again.token("tusdc") == aworld.usdc
    assert again.token(aworld.usdc.address) == aworld.usdc
    assert again.token(None).symbol == "ETH"
    record = json.loads((tmp_path / "anvil.json").read_text())
    assert record["chain_id"] == 31337 and record["vaults"]["main"]["threshold"] == 2
    assert Vault.at(aworld.chain, "main", again).threshold() == 2
    with pytest.raises(UnknownVaultError, match="known: main"):
        again.vault_address("nope")
    with pytest.raises(InvalidAddressError):
        again.vault_address("0x1234")


def test_factory_without_code_is_ignored(aworld: World, tmp_path: Path) -> None:
    d = Deployments(aworld.chain, tmp_path)
    d.record_factory(ADDR)
    assert d.factory() is None


def test_chain_id_mismatch_is_reported(aworld: World, tmp_path: Path) -> None:
    (tmp_path / "anvil.json").write_text(json.dumps({"chain_id": 1, "vaults": {}}))
    with pytest.raises(ChainMismatchError, match=r"anvil\.json.*chain id 1.*31337"):
        Deployments(aworld.chain, tmp_path).vault_address("main")


def test_the_record_names_every_part_and_a_stale_one_is_not_used(
    aworld: World, tmp_path: Path
) -> None:
    """The factory stands on five parts: all are recorded with the artifacts' hashes. A record
    written from other artifacts (an older vault) is stale: its factory is not used again."""
    recorded = json.loads((aworld.deployments.directory / "anvil.json").read_text())
    parts = recorded["factory"]["parts"]
    assert sorted(parts) == [
        "AgentVault",
        "AgentVaultAdmin",
        "AgentVaultCalls",
        "AgentVaultConfig",
        "AgentVaultLens",
    ]
    assert all(aworld.chain.code(a) for a in parts.values())
    assert set(recorded["artifacts"]) == {*parts, "AgentVaultFactory", "IAgentVault"}
    assert all(recorded["artifacts"].values())
    assert aworld.deployments.factory() == recorded["factory"]["address"]
    stale = {**recorded, "artifacts": {**recorded["artifacts"], "AgentVault": "0xold"}}
    (tmp_path / "anvil.json").write_text(json.dumps(stale))
    assert Deployments(aworld.chain, tmp_path).factory() is None
