"""Running the console: uvicorn on 127.0.0.1, in the foreground (the CLI) or in a thread (tests,
notebooks)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

from agentwallet.console.service import ConsoleError

__all__ = ["HOST", "BackgroundServer", "check_port", "serve"]

#: The console listens on loopback only: it is one owner's page, never a public service.
HOST = "127.0.0.1"


def check_port(port: int) -> None:
    """Raise :class:`ConsoleError` if ``port`` on 127.0.0.1 is taken or invalid."""
    if not 0 < port < 65536:
        raise ConsoleError(f"port {port} is not a TCP port: pass --port between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise ConsoleError(
                f"port {port} on {HOST} is in use (another console?): pass --port N"
            ) from None


def serve(app: Starlette, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until Ctrl-C."""
    check_port(port)
    uvicorn.run(app, host=HOST, port=port, log_level="warning")


class BackgroundServer:
    """``app`` served on 127.0.0.1:``port`` by uvicorn in a daemon thread."""

    def __init__(self, app: Starlette, port: int) -> None:
        check_port(port)
        self.url = f"http://{HOST}:{port}"
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout: float = 15.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConsoleError(f"the console did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
