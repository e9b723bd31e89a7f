"""Watch vaults: sync new blocks into the index and raise alerts.

Alerts (each raised once; keys are remembered in the index's ``alerts`` table):

- ``request_waiting``: a new pending request needs co-signers.
- ``request_expiring``: a pending request expires within ``expiry_window`` seconds.
- ``spend_spike``: an agent's spend of one token in the last hour is more than
  ``spike_factor`` x its hourly average over the 24 hours before that, and at least
  ``spike_min`` token units (a first-ever spend counts as a spike against a zero baseline when it
  is at least ``spike_min``).
- ``new_recipient``: a payment to a recipient the vault never paid before.
- ``escalation_burst``: an agent created ``burst_count`` or more payment requests within
  ``burst_window`` seconds.

With a ``pauser`` (an owner account), ``spend_spike`` and ``escalation_burst`` pause the agent
(:meth:`Vault.pause_agent <agentwallet.vault.Vault.pause_agent>`, one owner's risk-reducing
call, through the transaction pipeline: simulated, with gas headroom for the flag rewrites, under
the nonce lock, typed errors) and the alert says so.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from eth_account.signers.base import BaseAccount
from eth_utils.address import to_checksum_address

from agentwallet.audit.errors import AuditError
from agentwallet.audit.events import AuditEvent, EventFilter
from agentwallet.audit.format import Amounts
from agentwallet.audit.index import AuditIndex, SyncResult
from agentwallet.audit.requests import vault_requests
from agentwallet.audit.trail import OUTFLOW_EVENTS, call_outflows
from agentwallet.chain import Chain
from agentwallet.protocol.constants import ETH, AgentStatus
from agentwallet.vault import Vault

HOUR = 3600
#: Outflows to a recipient (new_recipient); scoped calls pay a target contract, not a payee.
PAID_EVENTS = ("PaymentExecuted", "SignedPaymentExecuted")


def _flows(e: AuditEvent) -> list[tuple[str, int]]:
    """(token, amount) that left the vault in an outflow event."""
    if e.name == "CallExecuted":
        return call_outflows(e)
    return [(e.token or ETH, int(e.amount or 0))]


@dataclass(frozen=True)
class WatchConfig:
    expiry_window: int = HOUR
    spike_factor: Decimal = Decimal(3)
    spike_min: Decimal = Decimal(1)  #: token units
    burst_count: int = 3
    burst_window: int = HOUR
    confirmations: int = 0


@dataclass(frozen=True)
class Alert:
    kind: str
    vault: str
    message: str
    block: int
    agent: str | None = None
    request_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    action: str | None = None  #: what watch did about it (e.g. "paused agent 0x… in tx 0x…")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}


class WebhookError(AuditError):
    """The webhook URL refused or did not answer an alert POST."""


def post_webhook(url: str, alert: Alert, timeout: float = 5.0) -> None:
    body = json.dumps(alert.to_dict(), default=str).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(
            f"webhook {url} failed: {exc}; check the URL and that it accepts POSTed JSON"
        ) from None


class Watcher:
    """Syncs ``vaults`` and returns new alerts on each :meth:`poll`."""

    def __init__(
        self,
        index: AuditIndex,
        chain: Chain,
        vaults: Sequence[str],
        config: WatchConfig | None = None,
        pauser: BaseAccount | None = None,
        now: Callable[[], int] | None = None,
    ) -> None:
        self.index = index
        self.chain = chain
        self.vaults = tuple(to_checksum_address(v) for v in vaults)
        self.config = config or WatchConfig()
        self.pauser = pauser
        self._now = now
        self.last_sync: SyncResult | None = None

    def now(self) -> int:
        return self._now() if self._now else self.chain.timestamp()

    def poll(self) -> list[Alert]:
        chain_id = self.chain.chain_id
        before = self.index.state(chain_id, self.vaults)
        self.last_sync = self.index.sync(
            self.chain, self.vaults, confirmations=self.config.confirmations
        )
        after = self.index.state(chain_id, self.vaults)
        first = before.last_block + 1 if before else 0
        last = after.last_block if after else -1
        alerts: list[Alert] = []
        now = self.now()
        for vault in self.vaults:
            new = (
                self.index.events(
                    chain_id, EventFilter(vaults=(vault,), from_block=first, to_block=last)
                )
                if last >= first
                else []
            )
            alerts += self._request_alerts(chain_id, vault, now)
            alerts += self._payment_alerts(chain_id, vault, new, now)
            alerts += self._burst_alerts(chain_id, vault, new)
        return [self._act(a) for a in alerts]

    # ----------------------------------------------------------------------------- rules

    def _once(self, key: str) -> bool:
        """True the first time ``key`` is seen."""
        return not self.index.alert_seen(f"{self.chain.chain_id}:{key}")

    def _request_alerts(self, chain_id: int, vault: str, now: int) -> list[Alert]:
        out = []
        amounts = Amounts(self.index, chain_id)
        for r in vault_requests(self.index, chain_id, vault).values():
            if r.effective_status(now) != "pending":
                continue
            if r.kind == "payment":
                what = f"{amounts.text(r.amount, r.token)} to {r.to}"
            elif r.kind == "call":
                what = f"{r.action} spending up to {amounts.text(r.amount, r.token)}"
                what += f" and {amounts.text(r.value, ETH)}" if r.value else ""
            else:
                what = r.action
            if self._once(f"{vault}:waiting:{r.request_id}"):
                out.append(
                    Alert(
                        "request_waiting",
                        vault,
                        f"request #{r.request_id} ({r.kind}: {what}) waits for co-signers; "
                        f"approved so far by {len(r.approvals)}: "
                        f"{', '.join(r.approvals) or 'none'}",
                        block=0,
                        agent=r.agent,
                        request_id=r.request_id,
                        details={"reasons": list(r.reasons), "expires_at": r.expires_at},
                    )
                )
            left = r.expires_at - now
            if 0 <= left <= self.config.expiry_window and self._once(
                f"{vault}:expiring:{r.request_id}"
            ):
                out.append(
                    Alert(
                        "request_expiring",
                        vault,
                        f"request #{r.request_id} ({what}) expires in {left}s without enough "
                        "approvals",
                        block=0,
                        agent=r.agent,
                        request_id=r.request_id,
                        details={"expires_at": r.expires_at, "seconds_left": left},
                    )
                )
        return out

    def _payment_alerts(
        self, chain_id: int, vault: str, new: list[AuditEvent], now: int
    ) -> list[Alert]:
        out = []
        amounts = Amounts(self.index, chain_id)
        payments = [e for e in new if e.name in PAID_EVENTS]
        for e in payments:
            first = self.index.events(
                chain_id,
                EventFilter(
                    vaults=(vault,),
                    names=PAID_EVENTS,
                    recipient=e.recipient,
                    to_block=e.block_number,
                ),
            )
            if first and first[0].key == e.key and self._once(f"{vault}:recipient:{e.recipient}"):
                out.append(
                    Alert(
                        "new_recipient",
                        vault,
                        f"agent {e.agent} paid {amounts.text(int(e.amount or 0), e.token)} to "
                        f"{e.recipient}, a recipient this vault never paid before",
                        block=e.block_number,
                        agent=e.agent,
                        request_id=e.request_id or None,
                        details={"tx": e.tx_hash, "recipient": e.recipient},
                    )
                )
        spent = {
            (e.agent, token)
            for e in new
            if e.name in OUTFLOW_EVENTS and e.agent
            for token, _ in _flows(e)
        }
        for agent, token in sorted(spent):
            history = [
                (e, amount)
                for e in self.index.events(
                    chain_id,
                    EventFilter(vaults=(vault,), names=OUTFLOW_EVENTS, since=now - 25 * HOUR),
                    agents=[agent],
                )
                for t, amount in _flows(e)
                if t == token
            ]
            last_hour = sum(a for e, a in history if e.block_time > now - HOUR)
            before = sum(a for e, a in history if e.block_time <= now - HOUR)
            baseline = Decimal(before) / 24
            meta = amounts.meta(token)
            minimum = self.config.spike_min * (Decimal(10) ** (meta.decimals or 0))
            if last_hour >= minimum and Decimal(last_hour) > self.config.spike_factor * baseline:
                bucket = now // HOUR
                if self._once(f"{vault}:spike:{agent}:{token}:{bucket}"):
                    out.append(
                        Alert(
                            "spend_spike",
                            vault,
                            f"agent {agent} spent {amounts.text(last_hour, token)} in the last "
                            "hour, "
                            f"more than {self.config.spike_factor}x its hourly average of the 24h "
                            f"before ({amounts.text(int(baseline), token)}/h)",
                            block=max(e.block_number for e, _ in history),
                            agent=agent,
                            details={
                                "token": token,
                                "last_hour": str(last_hour),
                                "baseline_per_hour": str(int(baseline)),
                            },
                        )
                    )
        return out

    def _burst_alerts(self, chain_id: int, vault: str, new: list[AuditEvent]) -> list[Alert]:
        out = []
        window = self.config.burst_window
        escalations = ("PaymentRequested", "CallRequested")
        for agent in sorted({e.agent for e in new if e.name in escalations and e.agent}):
            created = self.index.events(
                chain_id, EventFilter(vaults=(vault,), names=escalations, agent=agent)
            )
            newest = created[-1]
            recent = [e for e in created if e.block_time > newest.block_time - window]
            if len(recent) >= self.config.burst_count and self._once(
                f"{vault}:burst:{agent}:{recent[0].request_id}"
            ):
                out.append(
                    Alert(
                        "escalation_burst",
                        vault,
                        f"agent {agent} escalated {len(recent)} payments or calls within "
                        f"{window}s "
                        f"(requests {', '.join('#' + str(e.request_id) for e in recent)})",
                        block=newest.block_number,
                        agent=agent,
                        details={"request_ids": [e.request_id for e in recent]},
                    )
                )
        return out

    # ----------------------------------------------------------------------------- actions

    def _act(self, alert: Alert) -> Alert:
        if self.pauser is None or alert.kind not in ("spend_spike", "escalation_burst"):
            return alert
        if not alert.agent:
            return alert
        vault = Vault(self.chain, alert.vault)
        status = vault.bindings.agent(alert.agent).status
        if status != AgentStatus.ACTIVE:  # nothing to pause
            return _with_action(alert, f"agent already not active (status {int(status)})")
        try:
            result = vault.pause_agent(self.pauser, alert.agent)
        except Exception as exc:  # noqa: BLE001 - report the failure in the alert, keep watching
            return _with_action(alert, f"auto-pause FAILED: {type(exc).__name__}: {exc}")
        return _with_action(
            alert,
            f"paused agent {alert.agent} (pauseAgent by {self.pauser.address}, "
            f"tx {result.tx_hash})",
        )


def _with_action(alert: Alert, action: str) -> Alert:
    return Alert(
        alert.kind,
        alert.vault,
        alert.message + f" -> {action}",
        alert.block,
        alert.agent,
        alert.request_id,
        alert.details,
        action,
    )


def watch_loop(
    watcher: Watcher,
    emit: Callable[[Alert], None],
    *,
    interval: float = 5.0,
    once: bool = False,
    max_polls: int | None = None,
    max_blocks: int | None = None,
) -> int:
    """Poll until interrupted (or once / ``max_polls`` polls / ``max_blocks`` blocks synced);
    returns the number of alerts emitted."""
    emitted = polls = 0
    start_state = watcher.index.state(watcher.chain.chain_id, watcher.vaults)
    start_block = start_state.last_block if start_state else -1
    while True:
        for alert in watcher.poll():
            emit(alert)
            emitted += 1
        polls += 1
        state = watcher.index.state(watcher.chain.chain_id, watcher.vaults)
        synced = (state.last_block if state else -1) - start_block
        if (
            once
            or (max_polls is not None and polls >= max_polls)
            or (max_blocks is not None and synced >= max_blocks)
        ):
            return emitted
        time.sleep(interval)
