"""Bindings: one thin typed wrapper per ABI (no policy decisions, nothing sent).

- :mod:`~agentwallet.bindings.artifacts`: the compiled contracts shipped in the package.
- :mod:`~agentwallet.bindings.vault`: AgentVault reads, call encoders, receipt and log decoding.
- :mod:`~agentwallet.bindings.factory`: AgentVaultFactory's creation code and ``createVault``.
- :mod:`~agentwallet.bindings.erc20`: a minimal ERC-20.
"""
