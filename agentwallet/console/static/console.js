// agentwallet console: the owner's browser wallet (EIP-1193, window.ethereum) does every
// signature; the server only builds what is signed (with the agentwallet SDK) and checks it.
// Before asking the wallet for anything the page checks the wallet's chain, fetches the
// transaction or typed data from the server (which refuses a request that is no longer pending
// or an account that is not an owner), and shows the table of what will be signed.

const body = document.body;
const vaultName = body.dataset.vault;
const expectedChain = Number(body.dataset.chainId);
const messageBox = document.getElementById("message");
const statusBox = document.getElementById("wallet-status");
let account = null;

class Refused extends Error {}

function show(text, kind = "info") {
  messageBox.hidden = false;
  messageBox.className = kind;
  messageBox.textContent = text;
}

function showAfterReload(text, kind = "ok") {
  sessionStorage.setItem("agentwallet-message", JSON.stringify({ text, kind }));
  window.location.reload();
}

function wallet() {
  if (!window.ethereum || typeof window.ethereum.request !== "function") {
    throw new Refused(
      "No browser wallet found (window.ethereum): install or unlock a wallet such as MetaMask, " +
        "then reload this page.",
    );
  }
  return window.ethereum;
}

async function api(path, payload) {
  const options = payload === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) {
    throw new Refused(data.error || `the server answered ${response.status}`);
  }
  return data;
}

async function checkChain() {
  const id = Number.parseInt(await wallet().request({ method: "eth_chainId" }), 16);
  if (id !== expectedChain) {
    throw new Refused(
      `Wrong network: your wallet is on chain ${id}, this vault is on chain ${expectedChain}. ` +
        `Switch the wallet to chain ${expectedChain} and try again. Nothing was signed.`,
    );
  }
}

async function connect() {
  const accounts = await wallet().request({ method: "eth_requestAccounts" });
  if (!accounts || accounts.length === 0) {
    throw new Refused("The wallet shared no account: unlock it and connect again.");
  }
  account = accounts[0];
  await checkChain();
  const context = await api(`/api/vaults/${vaultName}/context`);
  const owner = context.owners.some((o) => o.toLowerCase() === account.toLowerCase());
  statusBox.textContent = `${account} · chain ${expectedChain} · ${owner ? "owner" : "not an owner"}`;
  statusBox.className = owner ? "owner" : "stranger";
  document.getElementById("connect").textContent = "Reconnect";
  sessionStorage.setItem("agentwallet-connected", "1");
  return account;
}

function ask(title, summary, rows, how) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-summary").textContent = summary;
  document.getElementById("confirm-how").textContent = how;
  const table = document.getElementById("confirm-table");
  table.replaceChildren(
    ...rows.map(([key, value]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = key;
      td.textContent = value;
      tr.append(th, td);
      return tr;
    }),
  );
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function waitForReceipt(hash) {
  for (let i = 0; i < 240; i += 1) {
    const { receipt } = await api(`/api/receipts/${hash}`);
    if (receipt) return receipt;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Refused(`transaction ${hash} is not mined after 2 minutes: check it in your wallet`);
}

async function sendPrepared(prepared, title) {
  const how =
    "Your wallet will ask you to send this transaction (eth_sendTransaction) from " +
    `${account} to the vault.`;
  if (!(await ask(title, prepared.summary, prepared.table, how))) {
    show("Cancelled: nothing was signed.");
    return;
  }
  await checkChain(); // the wallet may have switched networks while the dialog was open
  const tx = { ...prepared.tx, chainId: `0x${expectedChain.toString(16)}` };
  const hash = await wallet().request({ method: "eth_sendTransaction", params: [tx] });
  show(`Sent ${hash}; waiting for it to be mined…`);
  const receipt = await waitForReceipt(hash);
  if (receipt.status !== 1) {
    throw new Refused(`transaction ${hash} failed on-chain (status 0) in block ${receipt.block}`);
  }
  showAfterReload(`Done: ${prepared.summary} (tx ${hash}, block ${receipt.block}).`);
}

async function signApproval(id) {
  const typed = await api(`/api/vaults/${vaultName}/requests/${id}/typed-data`, { from: account });
  const how =
    "Your wallet will ask you to sign this EIP-712 message (eth_signTypedData_v4). Nothing is " +
    "sent on-chain: the console keeps the signature until the threshold is reached.";
  if (!(await ask("You are about to sign", typed.summary, typed.table, how))) {
    show("Cancelled: nothing was signed.");
    return;
  }
  await checkChain();
  const signature = await wallet().request({
    method: "eth_signTypedData_v4",
    params: [account, JSON.stringify(typed.typedData)],
  });
  const kept = await api(`/api/vaults/${vaultName}/requests/${id}/signatures`, {
    signature,
    signer: account,
  });
  showAfterReload(
    `Signature by ${kept.signer} kept: ${kept.signatures.length}/${kept.threshold} signatures ` +
      `for request #${id}.`,
  );
}

async function requestAction(id, action) {
  await connect();
  if (action === "sign") {
    await signApproval(id);
    return;
  }
  const prepared = await api(`/api/vaults/${vaultName}/requests/${id}/tx`, {
    action,
    from: account,
  });
  await sendPrepared(prepared, "You are about to send");
}

async function vaultAction(button) {
  await connect();
  const article = button.closest("[data-agent]");
  const row = button.closest("tr");
  const payload = { action: button.dataset.vaultAction, from: account };
  if (article) payload.agent = article.dataset.agent;
  if (button.dataset.token) payload.token = button.dataset.token;
  if (row && row.querySelector(".new-max")) {
    payload.max = row.querySelector(".new-max").value;
    payload.allowance = row.querySelector(".new-allowance").value;
  }
  const prepared = await api(`/api/vaults/${vaultName}/actions`, payload);
  await sendPrepared(prepared, "You are about to send");
}

function guarded(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (error) {
      const text = error instanceof Refused ? error.message : `The wallet refused: ${error.message || error}`;
      show(text, "error");
    }
  };
}

document.getElementById("connect").addEventListener("click", guarded(async () => {
  await connect();
  show(`Connected ${account}.`, "ok");
}));

for (const button of document.querySelectorAll("[data-request-id] [data-action]")) {
  const id = button.closest("[data-request-id]").dataset.requestId;
  button.addEventListener("click", guarded(() => requestAction(id, button.dataset.action)));
}
for (const button of document.querySelectorAll("[data-vault-action]")) {
  button.addEventListener("click", guarded(() => vaultAction(button)));
}
const select = document.getElementById("vault-select");
if (select) {
  select.addEventListener("change", () => {
    window.location.href = `/vaults/${select.value}/requests`;
  });
}

const saved = sessionStorage.getItem("agentwallet-message");
if (saved) {
  sessionStorage.removeItem("agentwallet-message");
  const { text, kind } = JSON.parse(saved);
  show(text, kind);
}
if (sessionStorage.getItem("agentwallet-connected") && window.ethereum) {
  guarded(connect)();
}
body.dataset.ready = "1";
