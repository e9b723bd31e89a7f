"""CLI tests: every command runs as its own process against one anvil node per module.

``cli`` runs ``python -m agentwallet ...`` with AGENTWALLET_HOME / AGENTWALLET_DEPLOYMENTS in a
temporary directory, AGENTWALLET_RPC at the module's anvil and AGENTWALLET_PASSWORD set. Every
run's stdout and stderr are kept in :data:`OUTPUTS` for the key-leak test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentwallet.chain.node import AnvilProcess, free_port, start_anvil

PASSWORD = "correct horse battery staple"
#: Every CLI run's output in this session, for the key-leak test.
OUTPUTS: list[str] = []


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"Run({self.args}, code={self.code}, out={self.out!r}, err={self.err!r})"

    def ok(self) -> Run:
        assert self.code == 0, self
        return self

    def fails(self, *needles: str) -> str:
        """Exit 1 with exactly one ``error: ...`` line on stderr (containing every needle)."""
        assert self.code == 1, self
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self
        assert "Traceback" not in self.out + self.err
        for needle in needles:
            assert needle.lower() in lines[0].lower(), (needle, self)
        return lines[0]


@dataclass
class Cli:
    """Runs the CLI as a separate process with this module's environment."""

    env: dict[str, str]
    cwd: Path
    node: AnvilProcess
    runs: list[Run] = field(default_factory=list)

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Run:
        full_env = {**self.env, **(env or {})}
        for key, value in list(full_env.items()):
            if value == "":
                del full_env[key]
        proc = subprocess.run(
            [sys.executable, "-m", "agentwallet", *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.cwd,
            timeout=120,
        )
        OUTPUTS.append(proc.stdout + proc.stderr)
        run = Run(list(args), proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        return run


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("cli")
    with start_anvil(port=free_port(), state=root / "anvil-state.json") as node:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AGENTWALLET_") and k not in ("PYTHONWARNINGS",)
        }
        env.update(
            {
                "AGENTWALLET_HOME": str(root / "home"),
                "AGENTWALLET_DEPLOYMENTS": str(root / "deployments"),
                "AGENTWALLET_PASSWORD": PASSWORD,
                "AGENTWALLET_RPC": node.url,
                "AGENTWALLET_SCRYPT_N": "1024",  # fast test keystores
                "AGENTWALLET_ANVIL": os.environ.get("AGENTWALLET_ANVIL", ""),
            }
        )
        repo = Path(__file__).resolve().parents[2]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
        yield Cli(env=env, cwd=root, node=node)
