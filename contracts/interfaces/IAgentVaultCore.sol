// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {IAgentVaultBase} from "./IAgentVaultBase.sol";

/// @title IAgentVaultCore
/// @notice What runs per payment: set-up, deposits, an agent's payment (sent by the agent or
/// relayed from its signed intent, also as an ERC-7710 delegation manager) and the owners' signed
/// payment. Every other selector of a vault is forwarded to its admin extension ({IAgentVaultAdmin}).
interface IAgentVaultCore is IAgentVaultBase, IERC5267 {
    /// @notice Initialises a fresh clone once. Called by the factory in the creating transaction.
    /// @param owners distinct non-zero owners, at most MAX_OWNERS (20)
    /// @param threshold approvals needed, 1..owners.length
    /// @param requestExpiry seconds a request stays open (1 hour .. 365 days)
    /// @param maxOpenRequests pending payment requests one agent may have open (1..1000)
    function initialize(address[] calldata owners, uint256 threshold, uint256 requestExpiry, uint256 maxOpenRequests)
        external;

    /// @notice Deposit `amount` of an ERC-20 (needs an allowance). ETH is deposited by plain transfer.
    /// Emits {Deposited} with the amount actually received (fee-on-transfer tokens credit less).
    function deposit(address token, uint256 amount) external;

    /// @notice Pay `amount` of `token` to `to`, sent by an agent. Inside every limit the transfer runs
    /// at once and 0 is returned. Outside any limit a request is created (reasons in the event) and
    /// its id returned. Reverts for a paused vault, or an agent that is not active or outside its
    /// validity window, or when the agent already has `maxOpenRequests` pending requests.
    /// @param ref the caller's reference (invoice id, idempotency key); appears in every event about the payment
    function pay(address token, address to, uint256 amount, bytes32 ref) external returns (uint256 requestId);

    /// @notice Runs an agent's signed {Intent}, submitted by anyone: exactly the policy of {pay} for
    /// the signer, with `amount + fee` counted against its limits and `fee` paid to the caller. An
    /// intent outside the limits becomes a request, as {pay} would (no fee is paid then). The
    /// intent's nonce is spent either way.
    /// @param r the agent's EIP-712 signature over the {Intent} in EIP-2098's compact form: `r`
    /// @param vs and `s` with the parity of `v` in its top bit (64 bytes instead of 65 + padding)
    function payWithIntent(Intent calldata intent, uint256 fee, bytes32 r, bytes32 vs)
        external
        returns (uint256 requestId);

    /// @notice ERC-7710: the vault as the delegation manager of its agents. Each permission context
    /// is `abi.encode(Intent, bytes signature)` signed by an agent; each mode must be the ERC-7579
    /// single-call default mode (`bytes32(0)`); each execution (`abi.encodePacked(target, value,
    /// callData)`) must be exactly the transfer the intent names: `transfer(to, amount)` on the
    /// token with value 0, or for ETH a call to `to` with value `amount` and no data. A payment
    /// outside the agent's limits reverts here (the redeemer expects a transfer) instead of
    /// escalating. No fee is paid.
    function redeemDelegations(
        bytes[] calldata permissionContexts,
        bytes32[] calldata modes,
        bytes[] calldata executionCallDatas
    ) external;

    /// @notice Pays at once with owner EIP-712 signatures over a {SignedPayment}, no stored
    /// request. Anyone may send it (e.g. a relayer); the vault must not be paused. The nonce is
    /// any unused nonce of the owners' payment space, so payments signed in parallel never cancel
    /// each other; one owner can cancel a signed payment with {IAgentVaultAdmin-invalidateNonces}.
    /// @param signatures the threshold's worth of owner signatures, packed as in Safe: 65 bytes each,
    /// `r | s | v`, ordered by signer address strictly ascending (so no owner counts twice), every
    /// signer a current owner. `v` 27/28: an EOA's ECDSA signature (low `s` only). `v` 0: an
    /// ERC-1271 owner (a contract such as a Safe); `r` is its address and `s` the byte offset in
    /// `signatures` of its signature, stored there as a 32-byte length and the bytes, after the
    /// 65-byte parts. Signatures beyond the threshold are ignored. `v` 1 (an owner's on-chain
    /// approval, see {executePaymentWithSignatures}) is refused here: there is no stored request.
    function payWithSignatures(SignedPayment calldata payment, bytes calldata signatures) external;

    /// @notice Executes an agent's pending payment request with the threshold's worth of owner
    /// EIP-712 signatures over the {PaymentRequest} collected off-chain (packed as for
    /// {payWithSignatures}). Anyone may send it. Owners may mix on-chain approvals and signatures:
    /// an entry with `v` 1 and `r` = an owner's address (Safe's "approved hash", `s` ignored)
    /// counts iff that owner's on-chain approval of THIS request is current (not from an older
    /// owner epoch, not a rejection); otherwise `InvalidSignature(owner)`. Emits {PaymentExecuted}
    /// and {RequestExecuted} (naming every owner counted, by approval or signature).
    function executePaymentWithSignatures(PaymentRequest calldata request, bytes calldata signatures) external;

    /// @notice An agent calls `target` through the vault: `selector` (the first 4 bytes of
    /// `data`) must be granted to the agent for `target` ({IAgentVaultConfig-grantCall}), `value`
    /// within that grant's per-call cap and ETH allowance, and `spendAmount` of `spendToken` (0
    /// for none) within the agent's token limits, as a payment to `target` would be. The vault
    /// approves `target` for `spendAmount` for the call only (reset after it), and counts what left
    /// it by balance change: never more than `spendAmount` (`CallOverspent`). Outside any limit a
    /// call request is stored and its id returned. Refused outright (`ForbiddenCall`): calls to
    /// the vault itself, to a token in the vault's registry, and the selectors that move tokens
    /// around a budget (ERC-20 transfer/approve/transferFrom/permit/increaseAllowance, ERC-721/1155
    /// transfers and approvals, ERC-677 transferAndCall, ERC-777 send).
    function scopedCall(
        address target,
        uint256 value,
        bytes calldata data,
        address spendToken,
        uint256 spendAmount,
        bytes32 ref
    ) external returns (uint256 requestId);
}
