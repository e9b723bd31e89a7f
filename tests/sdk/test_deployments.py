import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentwallet.chain import Chain
from agentwallet.deployments import (
    DEPLOYMENTS_ENV,
    Deployments,
    StaleRecordError,
    VaultNameTakenError,
    deployments_dir,
    network_name,
)
from agentwallet.errors import ChainMismatchError, InvalidAddressError, UnknownVaultError
from agentwallet.vault import Vault

from .conftest import World

ADDR = "0x00000000000000000000000000000000000000aa"


def test_network_names(chain: Chain, anvil_chain: Chain) -> None:
    assert network_name(chain) == "embedded"
    assert network_name(anvil_chain) == "anvil"


def test_embedded_record_stays_in_memory(eworld: World, tmp_path: Path) -> None:
    d = Deployments(eworld.chain, tmp_path)
    d.record_vault("mem", eworld.vault.address, owners=[ADDR], threshold=1)
    assert Deployments(eworld.chain, tmp_path).vault_address("mem") == eworld.vault.address
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


# ------------------------------------------------------------------ where records live


def _checkout(root: Path) -> Path:
    """A folder shaped like an agentwallet checkout."""
    (root / "agentwallet").mkdir(parents=True)
    (root / "agentwallet" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "deployments").mkdir()
    return root


def test_records_live_in_the_env_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = _checkout(tmp_path / "checkout")
    monkeypatch.chdir(checkout)
    monkeypatch.setenv(DEPLOYMENTS_ENV, str(tmp_path / "elsewhere"))
    assert deployments_dir() == tmp_path / "elsewhere"


def test_records_live_in_the_checkout_from_any_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside the project the record is the project's, wherever in it the command runs (it
    used to be ./deployments, a new empty record in every subdirectory)."""
    checkout = _checkout(tmp_path / "checkout")
    (checkout / "docs" / "deep").mkdir(parents=True)
    monkeypatch.delenv(DEPLOYMENTS_ENV, raising=False)
    for cwd in (checkout, checkout / "docs" / "deep", checkout / "deployments"):
        monkeypatch.chdir(cwd)
        assert deployments_dir() == checkout.resolve() / "deployments"


def test_records_live_under_home_outside_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Elsewhere, a folder that merely has a deployments/ (another tool's) is not used."""
    other = tmp_path / "someproject"
    (other / "deployments").mkdir(parents=True)
    (other / "pyproject.toml").write_text("")
    monkeypatch.chdir(other)
    monkeypatch.delenv(DEPLOYMENTS_ENV, raising=False)
    monkeypatch.setenv("AGENTWALLET_HOME", str(tmp_path / "home"))
    assert deployments_dir() == tmp_path / "home" / "deployments"


def test_deployments_default_to_the_resolved_directory(
    aworld: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEPLOYMENTS_ENV, str(tmp_path))
    d = Deployments(aworld.chain)
    assert d.path == tmp_path / "anvil.json"
    d.record_token("tUSDC", aworld.usdc.address, 6)
    assert json.loads((tmp_path / "anvil.json").read_text())["tokens"]["tUSDC"]["decimals"] == 6


# ------------------------------------------------------------------ taken names, stale records


def test_a_taken_vault_name_is_refused_unless_replaced(aworld: World, tmp_path: Path) -> None:
    d = Deployments(aworld.chain, tmp_path)
    d.record_vault("main", aworld.vault.address)
    d.check_vault_name("fresh")  # a free name passes
    with pytest.raises(VaultNameTakenError, match=r"'main' is already recorded.*--replace"):
        d.check_vault_name("main")
    with pytest.raises(VaultNameTakenError):
        d.record_vault("main", ADDR, replace=False)
    assert d.vault_address("main") == aworld.vault.address  # the record is untouched
    d.check_vault_name("main", replace=True)
    d.record_vault("main", aworld.usdc.address, replace=True)
    assert Deployments(aworld.chain, tmp_path).vaults()["main"]["address"] == aworld.usdc.address


