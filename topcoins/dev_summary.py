"""What ``topcoins dev`` prints once its web service answers: where to look, and how to poke.

``summary_lines`` is pure (it formats what the caller read from the running stack), so the
text is tested without processes; ``topcoins.dev`` gathers the facts and prints it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["DevFacts", "summary_lines"]

# Pages a person can open, beyond the list itself, when the web service serves them.
OPTIONAL_PAGES = {
    "/dashboard": "the dashboard",
    "/openapi.json": "the API description (OpenAPI)",
}


@dataclass(frozen=True)
class DevFacts:
    """What the summary needs to know about one running ``topcoins dev``."""

    web_url: str
    bootstrap_servers: str
    broker: str | None  # 'tansu' / 'apache-kafka' when embedded, None when external
    emulator_url: str | None  # None when both providers are real
    sources: Mapping[str, Mapping[str, object]]  # /status "sources"
    pages: Sequence[str] = ()  # OPTIONAL_PAGES keys the web service answers
    emulated_provider: str = "coinmarketcap"  # the one the fault examples use


def _seconds(value: object) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"{value:g} s"


def _curl_fault(emulator_url: str, provider: str, mode: str) -> str:
    body = json.dumps({"provider": provider, "mode": mode})
    return f"curl -X POST {emulator_url}/_emulator/faults -d '{body}'"


def summary_lines(facts: DevFacts) -> list[str]:
    """The plain-text summary, one line per item; the first line names the list's URL."""
    web = facts.web_url
    pages = [
        ("/?limit=200", "the top list as JSON (&format=csv for CSV)"),
        ("/status", "each provider's freshness and last error"),
        *((page, OPTIONAL_PAGES.get(page, "")) for page in facts.pages),
    ]
    width = max(len(web + path) for path, _ in pages)
    lines = [f"topcoins is serving at {web}/?limit=200", ""]
    for index, (path, what) in enumerate(pages):
        label = "  open      " if index == 0 else " " * 12
        lines.append(f"{label}{web + path:<{width}}   {what}".rstrip())
    kafka_note = (
        f"embedded {facts.broker}: topics live only as long as this run"
        if facts.broker
        else "your broker"
    )
    lines += [
        f"  kafka     export KAFKA_BOOTSTRAP_SERVERS={facts.bootstrap_servers}   ({kafka_note})",
        "            python scripts/example_consumer.py --bootstrap $KAFKA_BOOTSTRAP_SERVERS",
    ]
    for provider, source in sorted(facts.sources.items()):
        lines.append(
            f"  polls     {provider}: every {_seconds(source.get('poll_interval_seconds'))}, "
            f"stale after {_seconds(source.get('stale_after_seconds'))}"
        )
    if facts.emulator_url:
        url = facts.emulator_url
        lines += [
            f"  emulator  {url}/_emulator/state   (the data is emulated, not real market data)",
            f"            fail:    {_curl_fault(url, facts.emulated_provider, 'server_error')}",
            f"            restore: {_curl_fault(url, facts.emulated_provider, 'none')}",
        ]
    else:
        lines.append("  providers real CoinMarketCap and CryptoCompare (your API keys)")
    lines += ["  stop      Ctrl-C", ""]
    return lines
