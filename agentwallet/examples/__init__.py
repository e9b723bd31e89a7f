"""Runnable examples (``python -m agentwallet.examples.<name>``)."""
