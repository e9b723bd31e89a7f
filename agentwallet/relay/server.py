"""Running the relay on 127.0.0.1 with uvicorn: in the foreground (``agentwallet relay``) or in
a background thread (:class:`RelayServer`, for an agent's own process and for tests)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from agentwallet.errors import RelayError
from agentwallet.relay.app import create_app
from agentwallet.relay.service import RelayService

__all__ = ["HOST", "RelayServer", "serve"]

#: The relay listens on the loopback interface only.
HOST = "127.0.0.1"


def _config(service: RelayService, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(create_app(service), host=HOST, port=port, log_level=log_level)


def serve(service: RelayService, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM)."""
    uvicorn.Server(_config(service, port, log_level)).run()


class RelayServer:
    """The relay in a background thread: ``with RelayServer(service, port) as url: ...``."""

    def __init__(self, service: RelayService, port: int, log_level: str = "warning") -> None:
        self.service = service
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._server = uvicorn.Server(_config(service, port, log_level))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        """Start and wait until it accepts connections; its base URL."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RelayError(f"the relay did not start on {self.url} (port in use?)")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
