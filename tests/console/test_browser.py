"""The console in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against anvil. The page's wallet is an EIP-1193 provider
injected before the page's scripts (``Page.addScriptToEvaluateOnNewDocument``) that forwards
``request({method, params})`` to anvil's JSON-RPC, where the vault's owners are anvil's unlocked
dev accounts: anvil itself signs ``eth_sendTransaction`` and ``eth_signTypedData_v4``.

Set ``AGENTWALLET_CONSOLE_SCREENSHOT=docs/console.png`` to write the requests page's screenshot
there (docs/console.md shows it)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentwallet.chain.node import AnvilProcess, free_port
from agentwallet.console import BackgroundServer, create_app
from tests.console.conftest import USDC, escalate, make_console
from tests.sdk.conftest import World

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="the browser tests need Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver; .ci/run installs them)",
    ),
]

#: The injected wallet: every call is recorded in window.__walletCalls; the account is the one
#: in localStorage "__testAccount" (so a test switches owners), the chain id may be overridden.
PROVIDER = """
(() => {
  const cfg = %s;
  window.__walletCalls = [];
  let id = 0;
  async function rpc(method, params) {
    const response = await fetch(cfg.rpc, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: ++id, method, params: params || []}),
    });
    const answer = await response.json();
    if (answer.error) {
      const e = new Error(answer.error.message);
      e.code = answer.error.code;
      throw e;
    }
    return answer.result;
  }
  window.ethereum = {
    async request({method, params}) {
      window.__walletCalls.push({method, params: params || []});
      const account = localStorage.getItem("__testAccount").toLowerCase(); // as MetaMask answers
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method === "eth_chainId" && cfg.chainId) return cfg.chainId;
      return rpc(method, params);
    },
    on() {},
    removeListener() {},
  };
})();
"""

SIGNING = {"eth_sendTransaction", "eth_signTypedData_v4"}


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


class Page:
    """The console served for one test, and the browser pointed at it with a wallet."""

    def __init__(self, driver: Any, url: str, world: World, rpc: str) -> None:
        self.driver, self.url, self.world, self.rpc = driver, url, world, rpc
        self._script: str | None = None

    def wallet(self, account: str, chain_id: str | None = None) -> None:
        """Install the injected wallet for the next page loads, on ``account``."""
        if self._script is not None:
            self.driver.execute_cdp_cmd(
                "Page.removeScriptToEvaluateOnNewDocument", {"identifier": self._script}
            )
        source = PROVIDER % json.dumps({"rpc": self.rpc, "chainId": chain_id})
        self._script = self.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": source}
        )["identifier"]
        self.open("/")
        self.driver.execute_script("localStorage.setItem('__testAccount', arguments[0])", account)

    def as_owner(self, account: str) -> None:
        self.driver.execute_script("localStorage.setItem('__testAccount', arguments[0])", account)

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)
        self.wait(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))

    def wait(self, condition: Any, timeout: float = 30) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def confirm(self) -> str:
        """Wait for the "you are about to sign" dialog, return its text, confirm it."""
        self.wait(lambda d: d.execute_script("return document.getElementById('confirm').open"))
        shown = self.text("#confirm")
        self.clear_message()  # what follows is this action's message, not the last one's
        self.click("#confirm-ok")
        return shown

    def message(self, contains: str) -> str:
        """Wait for the page's message to contain ``contains``; return it."""
        script = (
            "const m = document.getElementById('message'); return m.hidden ? '' : m.textContent"
        )
        text: str = self.wait(lambda d: (t := d.execute_script(script)) and contains in t and t)
        return text

    def clear_message(self) -> None:
        self.driver.execute_script("document.getElementById('message').hidden = true")

    def wallet_calls(self) -> list[str]:
        return [c["method"] for c in self.driver.execute_script("return window.__walletCalls")]


@pytest.fixture
def page(
    driver: Any, aworld_console: World, anvil_node: AnvilProcess, tmp_path: Path
) -> Iterator[Page]:
    console = make_console(aworld_console, tmp_path)
    with BackgroundServer(create_app(console), free_port()) as server:
        yield Page(driver, server.url, aworld_console, anvil_node.url)
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")


