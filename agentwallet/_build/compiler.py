"""Compile the Solidity contracts in ``contracts/`` into committed JSON artifacts
(development only: runtime code reads them with :mod:`agentwallet.bindings.artifacts`).

Artifacts must be byte-identical on every machine, so:

* the compiler version is pinned (:data:`SOLC_VERSION`) and the settings are written down once
  (:data:`COMPILER_SETTINGS`);
* sources are given to solc inline under relative unit names (``contracts/Vault.sol``,
  ``@openzeppelin/contracts/...``), never absolute paths; the import closure is collected here;
* the metadata hash is not appended to the bytecode (``bytecodeHash: none``).

Compiler discovery, first match wins:

1. ``AGENTWALLET_SOLC``: path to a solc binary (or a ``.js`` solcjs wrapper run with node);
2. a native solc |version| installed by py-solc-x, or ``solc`` on ``PATH`` if it is that version;
3. the npm ``solc`` package (solcjs) through ``agentwallet/_node/solc.js`` (needs ``node``).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentwallet.errors import CompilerError, ConfigurationError

__all__ = [
    "ARTIFACTS_DIR",
    "BUILD_INFO_RELPATH",
    "COMPILER_SETTINGS",
    "SOLC_VERSION",
    "Solc",
    "build_artifacts",
    "check_artifacts",
    "collect_sources",
    "compile_all",
    "compile_sources",
    "find_solc",
    "project_root",
    "sources_hash",
]

SOLC_VERSION = "0.8.30"

#: The one place compiler settings are written down. Changing anything here changes every
#: artifact; run ``agentwallet compile`` afterwards and commit the result.
#: viaIR with 1000 optimizer runs: the IR pipeline gives both the smallest AgentVault (it must
#: fit EIP-170, 24576 bytes of runtime code: about 23.0 kB here; 24.7 kB at 3000 runs, 26.5 kB for
#: the legacy pipeline at 10000) and the cheapest payment path (see BENCHMARKS.md). It costs compile
#: time (about 10 s with solcjs). build_artifacts() refuses contracts over the limit.
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "prague",
    "optimizer": {"enabled": True, "runs": 1000},
    "viaIR": True,
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {
            # source maps and link references are for Slither (it reads the build-info file)
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.bytecode.sourceMap",
                "evm.bytecode.linkReferences",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.sourceMap",
                "evm.deployedBytecode.linkReferences",
                "evm.deployedBytecode.immutableReferences",
                "evm.methodIdentifiers",
                "storageLayout",
                "userdoc",
                "devdoc",
            ],
            "": ["ast"],
        }
    },
}

PACKAGE_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PACKAGE_DIR / "artifacts"
SOLCJS_WRAPPER = PACKAGE_DIR / "_node" / "solc.js"
BUILD_INFO_RELPATH = Path("build") / "build-info" / "agentwallet.json"

#: EIP-170: the largest runtime code a contract may have, in bytes.
MAX_RUNTIME_CODE_SIZE = 24_576

_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+)((?:-nightly\.[\d.]+)?\+commit\.\w+(?:\.[\w.+-]+)?)")
_IMPORT_RE = re.compile(r"""\bimport\s+(?:[^;"']*?\bfrom\s+)?["']([^"']+)["'][^;]*;""")
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Solc:
    """A located Solidity compiler: how to run it and what it is."""

    command: tuple[str, ...]
    version: str  #: e.g. ``0.8.30``
    long_version: str  #: e.g. ``0.8.30+commit.73712a01.Emscripten.clang``
    kind: str  #: ``native`` or ``solcjs``


# --------------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------------


def project_root() -> Path:
    """The agentwallet project root (holds ``contracts/``, ``package.json``).

    ``AGENTWALLET_ROOT`` if set; else the directory above the package when it is a source
    checkout (editable install); else the first directory up from the cwd with ``contracts/``.
    """
    env = os.environ.get("AGENTWALLET_ROOT")
    if env:
        return Path(env).resolve()
    repo = PACKAGE_DIR.parent
    if (repo / "pyproject.toml").is_file() and (repo / "agentwallet").is_dir():
        return repo
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        if (d / "contracts").is_dir():
            return d
    return cwd


