"""The protocol: what AgentVault means, in pure Python (no web3, no I/O).

The single home of domain knowledge: constants and enums (:mod:`.constants`) and payment
references (:mod:`.refs`). Everything that talks to a chain builds on these modules; none of them
talks to a chain.
"""
