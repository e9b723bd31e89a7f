"""Development chains only: gas money from a dev account, and the test token (TestUSDC).

Everything here sends through the chain's transaction pipeline (simulated, typed errors, the
nonce lock), like the SDK's own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.base import BaseAccount

from agentwallet.bindings.artifacts import load_artifact
from agentwallet.bindings.erc20 import TEST_TOKEN_ARTIFACT, Erc20Binding
from agentwallet.chain import Chain
from agentwallet.deployments import Deployments
from agentwallet.errors import AgentWalletError, ContractRevertError, NotADevelopmentChainError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.models import ETH_TOKEN, TokenInfo, TxResult

__all__ = [
    "TEST_TOKEN_DECIMALS",
    "TEST_TOKEN_SYMBOL",
    "Funded",
    "deploy_test_token",
    "faucet",
    "mint_test_token",
]

TEST_TOKEN_SYMBOL = "tUSDC"
TEST_TOKEN_DECIMALS = 6


@dataclass(frozen=True)
class Funded:
    """What the faucet sent, and the recipient's balance afterwards (base units)."""

    tx: TxResult
    token: TokenInfo
    amount: int
    balance: int


def faucet(chain: Chain, to: str, amount: int, token: TokenInfo = ETH_TOKEN) -> Funded:
    """Send ``amount`` ETH for gas from the first dev account, or mint ``amount`` of the test
    token (``token``); development chains only."""
    to = checksum(to, "recipient address")
    if not chain.is_development:
        raise NotADevelopmentChainError(
            f"faucet only works on development chains (anvil, embedded), and chain "
            f"{chain.chain_id} is not one: send ETH for gas to {to} from a funded wallet"
        )
    funder = chain.dev_accounts[0]
    if token.is_eth:
        tx = TxResult.from_receipt(chain.transactor.send(funder, to, b"", amount))
        return Funded(tx, token, amount, chain.balance(to))
    tx = mint_test_token(chain, funder, token, to, amount)
    return Funded(tx, token, amount, Erc20Binding(chain, token.address).balance_of(to))


def mint_test_token(
    chain: Chain, sender: BaseAccount, token: TokenInfo, to: str, amount: int
) -> TxResult:
    """Mint ``amount`` of the test token to ``to`` (anyone may mint it)."""
    data = Erc20Binding(chain, token.address).encode_mint(to, amount)
    try:
        receipt = chain.transactor.send(sender, token.address, data)
    except ContractRevertError:
        raise AgentWalletError(
            f"cannot mint {token.symbol} at {token.address}: faucet --token only works for the "
            f"development test token ({TEST_TOKEN_SYMBOL}, from `deploy --test-token`)"
        ) from None
    return TxResult.from_receipt(receipt)


def deploy_test_token(chain: Chain, sender: BaseAccount, deployments: Deployments) -> TokenInfo:
    """Deploy TestUSDC and record it as ``tUSDC`` (6 decimals) in ``deployments``."""
    bytecode = bytes.fromhex(load_artifact(TEST_TOKEN_ARTIFACT)["bytecode"].removeprefix("0x"))
    receipt = chain.transactor.send(sender, None, bytecode)
    address = checksum(str(receipt["contractAddress"]))
    deployments.record_token(TEST_TOKEN_SYMBOL, address, TEST_TOKEN_DECIMALS)
    return TokenInfo(address, TEST_TOKEN_SYMBOL, TEST_TOKEN_DECIMALS)