def find_node_modules(root: Path | None = None) -> Path | None:
    """``AGENTWALLET_NODE_MODULES``, else a ``node_modules`` up from the cwd, else the root's."""
    env = os.environ.get("AGENTWALLET_NODE_MODULES")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    candidates = [d / "node_modules" for d in (cwd, *cwd.parents)]
    candidates.append((root or project_root()) / "node_modules")
    for c in candidates:
        if (c / "solc" / "package.json").is_file() or (c / "@openzeppelin").is_dir():
            return c
    return None


# --------------------------------------------------------------------------------------------
# Compiler discovery
# --------------------------------------------------------------------------------------------


def _probe(command: tuple[str, ...]) -> tuple[str, str] | None:
    """Run ``<command> --version``; return (version, long_version) or None if it fails."""
    try:
        out = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION_RE.search(out)
    if m is None:
        return None
    return m.group(1), m.group(1) + m.group(2)


def _command_for(path: str) -> tuple[str, ...]:
    if path.endswith(".js"):
        node = shutil.which("node")
        if node is None:
            raise CompilerError(f"{path} needs node: install Node.js 20+ and put it on PATH")
        return (node, path)
    return (path,)


def find_solc() -> Solc:
    """Locate the pinned solc; see the module docstring for the search order."""
    env = os.environ.get("AGENTWALLET_SOLC")
    if env:
        command = _command_for(env)
        probed = _probe(command)
        if probed is None:
            raise ConfigurationError(
                f"AGENTWALLET_SOLC={env} does not run as `solc --version`: point it at a solc "
                f"{SOLC_VERSION} binary or unset it"
            )
        if probed[0] != SOLC_VERSION:
            raise CompilerError(
                f"AGENTWALLET_SOLC={env} is solc {probed[0]} but artifacts are built with "
                f"{SOLC_VERSION}: point it at solc {SOLC_VERSION} or unset it"
            )
        kind = "solcjs" if env.endswith(".js") else "native"
        return Solc(command, probed[0], probed[1], kind)

    native: list[str] = []
    try:
        from solcx import install as solcx_install

        if any(str(v) == SOLC_VERSION for v in solcx_install.get_installed_solc_versions()):
            native.append(str(solcx_install.get_executable(SOLC_VERSION)))
    except Exception:  # noqa: BLE001 - py-solc-x is only one optional source of a binary
        pass
    on_path = shutil.which("solc")
    if on_path:
        native.append(on_path)
    for path in native:
        probed = _probe((path,))
        if probed is not None and probed[0] == SOLC_VERSION:
            return Solc((path,), probed[0], probed[1], "native")

    node = shutil.which("node")
    if node is None:
        raise CompilerError(
            f"no solc {SOLC_VERSION} found and `node` is not on PATH: install Node.js 20+ and "
            "run `npm ci` in the agentwallet project root, or set AGENTWALLET_SOLC to a solc "
            f"{SOLC_VERSION} binary"
        )
    if find_node_modules() is None:
        raise CompilerError(
            "the npm package `solc` is not installed: run `npm ci` in the agentwallet project "
            "root (or set AGENTWALLET_NODE_MODULES to a node_modules directory containing it)"
        )
    command = (node, str(SOLCJS_WRAPPER))
    probed = _probe(command)
    if probed is None or probed[0] != SOLC_VERSION:
        found = probed[0] if probed else "nothing usable"
        raise CompilerError(
            f"the npm solc package gave {found}, expected {SOLC_VERSION}: run `npm ci` in the "
            "agentwallet project root"
        )
    return Solc(command, probed[0], probed[1], "solcjs")


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _imports_of(unit: str, content: str) -> list[str]:
    found = []
    for imp in _IMPORT_RE.findall(_COMMENT_RE.sub("", content)):
        if imp.startswith("./") or imp.startswith("../"):
            imp = posixpath.normpath(posixpath.join(posixpath.dirname(unit), imp))
        found.append(imp)
    return found


