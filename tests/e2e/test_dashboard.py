"""``GET /dashboard`` in a real headless Chromium against the whole running service.

The page must load without a console error, show as many table rows as ``GET /`` serves in
the same order with the same values, draw one scatter point per asset with a market cap,
follow a new generation without a reload (the changed cell flashing), and show its banner
while a source is stale. Screenshots (desktop and phone) are kept in ``artifacts/``.
The page only reads the web service, so it runs on one broker kind.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import missing_tool
from tests.e2e.browser import Browser, chromium_path
from tests.e2e.helpers import CHANGE_DEADLINE_SECONDS, emulator, set_fault, wait_until

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
STALE_AFTER_SECONDS = 6

TABLE_JS = """Array.from(document.querySelectorAll('#market tbody tr')).map((tr) => [
  tr.cells[0].textContent, tr.dataset.symbol, tr.cells[3].title || null, tr.cells[6].title || null
])"""
POINTS_JS = "Array.from(document.querySelectorAll('#scatter .point'), (p) => p.dataset.symbol)"
BANNER_JS = (
    "(({hidden, textContent}) => hidden ? null : textContent)(document.getElementById('banner'))"
)
UNCOVERED_POINT_JS = """(() => {
  for (const circle of document.querySelectorAll('#scatter .point circle')) {
    circle.scrollIntoView({block: 'center'});
    const r = circle.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
    if (document.elementFromPoint(x, y) === circle) return [x, y, circle.parentNode.dataset.symbol];
  }
  return null;
})()"""
# Records every cell that got the "changed" flash, as [symbol, column index].
WATCH_FLASHES_JS = """window.__flashed = [];
new MutationObserver(() => {
  for (const td of document.querySelectorAll('#market tbody td.changed')) {
    window.__flashed.push([td.parentElement.dataset.symbol, td.cellIndex]);
  }
}).observe(document.querySelector('#market tbody'), {childList: true});
window.__sameDocument = true; true"""


@pytest.fixture
def browser(broker):
    """A headless Chromium; skipped on Apache Kafka (the page reads only the web service)."""
    if broker.kind == "apache-kafka":
        pytest.skip("the dashboard reads only the web service: one broker kind (tansu) suffices")
    binary = chromium_path()
    if binary is None:
        missing_tool("chromium", "apt-get install chromium (scripts/tools does)")
    with Browser(binary) as started:
        yield started


@pytest.fixture
def dashboard_stack(stack_factory):
    """The whole service, with sources stale after a few seconds so the banner shows soon."""
    started = stack_factory(STALE_AFTER_SECONDS=str(STALE_AFTER_SECONDS))
    assert started.wait_ready(120), "the web service did not become ready within 120 s"
    return started


def served(stack) -> list[dict]:
    response = httpx.get(f"{stack.web_url}/", timeout=10)
    assert response.status_code == 200
    return response.json()["data"]


def as_table(data: list[dict]) -> list[list]:
    """What the table must show for ``data``: rank, symbol, exact price, exact market cap."""
    return [[str(d["rank"]), d["symbol"], d["price_usd"], d["market_cap_usd"]] for d in data]


def table(browser: Browser) -> list[list]:
    rows = browser.evaluate(TABLE_JS)
    return [[rank, symbol, _number(price), _number(cap)] for rank, symbol, price, cap in rows]


def _number(title: str | None) -> float | None:
    return None if title is None else float(title)


def test_the_dashboard_follows_the_live_list(browser, dashboard_stack):
    stack = dashboard_stack
    emulator(stack, "pause", {})
    data, _ = wait_until(
        lambda: served(stack),
        lambda data: sum(d["market_cap_usd"] is not None for d in data) > 100,
        CHANGE_DEADLINE_SECONDS,
        "a served list with market caps",
    )
    meta = httpx.get(f"{stack.web_url}/", timeout=10).json()["meta"]
    at = max(meta["ranking_updated_at"], meta["prices_updated_at"])
    answer = httpx.get(f"{stack.web_url}/", params={"at": at}, timeout=10)
    assert answer.status_code == 200, answer.text
    history = answer.json()["data"]
    assert sum(d["market_cap_usd"] is not None for d in history) > 100, "GET /?at= has them"
    assert all("percent_change_24h" in d for d in history)

    browser.viewport(1280, 900)
    browser.navigate(f"{stack.web_url}/dashboard")
    assert browser.evaluate("document.querySelectorAll('#market thead th[scope=col]').length") == 7

    # The table holds what GET / serves, row for row (both settle on the paused emulator).
    wait_until(
        lambda: (table(browser), as_table(served(stack))),
        lambda pair: pair[0] == pair[1],
        CHANGE_DEADLINE_SECONDS,
        "the table equal to GET /",
    )
    data = served(stack)
    assert len(browser.evaluate(TABLE_JS)) == len(data) == 200
    points = browser.evaluate(POINTS_JS)
    assert sorted(points) == sorted(d["symbol"] for d in data if d["market_cap_usd"] is not None)
    browser.screenshot(ARTIFACTS / "dashboard.png")

    # Hovering a point (one not covered by another) shows its symbol.
    def hover() -> tuple[str, str]:
        x, y, symbol = browser.evaluate(UNCOVERED_POINT_JS)
        for at in ((0, 0), (x, y)):
            browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": at[0], "y": at[1]})
        return browser.evaluate("document.querySelector('#hover text').textContent"), symbol

    wait_until(hover, lambda shown: shown[0] == shown[1], 10, "the symbol of the hovered point")

    # A new generation reaches the open page: no reload, the changed price cell flashes.
    assert browser.evaluate(WATCH_FLASHES_JS) is True
    ranking = emulator(stack, "state")["ranking"]
    asset = next(item for item in ranking[5:] if item["cmc_id"] is not None)
    emulator(stack, "assets/price", {"cmc_id": asset["cmc_id"], "price_usd": 4321.125})
    wait_until(
        lambda: {row[1]: row[2] for row in table(browser)}.get(asset["symbol"]),
        lambda price: price == 4321.125,
        CHANGE_DEADLINE_SECONDS,
        f"the new price of {asset['symbol']} in the open page",
    )
    assert browser.evaluate("window.__sameDocument === true")
    assert [asset["symbol"], 3] in browser.evaluate("window.__flashed")

    # The banner shows while the prices are stale, and goes once they are fresh again.
    wait_until(lambda: browser.evaluate(BANNER_JS), lambda text: text is None, 30, "no banner")
    set_fault(stack, "coinmarketcap", "server_error")
    banner, _ = wait_until(
        lambda: browser.evaluate(BANNER_JS),
        lambda text: text is not None and "prices (CoinMarketCap" in text,
        STALE_AFTER_SECONDS + CHANGE_DEADLINE_SECONDS,
        "the stale banner",
    )
    assert "stale" in banner
    browser.screenshot(ARTIFACTS / "dashboard-stale.png")
    set_fault(stack, "coinmarketcap", "none")
    wait_until(lambda: browser.evaluate(BANNER_JS), lambda text: text is None, 30, "banner gone")

    browser.viewport(390, 844, mobile=True)
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    browser.screenshot(ARTIFACTS / "dashboard-phone.png")

    browser.evaluate("0")  # collect the last events
    assert browser.problems == []
