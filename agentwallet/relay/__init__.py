"""The relay: a small HTTP service that submits agents' signed intents and key rotations and
pays the gas from its own key (``agentwallet relay``; the API is in docs/relay.md), and the
client an agent uses to reach one (``AgentWallet.pay(..., relay=URL)``)."""

from agentwallet.relay.client import RelayClient
from agentwallet.relay.server import RelayServer, serve
from agentwallet.relay.service import RelayService

__all__ = ["RelayClient", "RelayServer", "RelayService", "serve"]