def test_a_record_without_code_is_reported_stale(aworld: World, tmp_path: Path) -> None:
    """A node restarted without its state leaves records pointing at nothing: the error says
    so and how to recover, instead of failing later with a bare call error."""
    d = Deployments(aworld.chain, tmp_path)
    d.record_vault("gone", ADDR)
    d.record_token("tGONE", "0x00000000000000000000000000000000000000bb", 6)
    with pytest.raises(StaleRecordError) as vault_error:
        d.vault_address("gone")
    message = str(vault_error.value)
    for needle in ("vault 'gone'", "is stale", str(tmp_path / "anvil.json"), "restarted",
                   "--state", "deploy --name gone --replace"):  # fmt: skip
        assert needle in message
    with pytest.raises(StaleRecordError, match=r"token 'tGONE'.*is stale"):
        d.token("tgone")
    with pytest.raises(StaleRecordError):
        Vault.at(aworld.chain, "gone", d)
    with pytest.raises(VaultNameTakenError, match=r"stale: no code there"):
        d.check_vault_name("gone")


def test_embedded_records_are_checked_for_code_too(eworld: World, tmp_path: Path) -> None:
    d = Deployments(eworld.chain, tmp_path)
    d.record_vault("nothing", ADDR)
    with pytest.raises(StaleRecordError, match="memory"):
        d.vault_address("nothing")


# ------------------------------------------------------------------ the CLI, as a user runs it

DEV_KEY_9 = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"


def _cli(home: Path, rpc: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWALLET_")}
    env.update(
        {
            "AGENTWALLET_HOME": str(home),
            "AGENTWALLET_DEPLOYMENTS": str(home / "deployments"),
            "AGENTWALLET_PASSWORD": "pw for the test",
            "AGENTWALLET_SCRYPT_N": "1024",
            "AGENTWALLET_RPC": rpc,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "agentwallet", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=120,
    )


def test_cli_deploy_refuses_a_taken_name_and_replaces_when_asked(
    anvil_chain: Chain, tmp_path: Path
) -> None:
    rpc = str(anvil_chain.url)
    assert _cli(tmp_path, rpc, "key", "import", "deployer", stdin=DEV_KEY_9 + "\n").returncode == 0
    deploy = ("--as", "deployer", "--json", "deploy", "--owner", "deployer", "--threshold", "1")
    first = _cli(tmp_path, rpc, *deploy)
    assert first.returncode == 0, first.stderr
    address = json.loads(first.stdout)["vault"]
    deployer = anvil_chain.w3.eth.account.from_key(DEV_KEY_9).address
    nonce = anvil_chain.w3.eth.get_transaction_count(deployer)

    again = _cli(tmp_path, rpc, *deploy)
    assert again.returncode == 1
    record_path = tmp_path / "deployments" / "anvil.json"
    assert again.stderr.strip().splitlines() == [
        f"error: a vault named 'main' is already recorded in {record_path} at {address}: choose "
        "another --name, or pass --replace to record the new vault under this name instead"
    ]
    assert anvil_chain.w3.eth.get_transaction_count(deployer) == nonce  # nothing was sent
    record = json.loads((tmp_path / "deployments" / "anvil.json").read_text())
    assert record["vaults"]["main"]["address"] == address

    replaced = _cli(tmp_path, rpc, *deploy, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    new_address = json.loads(replaced.stdout)["vault"]
    assert new_address != address
    record = json.loads((tmp_path / "deployments" / "anvil.json").read_text())
    assert record["vaults"]["main"]["address"] == new_address


def test_cli_reports_a_stale_record_in_one_line(anvil_chain: Chain, tmp_path: Path) -> None:
    Deployments(anvil_chain, tmp_path / "deployments").record_vault("main", ADDR)
    run = _cli(tmp_path, str(anvil_chain.url), "requests")
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: the record of vault 'main'") and "is stale" in line
    assert "Traceback" not in run.stdout + run.stderr
