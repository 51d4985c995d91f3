import re

from topcoins.dev_summary import DevFacts, summary_lines

SOURCES = {
    "coinmarketcap": {"poll_interval_seconds": 5.0, "stale_after_seconds": 25.0},
    "cryptocompare": {"poll_interval_seconds": 5.0, "stale_after_seconds": 25.0},
}


def facts(**changes) -> DevFacts:
    values = {
        "web_url": "http://localhost:6667",
        "bootstrap_servers": "127.0.0.1:40123",
        "broker": "tansu",
        "emulator_url": "http://127.0.0.1:6668",
        "sources": SOURCES,
    } | changes
    return DevFacts(**values)


def test_the_summary_says_where_to_look_how_to_consume_and_how_to_break_things():
    lines = summary_lines(facts())
    text = "\n".join(lines)
    assert lines[0] == "topcoins is serving at http://localhost:6667/?limit=200"
    assert "http://localhost:6667/status" in text
    assert "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:40123 " in text
    assert "coinmarketcap: every 5 s, stale after 25 s" in text
    assert "emulated" in text
    fail, restore = re.findall(r"curl -X POST (\S+) -d '([^']+)'", text)
    assert fail == (
        "http://127.0.0.1:6668/_emulator/faults",
        '{"provider": "coinmarketcap", "mode": "server_error"}',
    )
    assert restore[1] == '{"provider": "coinmarketcap", "mode": "none"}'
    assert all(len(line) <= 120 for line in lines if "curl" not in line)


def test_pages_the_web_serves_are_listed_and_others_are_not():
    assert "/openapi.json" not in "\n".join(summary_lines(facts()))
    text = "\n".join(summary_lines(facts(pages=["/openapi.json"])))
    assert "http://localhost:6667/openapi.json" in text
    assert "/dashboard" not in text


def test_real_providers_and_an_external_broker_are_named_as_such():
    text = "\n".join(summary_lines(facts(emulator_url=None, broker=None, sources={})))
    assert "_emulator" not in text and "emulated" not in text
    assert "real CoinMarketCap and CryptoCompare" in text
    assert "(your broker)" in text


def test_fault_examples_use_the_provider_the_emulator_stands_in_for():
    text = "\n".join(summary_lines(facts(emulated_provider="cryptocompare")))
    assert '{"provider": "cryptocompare", "mode": "none"}' in text
