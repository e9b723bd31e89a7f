"""Development-only tools: compiling the contracts into ``agentwallet/artifacts/``.

Nothing at runtime imports this package; ``agentwallet compile`` and the tests import it
lazily. Runtime code reads the committed artifacts through :mod:`agentwallet.bindings.artifacts`.
"""