def collect_sources(root: Path | None = None) -> dict[str, str]:
    """Every ``contracts/**/*.sol`` plus its import closure, as {unit name: content}.

    Unit names are relative (``contracts/X.sol``, ``@openzeppelin/contracts/...``), so the
    compiler input, and hence the artifacts, do not depend on where the project lives.
    """
    root = (root or project_root()).resolve()
    contracts = root / "contracts"
    units = sorted(p.relative_to(root).as_posix() for p in contracts.rglob("*.sol"))
    node_modules = find_node_modules(root)
    sources: dict[str, str] = {}
    pending = list(units)
    importers: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        if unit.startswith("@"):
            if node_modules is None:
                raise CompilerError(
                    f"{importers.get(unit, unit)} imports {unit} but node_modules is missing: "
                    "run `npm ci` in the agentwallet project root"
                )
            path = node_modules / unit
        else:
            path = root / unit
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            by = importers.get(unit)
            hint = "run `npm ci` in the project root" if unit.startswith("@") else "fix the path"
            raise CompilerError(
                f"cannot read {unit}"
                + (f" (imported by {by})" if by else "")
                + f": {exc.strerror}; {hint}"
            ) from None
        sources[unit] = content
        for imp in _imports_of(unit, content):
            if imp not in sources:
                importers.setdefault(imp, unit)
                pending.append(imp)
    return dict(sorted(sources.items()))


def sources_hash(sources: Mapping[str, str]) -> str:
    """sha256 over the sorted (unit name, content) pairs, as 0x-less hex."""
    h = hashlib.sha256()
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return h.hexdigest()


def standard_json_input(sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": sources[name]} for name in sorted(sources)},
        "settings": COMPILER_SETTINGS,
    }


# --------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------


