from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentwallet._build import compiler
from agentwallet._build.compiler import (
    BUILD_INFO_RELPATH,
    COMPILER_SETTINGS,
    SOLC_VERSION,
    check_artifacts,
    compile_all,
    compile_sources,
)
from agentwallet.bindings.artifacts import load_artifact
from agentwallet.errors import CompilerError

from .conftest import write_probe_project


def test_committed_artifacts_match_a_fresh_compile() -> None:
    if not list((compiler.project_root() / "contracts").rglob("*.sol")):
        pytest.skip("no contracts/ yet")
    assert check_artifacts() == [], "run `agentwallet compile` and commit the artifacts"


def test_compile_writes_one_artifact_per_deployable_contract(tmp_path: Path) -> None:
    root = write_probe_project(tmp_path / "project")
    out = tmp_path / "artifacts"
    artifacts = compile_all(write=True, root=root, artifacts_dir=out)

    # the interface, the library and the abstract base get no artifact
    assert sorted(artifacts) == ["Probe"]
    assert sorted(p.name for p in out.iterdir()) == ["Probe.json"]
    text = (out / "Probe.json").read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    artifact = json.loads(text)
    assert set(artifact) == {
        "contractName", "sourceName", "abi", "bytecode", "deployedBytecode", "storageLayout",
        "solcVersion", "settings", "sourcesHash",
    }  # fmt: skip
    assert artifact["sourceName"] == "contracts/Probe.sol"
    assert artifact["solcVersion"] == SOLC_VERSION
    assert artifact["settings"] == COMPILER_SETTINGS
    assert artifact["bytecode"].startswith("0x60") and artifact["deployedBytecode"].startswith("0x")
    assert check_artifacts(root=root, artifacts_dir=out) == []


def test_build_info_uses_relative_unit_names_for_slither(tmp_path: Path) -> None:
    root = write_probe_project(tmp_path / "project")
    compile_all(write=True, root=root, artifacts_dir=tmp_path / "artifacts")
    info = json.loads((root / BUILD_INFO_RELPATH).read_text())
    assert info["_format"] == "hh-sol-build-info-1"
    assert info["solcVersion"] == SOLC_VERSION
    names = set(info["input"]["sources"])
    assert "@openzeppelin/contracts/access/Ownable.sol" in names
    assert "contracts/IProbe.sol" in names  # imported as ./IProbe.sol
    assert not any(str(tmp_path) in name or name.startswith("/") for name in names)


def test_artifacts_do_not_depend_on_the_project_location(
    tmp_path: Path, probe_artifact: dict[str, Any]
) -> None:
    elsewhere = write_probe_project(tmp_path / "some" / "other" / "place")
    assert compile_all(write=False, root=elsewhere)["Probe"] == probe_artifact


def test_check_reports_changed_missing_and_stale_artifacts(tmp_path: Path) -> None:
    root = write_probe_project(tmp_path / "project")
    out = tmp_path / "artifacts"
    compile_all(write=True, root=root, artifacts_dir=out)
    (out / "Gone.json").write_text("{}\n")
    assert check_artifacts(root=root, artifacts_dir=out) == ["Gone"]
    (out / "Probe.json").write_text((out / "Probe.json").read_text().replace("0x60", "0x61", 1))
    assert check_artifacts(root=root, artifacts_dir=out) == ["Gone", "Probe"]
    compile_all(write=True, root=root, artifacts_dir=out)  # rewrites and removes stale ones
    assert sorted(p.name for p in out.iterdir()) == ["Probe.json"]


def test_broken_source_raises_compiler_error_with_solc_message() -> None:
    broken = (
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.30;\ncontract B { function f( }\n"
    )
    with pytest.raises(CompilerError) as info:
        compile_sources({"contracts/Broken.sol": broken})
    message = str(info.value)
    assert "ParserError" in message
    assert "contracts/Broken.sol:3" in message


def test_missing_import_names_the_file_and_importer(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "A.sol").write_text(
        'pragma solidity 0.8.30;\nimport "./Nope.sol";\ncontract A {}\n'
    )
    with pytest.raises(CompilerError, match=r"cannot read contracts/Nope.sol \(imported by "):
        compile_all(write=False, root=tmp_path)


def test_empty_project_says_to_add_contracts(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    with pytest.raises(CompilerError, match="no Solidity files"):
        compile_all(write=False, root=tmp_path)


def test_solc_override_with_wrong_program_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTWALLET_SOLC", shutil.which("true") or "/bin/true")
    with pytest.raises(Exception, match="AGENTWALLET_SOLC=.*unset it"):
        compiler.find_solc()


def test_load_unknown_artifact_says_how_to_fix() -> None:
    with pytest.raises(CompilerError, match="agentwallet compile"):
        load_artifact("NoSuchContract")


def test_every_vault_error_has_a_typed_python_exception() -> None:
    from agentwallet.errors import REVERT_ERRORS

    # the vault's one ABI and each of its five parts
    parts = (
        "IAgentVault",
        "AgentVault",
        "AgentVaultAdmin",
        "AgentVaultConfig",
        "AgentVaultCalls",
        "AgentVaultLens",
    )
    abi = [item for name in parts for item in load_artifact(name)["abi"]]
    names = {item["name"] for item in abi if item["type"] == "error"}
    # OpenZeppelin's own errors (reentrancy guard, SafeERC20, ECDSA, strings) stay generic
    vault_errors = {n for n in names if not n.startswith(("ReentrancyGuard", "SafeERC20", "ECDSA"))}
    missing = sorted(vault_errors - set(REVERT_ERRORS) - {"InvalidShortString", "StringTooLong"})
    assert missing == []


#: Runtime bytecode budgets in bytes, at today's sizes plus a little room: growth shows here long
#: before EIP-170 (24,576 bytes) refuses a deployment. Raise a budget on purpose, in review.
#: tests/contracts/test_layout.py separately keeps every part 4 kB under EIP-170.
RUNTIME_BUDGETS = {
    "AgentVault": 18_500,
    "AgentVaultAdmin": 17_600,
    "AgentVaultConfig": 19_000,
    "AgentVaultCalls": 14_000,
    "AgentVaultLens": 11_300,
    "AgentVaultFactory": 1_200,
}
#: EIP-3860: the largest initcode a creation may carry (the factory's includes the vault's).
MAX_INITCODE_SIZE = 49_152


@pytest.mark.parametrize("name", sorted(RUNTIME_BUDGETS))
def test_runtime_bytecode_stays_within_its_budget(name: str) -> None:
    artifact = load_artifact(name)
    runtime = len(bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x")))
    initcode = len(bytes.fromhex(artifact["bytecode"].removeprefix("0x")))
    assert runtime <= RUNTIME_BUDGETS[name], f"{name} runtime code is {runtime} bytes"
    assert initcode <= MAX_INITCODE_SIZE, f"{name} initcode is {initcode} bytes"
