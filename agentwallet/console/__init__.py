"""The co-signer console: owners see what waits for them, decide and sign in their browser with
their own wallet (EIP-1193), while the server holds no key.

- :mod:`~agentwallet.console.service`: :class:`Console`, what the pages show and the
  transactions and typed data the wallet signs, built with the SDK and checked first.
- :mod:`~agentwallet.console.signatures`: off-chain approvals, verified, kept until the threshold.
- :mod:`~agentwallet.console.rows`: the plain-words tables (the CLI's signing table).
- :mod:`~agentwallet.console.audit`: the trail and the alerts of ``watch``.
- :mod:`~agentwallet.console.app`: the Starlette app (pages, JSON API); ``templates/`` and
  ``static/`` (vanilla JS and CSS, no third-party front-end code) ship with the package.
- :mod:`~agentwallet.console.server`: uvicorn on 127.0.0.1.
"""

from agentwallet.console.app import create_app
from agentwallet.console.server import BackgroundServer, serve
from agentwallet.console.service import Console, ConsoleError, PreparedTx

__all__ = ["BackgroundServer", "Console", "ConsoleError", "PreparedTx", "create_app", "serve"]
