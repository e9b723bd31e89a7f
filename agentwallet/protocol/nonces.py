"""Choosing an unordered nonce (Permit2-style bitmaps) for the owners' signed payments and
signed governance batches (each in its own nonce space, the same rules).

The vault accepts any unused nonce of the owners' payment space, each once. The SDK picks one so
that:

- owners who sign the *same* payment independently (each runs ``sign_payment`` with the same
  agent, token, recipient, amount, ref and deadline) pick the *same* nonce, so their signatures
  combine: the nonce is derived from the payment, not drawn at random;
- *different* payments signed in parallel do not collide: each starts at its own bit (a hash of
  the payment) in the lowest bitmap word that still has a free bit, and takes the first free bit
  from there. Two different payments land on the same nonce only if their hashes pick the same
  bit of the same word (1 in 256), and then the second one to run fails with
  ``NonceAlreadyUsed`` and is signed again, never paid twice;
- a payment signed again after its first signature set ran (or was cancelled with
  ``invalidateNonces``) gets a fresh nonce: its old bit is used now.

Pure: the caller reads the bitmap words.
"""

from __future__ import annotations

from collections.abc import Callable

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

__all__ = ["FULL_WORD", "governance_seed", "payment_seed", "pick_nonce"]

#: A bitmap word with every nonce used.
FULL_WORD = (1 << 256) - 1
#: Words searched before giving up (65,536 nonces): a space that full is an attack or a bug.
MAX_WORDS = 256


def payment_seed(agent: str, token: str, to: str, amount: int, ref: bytes, deadline: int) -> int:
    """The bit (0..255) a signed payment's nonce search starts at: a hash of the payment."""
    encoded = abi_encode(
        ["address", "address", "address", "uint256", "bytes32", "uint256"],
        [agent, token, to, amount, ref, deadline],
    )
    return keccak(encoded)[-1]


def governance_seed(calls: list[bytes], deadline: int) -> int:
    """The bit (0..255) a governance batch's nonce search starts at: a hash of the batch, so
    owners who sign the same batch independently agree and different batches spread out."""
    return keccak(abi_encode(["bytes[]", "uint256"], [list(calls), deadline]))[-1]


def pick_nonce(bitmap: Callable[[int], int], seed: int) -> int:
    """The first unused nonce at or after bit ``seed`` (wrapping) of the lowest word of
    ``bitmap(word_pos)`` that has a free bit."""
    for word_pos in range(MAX_WORDS):
        word = bitmap(word_pos)
        if word == FULL_WORD:
            continue
        for step in range(256):
            bit = (seed + step) % 256
            if not (word >> bit) & 1:
                return (word_pos << 8) | bit
    raise ValueError(f"the first {MAX_WORDS * 256} nonces of this space are all used")
