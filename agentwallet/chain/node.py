"""Find and run a local anvil node (installed by ``npm ci`` as ``@foundry-rs/anvil``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from agentwallet.chain.devchain import ANVIL_CHAIN_ID
from agentwallet.errors import ChainConnectionError, NodeNotFoundError

ANVIL_NPM_BIN = Path("node_modules") / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
HARDFORK = "prague"
STARTUP_TIMEOUT = 15.0

#: The signals that stop a node served in the foreground (:meth:`AnvilProcess.serve`): Ctrl-C,
#: ``kill``, and the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def find_anvil() -> Path:
    """``AGENTWALLET_ANVIL``, then the npm-installed anvil found walking up from the cwd and
    from the package dir, then ``anvil`` on PATH."""
    env = os.environ.get("AGENTWALLET_ANVIL")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise NodeNotFoundError(
                f"AGENTWALLET_ANVIL={env} is not an executable file: fix the path or unset it"
            )
        return path
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    for start in starts:
        for d in (start, *start.parents):
            candidate = d / ANVIL_NPM_BIN
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise NodeNotFoundError(
        "anvil not found: run `npm ci` in the agentwallet project root (installs "
        "@foundry-rs/anvil) or install foundry"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    """``eth_chainId`` at ``url``, or None if nothing answers."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.loads(response.read())["result"], 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return None


class AnvilProcess:
    """A running anvil child process. Use as a context manager or call :meth:`stop`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: int,
        state: Path | None,
        log: Path | None = None,
    ) -> None:
        self.process = process
        self.port = port
        self.state = state
        self.log = log  #: the file anvil's output goes to (None: the terminal, or nowhere)
        self.url = f"http://127.0.0.1:{port}"

    def __repr__(self) -> str:
        return f"AnvilProcess(pid={self.process.pid}, url={self.url})"

    def __enter__(self) -> AnvilProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop anvil (SIGTERM, then SIGKILL); with ``--state`` anvil writes the state on exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def wait(self) -> int:
        """Block until anvil exits; return its exit code."""
        return self.process.wait()

    def serve(self, ready: Callable[[], None] | None = None) -> int | None:
        """Serve in the foreground: block until anvil exits by itself or this process gets one
        of :data:`STOP_SIGNALS` (Ctrl-C, ``kill``, the terminal closing); then stop anvil
        (it writes its state) and return. ``ready`` runs once the signals are handled (announce
        the node there: a signal sent as soon as it is announced is handled too).

        Returns the signal number that stopped it, or None if anvil exited by itself (see
        ``self.process.returncode``). Further stop signals while anvil shuts down are ignored,
        so a second Ctrl-C cannot leave it running. The previous handlers are restored.
        """
        received: list[int] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if not received:
                received.append(signum)
                raise _StopRequested

        previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
        try:
            try:
                if ready is not None:
                    ready()
                self.process.wait()
            except _StopRequested:
                pass
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)
            self.stop()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return received[0] if received else None


class _StopRequested(Exception):
    """Raised by :meth:`AnvilProcess.serve`'s signal handler to leave the wait."""


def _open_log(path: Path) -> IO[bytes]:
    """``path`` truncated for a new run, readable by its owner only (anvil's banner lists the
    development accounts' private keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send anvil SIGTERM when the process that started it dies, even
    by SIGKILL (``prctl(PR_SET_PDEATHSIG)``)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_anvil(
    port: int = 8545,
    state: Path | None = None,
    block_time: float | None = None,
    quiet: bool = True,
    extra_args: Sequence[str] = (),
    *,
    log: Path | None = None,
    die_with_parent: bool = False,
) -> AnvilProcess:
    """Start anvil on 127.0.0.1:``port`` (Prague, chain id 31337) and wait until it answers.

    ``state``: a file anvil loads on start (if it exists) and writes on exit, so the chain
    survives restarts. ``block_time``: mine every N seconds instead of on each transaction.
    ``extra_args``: more anvil flags (e.g. ``--steps-tracing`` for opcode traces).
    Anvil's output (a banner with the development private keys, then a line per RPC call) goes
    to ``log`` if given (truncated, mode 0600), else to this process's terminal if ``quiet`` is
    false, else nowhere. ``die_with_parent`` (Linux): anvil is stopped when this process dies,
    even by SIGKILL; for a node served by a command, not for one started by a thread.
    """
    if rpc_chain_id(f"http://127.0.0.1:{port}", timeout=0.5) is not None:
        raise ChainConnectionError(
            f"something already answers JSON-RPC on 127.0.0.1:{port}: stop it or pick "
            "another port with --port"
        )
    anvil = find_anvil()
    command = [
        str(anvil),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--hardfork", HARDFORK,
        "--chain-id", str(ANVIL_CHAIN_ID),
    ]  # fmt: skip
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        command += ["--state", str(state)]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    command += list(extra_args)
    log_file = _open_log(log) if log is not None else None
    output: IO[bytes] | int | None = log_file or (subprocess.DEVNULL if quiet else None)
    preexec = _die_with_parent if die_with_parent and sys.platform == "linux" else None
    try:
        process = subprocess.Popen(
            command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, preexec_fn=preexec
        )
    finally:
        if log_file is not None:
            log_file.close()  # anvil holds its own copy
    node = AnvilProcess(process, port, state, log)
    see = f"see {log}" if log is not None else f"run `{' '.join(command)}` by hand to see why"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NodeNotFoundError(
                f"anvil ({anvil}) exited with code {process.returncode} on start: {see} "
                "(port in use? bad state file?)"
            )
        if rpc_chain_id(node.url, timeout=0.5) == ANVIL_CHAIN_ID:
            return node
        time.sleep(0.05)
    node.stop()
    raise NodeNotFoundError(
        f"anvil did not answer on {node.url} within {STARTUP_TIMEOUT:.0f}s: {see}"
    )