def test_two_owners_approve_in_the_browser_and_the_payment_executes(page: Page) -> None:
    world = page.world
    alice, bob = world.owners[0].address, world.owners[1].address
    rid = escalate(world, ref="inv-2026-0042")  # the agent, from the SDK
    page.wallet(alice)
    page.open("/vaults/test/requests")
    card = f"#request-{rid}"
    assert "wants to pay 250 tUSDC to acme-hotels" in page.text(card)
    # alice approves on-chain: the page shows the table, her wallet sends the transaction
    page.click(f"{card} [data-action=approve]")
    shown = page.confirm()
    assert "250 tUSDC" in shown and "inv-2026-0042" in shown and "acme-hotels" in shown
    page.message("Done")
    assert world.vault.request(rid).approvals == (alice,)
    assert "1/2 on-chain: alice" in page.text(card)
    # bob signs off-chain: anvil signs the typed data the server gave; the server verifies it
    page.as_owner(bob)
    page.click(f"{card} [data-action=sign]")
    assert "250 tUSDC" in page.confirm()
    page.message("Signature by")
    assert "1/2 off-chain: bob" in page.text(card)
    assert "add up" in page.text(card)
    shot = os.environ.get("AGENTWALLET_CONSOLE_SCREENSHOT")
    if shot:  # the requests page with one approval on-chain and one signature
        page.driver.execute_script("document.getElementById('message').hidden = true")
        page.driver.save_screenshot(shot)
    # alice's on-chain approval and bob's signature add up (issue 15): bob executes the mix
    before = world.vault.balance("tUSDC")
    page.as_owner(bob)
    page.click(f"{card} [data-action=executeWithSignatures]")
    page.confirm()
    page.message("Done")
    assert world.vault.request(rid).status == "executed"
    assert world.vault.balance("tUSDC") == before - 250 * USDC
    assert not page.driver.find_elements("css selector", card)
    # and the trail shows it, with its ref
    page.open("/vaults/test/audit")
    trail = page.text("#trail")
    assert "PaymentExecuted" in trail and "inv-2026-0042" in trail


def test_an_owner_rejects_in_the_browser(page: Page) -> None:
    world = page.world
    rid = escalate(world, 300 * USDC, ref="inv-9")
    page.wallet(world.owners[2].address)
    page.open("/vaults/test/requests")
    page.click(f"#request-{rid} [data-action=reject]")
    assert "300 tUSDC" in page.confirm()
    page.message("Done")
    assert world.vault.request(rid).status == "rejected"
    assert not page.driver.find_elements("css selector", f"#request-{rid}")


def test_an_owner_pauses_the_vault_in_the_browser(page: Page) -> None:
    world = page.world
    page.wallet(world.owners[1].address)
    page.open("/vaults/test/state")
    assert page.text("#vault-status") == "active"
    page.click("[data-vault-action=pause]")
    assert "pause the whole vault" in page.confirm()
    page.message("Done")
    assert world.vault.paused()
    assert page.text("#vault-status") == "paused"


def test_an_owner_lowers_a_limit_and_pauses_an_agent_in_the_browser(page: Page) -> None:
    world = page.world
    agent = world.agent.address
    page.wallet(world.owners[2].address)
    page.open("/vaults/test/state")
    card = f"#agent-{agent}"
    row = f"{card} tr:has(button[data-token='{world.usdc.address}'])"
    page.driver.find_element("css selector", f"{row} .new-max").clear()
    page.driver.find_element("css selector", f"{row} .new-max").send_keys("40")
    page.click(f"{row} [data-vault-action=reduceLimits]")
    assert "100 → 40 tUSDC" in page.confirm()
    page.message("Done")
    assert world.vault.policy(agent, "tUSDC").max_per_payment == 40 * USDC
    page.click(f"{card} [data-vault-action=pauseAgent]")
    assert "pause this agent" in page.confirm()
    page.message("Done")
    assert world.vault.agent(agent).status == "paused"
    assert "paused" in page.text(f"{card} h3")


def test_a_wallet_on_the_wrong_chain_is_refused(page: Page) -> None:
    world = page.world
    rid = escalate(world, ref="inv-wrong-chain")
    page.wallet(world.owners[0].address, chain_id="0x1")
    page.open("/vaults/test/requests")
    for action in ("approve", "sign"):
        page.clear_message()
        page.click(f"#request-{rid} [data-action={action}]")
        text = page.message("Wrong network")
        assert "chain 1" in text and "Nothing was signed" in text
    assert not SIGNING & set(page.wallet_calls())
    assert world.vault.request(rid).approvals == ()


def test_a_request_no_longer_pending_is_refused(page: Page) -> None:
    world = page.world
    rid = escalate(world, ref="inv-decided")
    page.wallet(world.owners[0].address)
    page.open("/vaults/test/requests")
    world.vault.reject(world.owners[2], rid)  # decided behind the page's back
    for action in ("sign", "approve"):
        page.clear_message()
        page.click(f"#request-{rid} [data-action={action}]")
        assert "rejected, not pending" in page.message("not pending")
    assert not SIGNING & set(page.wallet_calls())
