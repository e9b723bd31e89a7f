"""The chain layer: connections, the embedded development chain, and the one transaction
pipeline.

- :mod:`~agentwallet.chain.connection`: :func:`connect` and :class:`Chain` (reads, fees).
- :mod:`~agentwallet.chain.devchain`: the embedded py-evm chain, dev accounts, snapshots, time.
- :mod:`~agentwallet.chain.tx`: the :class:`Transactor` every transaction goes through, and the
  injectable :class:`Broadcaster`.
- :mod:`~agentwallet.chain.nonces`: per-(chain, address) nonce locks and counters.
- :mod:`~agentwallet.chain.node`: find and run a local anvil node.
"""

from agentwallet.chain.connection import Chain, connect
from agentwallet.chain.devchain import ANVIL_CHAIN_ID
from agentwallet.chain.tx import Broadcaster, NodeBroadcaster, Transactor

__all__ = [
    "ANVIL_CHAIN_ID",
    "Broadcaster",
    "Chain",
    "NodeBroadcaster",
    "Transactor",
    "connect",
]
