"""The compiled contracts shipped in the package (``agentwallet/artifacts/*.json``).

The runtime half of the build: reading artifacts needs no compiler. Producing them is
:mod:`agentwallet._build.compiler` (``agentwallet compile``), a development-only module.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from agentwallet.errors import CompilerError

__all__ = ["abi_of", "artifact_names", "load_artifact"]


def artifact_names() -> list[str]:
    """Names of the artifacts shipped in the package."""
    folder = resources.files("agentwallet") / "artifacts"
    return sorted(
        entry.name[: -len(".json")] for entry in folder.iterdir() if entry.name.endswith(".json")
    )


def load_artifact(name: str) -> dict[str, Any]:
    """Read ``agentwallet/artifacts/<name>.json`` from the installed package."""
    entry = resources.files("agentwallet") / "artifacts" / f"{name}.json"
    if not entry.is_file():
        known = ", ".join(artifact_names()) or "none"
        raise CompilerError(
            f"no artifact named {name} (have: {known}): run `agentwallet compile` in the "
            "project root"
        )
    data: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    return data


@cache
def abi_of(name: str) -> tuple[dict[str, Any], ...]:
    """The ABI of artifact ``name``, read once per process (treat it as read-only)."""
    return tuple(load_artifact(name)["abi"])
