"""The protocol: what AgentVault means, in pure Python (no web3, no I/O).

The single home of domain knowledge: constants and enums (:mod:`.constants`), results and
portable messages (:mod:`.models`), the two kinds of request (:mod:`.requests`), addresses
(:mod:`.addresses`), payment references (:mod:`.refs`), the budget rule (:mod:`.policy`), EIP-712
messages (:mod:`.typed_data`), owner signatures (:mod:`.signatures`), unordered nonces
(:mod:`.nonces`) and governance calls (:mod:`.calls`). Everything that talks to a
chain builds on these modules; none of them talks to a chain.
"""