def compile_sources(
    sources: Mapping[str, str], solc: Solc | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Compile inline sources with :data:`COMPILER_SETTINGS`; return solc's standard JSON output.

    Raises :class:`CompilerError` with solc's formatted messages if anything fails to compile.
    """
    solc = solc or find_solc()
    payload = json.dumps(standard_json_input(sources))
    try:
        proc = subprocess.run(
            [*solc.command, "--standard-json"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=str(cwd or project_root()),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompilerError(f"could not run solc ({' '.join(solc.command)}): {exc}") from None
    try:
        output: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise CompilerError(
            f"solc ({' '.join(solc.command)}) exited {proc.returncode} without JSON output: "
            f"{proc.stderr.strip() or proc.stdout.strip()[:500]}"
        ) from None
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        text = "\n".join(
            (e.get("formattedMessage") or e.get("message", "")).strip() for e in errors
        )
        raise CompilerError(f"solidity compilation failed; fix these errors:\n{text}")
    return output


def _contract_kinds(output: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, bool]]:
    """(unit, contract name) -> (contractKind, abstract) from the AST."""
    kinds: dict[tuple[str, str], tuple[str, bool]] = {}
    for unit, data in output.get("sources", {}).items():
        for node in data.get("ast", {}).get("nodes", []):
            if node.get("nodeType") == "ContractDefinition":
                kinds[(unit, node["name"])] = (node["contractKind"], bool(node.get("abstract")))
    return kinds


#: Interfaces that get an ABI-only artifact (empty bytecode): ``IAgentVault`` is the one ABI of a
#: vault (its core, admin, config and lens together), the ABI clients load for a vault address.
ABI_ONLY_INTERFACES = frozenset({"IAgentVault"})


def build_artifacts(
    sources: Mapping[str, str], output: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """One artifact per deployable contract under ``contracts/`` (no abstract, interface,
    library or empty bytecode), keyed by contract name, plus ABI-only artifacts for
    :data:`ABI_ONLY_INTERFACES`."""
    kinds = _contract_kinds(output)
    digest = sources_hash(sources)
    artifacts: dict[str, dict[str, Any]] = {}
    for unit in sorted(output.get("contracts", {})):
        if not unit.startswith("contracts/"):
            continue
        for name, data in sorted(output["contracts"][unit].items()):
            kind, abstract = kinds.get((unit, name), ("contract", False))
            bytecode = data.get("evm", {}).get("bytecode", {}).get("object", "")
            if kind == "interface" and name in ABI_ONLY_INTERFACES:
                artifacts[name] = {
                    "contractName": name,
                    "sourceName": unit,
                    "abi": data["abi"],
                    "bytecode": "0x",
                    "deployedBytecode": "0x",
                    "solcVersion": SOLC_VERSION,
                    "settings": COMPILER_SETTINGS,
                    "sourcesHash": digest,
                }
                continue
            if kind != "contract" or abstract or not bytecode:
                continue
            runtime_size = len(data["evm"]["deployedBytecode"]["object"]) // 2
            if runtime_size > MAX_RUNTIME_CODE_SIZE:
                raise CompilerError(
                    f"{name} ({unit}) has {runtime_size} bytes of runtime code, over the EIP-170 "
                    f"limit of {MAX_RUNTIME_CODE_SIZE}, so it cannot be deployed: make it "
                    "smaller (move code to a library or split the contract) or lower the "
                    "optimizer runs in agentwallet/compiler.py COMPILER_SETTINGS"
                )
            if name in artifacts:
                raise CompilerError(
                    f"two deployable contracts are named {name} ({artifacts[name]['sourceName']} "
                    f"and {unit}): rename one, artifacts are keyed by contract name"
                )
            artifacts[name] = {
                "contractName": name,
                "sourceName": unit,
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "storageLayout": data.get("storageLayout", {}),
                "solcVersion": SOLC_VERSION,
                "settings": COMPILER_SETTINGS,
                "sourcesHash": digest,
            }
    return artifacts


def dump_artifact(artifact: Mapping[str, Any]) -> str:
    """The canonical text of an artifact file (sorted keys, indent 2, trailing newline)."""
    return json.dumps(artifact, sort_keys=True, indent=2) + "\n"


def _compile_project(root: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    sources = collect_sources(root)
    if not any(name.startswith("contracts/") for name in sources):
        raise CompilerError(f"no Solidity files under {root / 'contracts'}: add contracts first")
    solc = find_solc()
    output = compile_sources(sources, solc, cwd=root)
    build_info = {
        "_format": "hh-sol-build-info-1",
        "id": hashlib.sha256(json.dumps(standard_json_input(sources)).encode()).hexdigest(),
        "solcVersion": solc.version,
        "solcLongVersion": solc.long_version,
        "input": standard_json_input(sources),
        "output": output,
    }
    return build_artifacts(sources, output), build_info


def compile_all(
    write: bool = True, root: Path | None = None, artifacts_dir: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Compile every ``contracts/**/*.sol``; return the artifacts keyed by contract name.

    With ``write``, (re)write ``agentwallet/artifacts/<Name>.json`` (removing artifacts of
    contracts that no longer exist) and ``build/build-info/agentwallet.json`` for Slither.
    """
    root = (root or project_root()).resolve()
    out_dir = artifacts_dir or ARTIFACTS_DIR
    artifacts, build_info = _compile_project(root)
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob("*.json"):
            if stale.stem not in artifacts:
                stale.unlink()
        for name, artifact in artifacts.items():
            path = out_dir / f"{name}.json"
            text = dump_artifact(artifact)
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
        info_path = root / BUILD_INFO_RELPATH
        info_path.parent.mkdir(parents=True, exist_ok=True)
        info_path.write_text(json.dumps(build_info, sort_keys=True) + "\n", encoding="utf-8")
    return artifacts


def check_artifacts(root: Path | None = None, artifacts_dir: Path | None = None) -> list[str]:
    """Compile fresh without writing; return the names of artifacts that differ from the
    files on disk (missing, changed, or stale), sorted. Empty means up to date."""
    out_dir = artifacts_dir or ARTIFACTS_DIR
    fresh = compile_all(write=False, root=root)
    differing = set()
    for name, artifact in fresh.items():
        path = out_dir / f"{name}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != dump_artifact(artifact):
            differing.add(name)
    differing.update(p.stem for p in out_dir.glob("*.json") if p.stem not in fresh)
    return sorted(differing)
