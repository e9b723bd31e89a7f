"""A client of a relay's JSON API (docs/relay.md): submit an agent's intent or rotation, read
its status. Refusals become :class:`~agentwallet.errors.IntentRefusedError` with the relay's
code; an unreachable relay or a reply that is not the API, :class:`~agentwallet.errors.RelayError`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from agentwallet.errors import IntentRefusedError, PaymentPendingError, RelayError
from agentwallet.protocol.models import SignedIntent, SignedRotation

__all__ = ["RelayClient"]


class RelayClient:
    """The relay at ``url`` (``http://127.0.0.1:8545``-style base URL)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RelayClient({self.url!r})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = httpx.request(method, self.url + path, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise RelayError(
                f"relay {self.url} cannot be reached ({type(exc).__name__}): start it with "
                "`agentwallet relay`, or check the URL"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RelayError(
                f"relay {self.url} answered {path} with HTTP {response.status_code} and no JSON"
            )
        if response.status_code >= 400:
            error = data.get("error") or {}
            raise IntentRefusedError(
                f"relay refused: {error.get('message', 'no reason given')}",
                str(error.get("code", "relay_error")),
                response.status_code,
            )
        return data

    def submit_intent(self, signed: SignedIntent, fee: int = 0) -> dict[str, Any]:
        """``POST /intents``: the relay checks, simulates and broadcasts; its status record."""
        return self._call(
            "POST", "/intents", {"intent": json.loads(signed.to_json()), "fee": str(fee)}
        )

    def submit_rotation(self, rotation: SignedRotation) -> dict[str, Any]:
        """``POST /rotations``: as :meth:`submit_intent` for a key rotation."""
        return self._call("POST", "/rotations", {"rotation": json.loads(rotation.to_json())})

    def status(self, job_id: str) -> dict[str, Any]:
        """``GET /intents/{id}`` (also rotations)."""
        return self._call("GET", f"/intents/{job_id}")

    def wait(self, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll :meth:`status` until it is no longer ``pending``; :class:`PaymentPendingError`
        after ``timeout`` seconds (it may still be mined: retry with the same ref)."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            record = self.status(job_id)
            if record.get("status") != "pending":
                return record
            if time.monotonic() > deadline:
                raise PaymentPendingError(
                    f"relay {self.url} has not mined {job_id} after {timeout:.0f} s: retry with "
                    "the same ref to get its result"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
