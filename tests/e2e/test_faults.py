"""Bad input from outside, end to end: provider faults, garbage on the input topics, odd
HTTP requests. Nothing bad is published or served, and the service recovers by itself."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import socket
import string
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from tests import wire
from tests.e2e.helpers import (
    DEPTH,
    assert_complete,
    change_a_price,
    emulator,
    log_entries,
    metric_value,
    pause_and_settle,
    produce,
    read_topic,
    rows_of,
    served_body,
    served_top,
    set_fault,
    topics,
    wait_until,
    wait_until_served,
)
from topcoins.brokers import free_port
from topcoins.dev import DevStack
from topcoins.schemas import codec
from topcoins.schemas.codec import MAGIC
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, utc_millis
from topcoins.schemas.topics import META_KEY
from topcoins.supervisor import Component

pytestmark = pytest.mark.e2e

CMC, CC = "coinmarketcap", "cryptocompare"
RECOVERY_DEADLINE_SECONDS = 30.0

# --- provider faults ---------------------------------------------------------------------

# Each provider goes through every failure mode, one phase each, both at the same time.
# CoinMarketCap's 429 says "retry at the next full minute" (Retry-After); its rate-limit
# phase comes last and ends just before a minute boundary, so that the producer may call
# again as soon as the faults are cleared.
PHASES = (
    # (coinmarketcap, cryptocompare)
    ("server_error", "rate_limit"),
    ("timeout", "server_error"),
    ("malformed", "timeout"),
    ("rate_limit", "malformed"),
)
MIN_PHASE_SECONDS = 4.0
END_BEFORE_MINUTE_SECONDS = 1.5
HTTP_TIMEOUT_SECONDS = 2
RETRY_ATTEMPTS = 3
POLL_SECONDS = 1.0
CC_CALLS_PER_SECOND = 5
CMC_CALLS_PER_MINUTE = 150
# Calls one poll may make: CryptoCompare pages until 200 distinct assets (2 pages, a third
# when duplicates straddle them); CoinMarketCap one listing page or two quotes batches.
PAGES_PER_POLL = {CMC: 2, CC: 3}
# The emulator records a call when its handler runs; scheduling delays on a busy machine
# may pull two calls that left a second apart a little closer together.
JITTER_SECONDS = 0.25


def fault_window_end(now: float) -> float:
    """When the last phase ends: just before a minute boundary, all phases fitting in."""
    boundary = math.ceil(now / 60) * 60
    while boundary - END_BEFORE_MINUTE_SECONDS - now < len(PHASES) * MIN_PHASE_SECONDS:
        boundary += 60
    return boundary - END_BEFORE_MINUTE_SECONDS


def call_times(stack: DevStack, provider: str) -> list[float]:
    """Unix times of every call the emulator received for ``provider`` (all endpoints)."""
    calls = emulator(stack, "calls")[provider]
    return sorted(t for endpoint in calls.values() for t in endpoint["recent"])


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The largest number of ``times`` inside any window of ``seconds``."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def fault_stack(stack_factory, **env: str) -> DevStack:
    stack = stack_factory(
        HTTP_TIMEOUT_SECONDS=str(HTTP_TIMEOUT_SECONDS),
        PRODUCER_RETRY_ATTEMPTS=str(RETRY_ATTEMPTS),
        CRYPTOCOMPARE_CALLS_PER_SECOND=str(CC_CALLS_PER_SECOND),
        CMC_CALLS_PER_MINUTE=str(CMC_CALLS_PER_MINUTE),
        **env,
    )
    assert stack.wait_ready(120), "the web service did not become ready within 120 s"
    return stack


def test_provider_faults_publish_and_serve_nothing_bad_and_the_service_recovers(stack_factory):
    stack = fault_stack(stack_factory)
    good = pause_and_settle(stack)
    state = emulator(stack, "state")
    httpx.delete(f"{stack.emulator_url}/_emulator/calls", timeout=10).raise_for_status()

    started = time.time()
    end = fault_window_end(started)
    phase_seconds = (end - started) / len(PHASES)
    # provider -> (before its fault was set, after it was set, after it was cleared)
    rate_limited: dict[str, tuple[float, float, float]] = {}
    answers = 0
    for index, modes in enumerate(PHASES):
        phase_end = started + (index + 1) * phase_seconds
        setting = time.time()
        for provider, mode in zip((CMC, CC), modes, strict=True):
            set_fault(stack, provider, mode, delay=HTTP_TIMEOUT_SECONDS + 3)
        set_at = time.time()
        # The last good list stays served, whole, through every phase.
        while time.time() < phase_end:
            assert served_top(stack) == good
            answers += 1
            time.sleep(0.25)
        for provider, mode in zip((CMC, CC), modes, strict=True):
            if mode == "rate_limit":
                rate_limited[provider] = (setting, set_at, time.time())
    set_fault(stack, "both", "none")
    cleared = time.time()
    assert answers > 10
    assert not stack.supervisor.exited(), "a component died during the outage"

    # Fresh data flows again: a price change shows within the deadline.
    symbol, truth = change_a_price(stack, 4321.5)
    took = wait_until_served(stack, lambda served: served == truth, RECOVERY_DEADLINE_SECONDS)
    assert_complete(served_top(stack))

    # The producers kept to their limits while they retried.
    outage = cleared - started
    for provider, poll_pages in PAGES_PER_POLL.items():
        times = [t for t in call_times(stack, provider) if started <= t <= cleared]
        assert times, f"{provider} was not called during the outage"
        most = (outage / POLL_SECONDS + 2) * RETRY_ATTEMPTS * poll_pages
        assert len(times) <= most, (provider, len(times), outage)
    cc_times = call_times(stack, CC)
    assert most_in_any_window(cc_times, 1.0 - JITTER_SECONDS) <= CC_CALLS_PER_SECOND
    cmc_times = call_times(stack, CMC)
    assert most_in_any_window(cmc_times, 60.0 - JITTER_SECONDS) <= CMC_CALLS_PER_MINUTE
    # After a 429 whose Retry-After points at the next minute, no call before that minute.
    # A call made while the fault was being set may have got the 429 (and then the producer
    # rightly waits for the next minute) or the previous phase's answer (then the next call
    # gets the 429): both count, and only in the second case may one more call follow it.
    setting, set_at, cleared_at = rate_limited[CMC]
    limited = [t for t in cmc_times if setting < t < cleared_at]
    assert limited, "CoinMarketCap was not called during its rate-limit phase"
    retry_at = math.ceil(limited[0] / 60) * 60
    early = [t for t in cmc_times if limited[0] < t < retry_at - JITTER_SECONDS]
    if limited[0] <= set_at:
        early = early[1:]
    assert not early, f"{len(early)} CoinMarketCap calls before the Retry-After time"

    # The raw topics hold only whole, valid snapshots with the emulator's data.
    check_raw_topics(stack, state, since=started, changed=(symbol, 4321.5))
    print(f"outage {outage:.1f} s, price change served {took:.1f} s after it was made")


def check_raw_topics(
    stack: DevStack, state: dict, since: float, changed: tuple[str, float]
) -> None:
    """Every message decodes to its topic's record; those fetched since ``since`` match the
    emulator's (paused) truth, apart from the one ``changed`` price."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    names = topics(stack)
    ranked = state["ranking"][:DEPTH]
    ranked_symbols = [item["symbol"] for item in ranked]
    prices = {item["cmc_id"]: state["prices"].get(str(item["cmc_id"])) for item in ranked}
    prices.pop(None, None)
    changed_id = next(item["cmc_id"] for item in ranked if item["symbol"] == changed[0])
    recent = 0
    for message in read_topic(bootstrap, names.ranks.name):
        snapshot = codec.decode_as(RankingSnapshot, message.value)
        distinct = {asset.symbol for asset in snapshot.assets}
        assert len(distinct) >= DEPTH, (message.offset, len(distinct))
        if snapshot.fetched_at.timestamp() >= since:
            recent += 1
            assert [a.symbol for a in snapshot.assets][:DEPTH] == ranked_symbols, message.offset
    assert recent > 0
    listed = min(stack.settings.pricing_depth, len(state["listings"]))
    recent = 0
    for message in read_topic(bootstrap, names.prices.name):
        snapshot = codec.decode_as(PriceSnapshot, message.value)
        assert len(snapshot.quotes) == listed, (message.offset, len(snapshot.quotes))
        if snapshot.fetched_at.timestamp() < since:
            continue
        recent += 1
        quoted = {quote.cmc_id: quote.price_usd for quote in snapshot.quotes}
        for cmc_id, price in prices.items():
            allowed = {price, changed[1]} if cmc_id == changed_id else {price}
            assert quoted.get(cmc_id) in allowed, (message.offset, cmc_id, quoted.get(cmc_id))
    assert recent > 0


def test_the_served_list_is_flagged_stale_during_a_long_outage(stack_factory):
    stack = fault_stack(stack_factory, STALE_AFTER_SECONDS="3")
    good = pause_and_settle(stack)
    fresh, _ = wait_until(
        lambda: served_body(stack)["meta"], lambda meta: meta.get("stale") is False, 10, "fresh"
    )
    set_fault(stack, "both", "server_error")
    outage = time.monotonic()
    stale_meta, took = wait_until(
        lambda: served_body(stack)["meta"],
        lambda meta: meta.get("stale") is True,
        20,
        "the stale flag during the outage",
    )
    body = served_body(stack)
    assert rows_of(body) == good  # still the last good list
    set_fault(stack, "both", "none")
    wait_until(
        lambda: served_body(stack)["meta"],
        lambda meta: meta.get("stale") is False,
        RECOVERY_DEADLINE_SECONDS,
        "fresh again after the outage",
    )
    print(f"stale after {took:.1f} s of {time.monotonic() - outage:.1f} s: {stale_meta}; {fresh}")


# --- garbage on the topics --------------------------------------------------------------

# Strings of 10 MB where the broker takes them (Tansu does); Apache Kafka refuses a record
# batch over ``message.max.bytes`` (1048588 bytes by default, and topcoins sets no topic
# override), so there they are 900 KB.
LARGE_TEXT_BYTES = {"tansu": 10_000_000, "apache-kafka": 900_000}
FAR_FUTURE_MS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)  # in range


def bad_values(kind: str, key: str, valid: bytes, broker_kind: str) -> dict[str, bytes]:
    """Every kind of unusable value for a topic whose records are ``kind``, made from a
    ``valid`` message of that topic."""
    large = LARGE_TEXT_BYTES.get(broker_kind, LARGE_TEXT_BYTES["apache-kafka"])
    return {
        "truncated": valid[: len(valid) // 2],
        "header only": valid[:10],
        "wrong marker": b"\xc3\x02" + valid[2:],
        "unknown fingerprint": wire.unknown_fingerprint(kind, key),
        "out-of-range timestamp": wire.out_of_range(kind, key),
        "large string, out-of-range timestamp": wire.out_of_range(kind, key, text="x" * large),
    }


def test_the_worker_skips_counts_and_logs_malformed_input_messages(broker, stack):
    good = pause_and_settle(stack)
    bootstrap = stack.settings.kafka_bootstrap_servers
    names = topics(stack)
    a_ranking = read_topic(bootstrap, names.ranks.name)[-1].value
    a_price_snapshot = read_topic(bootstrap, names.prices.name)[-1].value
    assert a_ranking is not None and a_price_snapshot is not None
    unknown_schema = MAGIC + bytes(8) + a_ranking[10:]

    def garbage(kind: str, valid: bytes, other_kind: bytes) -> list[tuple[bytes | None, str]]:
        return [
            (b"garbage", "undecodable"),
            (b"", "undecodable"),
            (unknown_schema, "undecodable"),
            *(
                (value, "undecodable")
                for value in bad_values(kind, "x", valid, broker.kind).values()
            ),
            (other_kind, "wrong_type"),  # a valid record of the other topic's type
        ]

    cases = {
        (names.ranks.name, b"cryptocompare"): garbage("ranking", a_ranking, a_price_snapshot),
        (names.prices.name, b"coinmarketcap"): garbage("prices", a_price_snapshot, a_ranking),
    }
    worker_port = stack.settings.worker_ops_port
    written: dict[tuple[str, int], str] = {}
    for (topic, key), messages in cases.items():
        offsets = produce(bootstrap, topic, [(key, value) for value, _ in messages])
        written |= {
            (topic, offset): reason for offset, (_, reason) in zip(offsets, messages, strict=True)
        }

    # Counted per topic and reason.
    for (topic, _), messages in cases.items():
        for reason in ("undecodable", "wrong_type"):
            want = sum(1 for _, r in messages if r == reason)
            wait_until(
                lambda topic=topic, reason=reason: metric_value(
                    worker_port,
                    "topcoins_worker_skipped_messages_total",
                    topic=topic,
                    reason=reason,
                ),
                lambda seen, want=want: seen >= want,
                30,
                f"skipped-messages counter for {topic} {reason}",
            )
            seen = metric_value(
                worker_port, "topcoins_worker_skipped_messages_total", topic=topic, reason=reason
            )
            assert seen == want, (topic, reason, seen)

    # Logged with topic, partition and offset.
    logged = {
        (entry.get("topic"), entry.get("offset")): entry
        for entry in log_entries(stack, "worker")
        if entry.get("reason") in ("undecodable", "wrong_type")
    }
    for (topic, offset), reason in written.items():
        entry = logged.get((topic, offset))
        assert entry is not None, f"no log line for the bad message at {topic} offset {offset}"
        assert entry["partition"] == 0 and entry["reason"] == reason, entry
        assert entry["level"] == "warning", entry

    # The worker goes on: the list stayed whole.
    assert served_top(stack) == good
    # GET /?at= over the bad messages answers from the last valid snapshots before them.
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    response = httpx.get(f"{stack.web_url}/", params={"at": at, "limit": DEPTH}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert rows_of(response.json()) == good

    check_unusable_prices_are_served_as_unknown(stack, good)

    # A later price change is served.
    _, truth = change_a_price(stack, 777.25)
    wait_until_served(stack, lambda served: served == truth, RECOVERY_DEADLINE_SECONDS)
    assert not stack.supervisor.exited()


def last_price_snapshot(messages: list) -> PriceSnapshot:
    """The newest message that is a price snapshot (the bad ones written before it are not)."""
    for message in reversed(messages):
        try:
            return codec.decode_as(PriceSnapshot, message.value)
        except codec.DecodeError:
            continue
    raise AssertionError("no price snapshot on the prices topic")


def check_unusable_prices_are_served_as_unknown(stack: DevStack, good: list) -> None:
    """A valid price snapshot with NaN, negative and zero prices: those assets are served
    with a null price (never NaN, negative or 0), the rest as before; the producer's next
    snapshot restores them."""
    bootstrap = stack.settings.kafka_bootstrap_servers
    prices_topic = topics(stack).prices.name
    latest = last_price_snapshot(read_topic(bootstrap, prices_topic))
    priced = [(symbol, price) for _, symbol, price in good[:10] if price is not None]
    bad_prices = dict(zip((s for s, _ in priced), (math.nan, -1.0, 0.0), strict=False))
    quotes = tuple(
        dataclasses.replace(q, price_usd=bad_prices[q.symbol]) if q.symbol in bad_prices else q
        for q in latest.quotes
    )
    # Ahead of the producer's next snapshots for a few seconds, so it is in force a while.
    ahead = utc_millis(datetime.now(UTC) + timedelta(seconds=6))
    bad = dataclasses.replace(latest, snapshot_id="e2e-bad-prices", fetched_at=ahead, quotes=quotes)
    produce(bootstrap, prices_topic, [(b"coinmarketcap", codec.encode(bad))])
    want = [(r, s, None if s in bad_prices else p) for r, s, p in good]
    wait_until_served(stack, lambda served: served == want, RECOVERY_DEADLINE_SECONDS)
    wait_until_served(stack, lambda served: served == good, RECOVERY_DEADLINE_SECONDS)


def test_the_web_and_the_pricing_producer_skip_bad_top_and_status_messages(broker, stack):
    good = pause_and_settle(stack)
    bootstrap = stack.settings.kafka_bootstrap_servers
    names = topics(stack)
    row = next(m for m in read_topic(bootstrap, names.top.name) if m.key != META_KEY.encode())
    a_status = read_topic(bootstrap, names.status.name)[-1]
    assert row.key is not None and row.value is not None and a_status.value is not None
    top_bad = [
        (row.key, v)
        for v in bad_values("top_coin", row.key.decode(), row.value, broker.kind).values()
    ]
    top_bad.append((META_KEY.encode(), wire.out_of_range("top_list_meta")))
    status_bad = [
        (a_status.key, v) for v in bad_values("status", CMC, a_status.value, broker.kind).values()
    ]
    # Valid, but attempted in 9999: held, it would hide every later status of the provider.
    status_bad.append((a_status.key, wire.out_of_range("status", CMC, millis=FAR_FUTURE_MS)))
    written = {
        names.top.name: produce(bootstrap, names.top.name, top_bad),
        names.status.name: produce(bootstrap, names.status.name, status_bad),
    }
    web = stack.settings.web_port
    pricing = stack.settings.pricing_ops_port
    counters = (
        (web, "topcoins_web_skipped_messages_total", {}, len(top_bad)),
        (web, "topcoins_web_skipped_status_messages_total", {}, len(status_bad)),
        (pricing, "topcoins_producer_skipped_messages_total", {"provider": CMC}, len(top_bad)),
    )
    for port, name, labels, want in counters:
        seen, _ = wait_until(
            lambda port=port, name=name, labels=labels: metric_value(port, name, **labels),
            lambda seen, want=want: seen >= want,
            30,
            name,
        )
        assert seen == want, (name, seen, want)

    # Logged with topic, partition and offset.
    logged = {
        (entry.get("topic"), entry.get("offset"))
        for entry in log_entries(stack, "web")
        if entry.get("msg") in ("skipped a message", "skipped a status message")
    }
    for topic, offsets in written.items():
        for offset in offsets:
            assert (topic, offset) in logged, f"no log line for {topic} offset {offset}"

    # The last good list is still served, nothing is stuck, and the next good data arrives.
    assert served_top(stack) == good
    ready = httpx.get(f"{stack.web_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["stuck_consumers"] == {}, ready.text
    attempted = httpx.get(f"{stack.web_url}/status", timeout=10).json()["sources"]
    wait_until(
        lambda: httpx.get(f"{stack.web_url}/status", timeout=10).json()["sources"],
        lambda now: all(
            now[p]["last_attempt_at"] > attempted[p]["last_attempt_at"] for p in (CMC, CC)
        ),
        RECOVERY_DEADLINE_SECONDS,
        "a newer status from both producers",
    )
    _, truth = change_a_price(stack, 555.5)
    wait_until_served(stack, lambda served: served == truth, RECOVERY_DEADLINE_SECONDS)

    # A replica started now reads past the bad messages and becomes ready with the list.
    port = free_port()
    web2 = f"http://127.0.0.1:{port}"
    stack.supervisor.start(Component("web2", "web", {"WEB_PORT": str(port)}, f"{web2}/healthz"))
    wait_until(
        lambda: httpx.get(f"{web2}/readyz", timeout=5).status_code,
        lambda status: status == 200,
        60,
        "the readiness of a replica started after the bad messages",
    )
    assert rows_of(httpx.get(f"{web2}/?limit={DEPTH}", timeout=10).json()) == truth
    assert metric_value(port, "topcoins_web_skipped_messages_total") == len(top_bad)

    check_a_replica_without_topics_waits_and_creates_none(stack)
    assert not stack.supervisor.exited()


def check_a_replica_without_topics_waits_and_creates_none(stack: DevStack) -> None:
    """Missing topics: the replica answers, says it is not ready and why, and never
    auto-creates a topic (the worker and the producers create them with their settings)."""
    prefix = f"e2e-missing-{int(time.time() * 1000)}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"WEB_PORT": str(port), "TOPIC_PREFIX": prefix}
    stack.supervisor.start(Component("lonely-web", "web", env, f"{url}/healthz"))
    response, _ = wait_until(
        lambda: httpx.get(f"{url}/readyz", timeout=5),
        lambda answer: answer.status_code == 503,
        60,
        "the lonely replica's /readyz",
    )
    assert "no top list has been received" in response.json()["detail"]
    assert httpx.get(f"{url}/?limit=5", timeout=5).status_code == 503
    sources = httpx.get(f"{url}/status", timeout=5).json()["sources"]
    assert {item["status"] for item in sources.values()} == {"unknown"}
    time.sleep(2)  # a few more of its topic checks
    created = asyncio.run(list_topics(stack.settings.kafka_bootstrap_servers))
    assert not [name for name in created if name.startswith(prefix)], created


async def list_topics(bootstrap_servers: str) -> set[str]:
    """Every topic the broker has (a metadata request for all topics creates none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        return await consumer.topics()
    finally:
        await consumer.stop()


# --- odd HTTP requests -------------------------------------------------------------------

REQUESTS = 300
ODD_PATHS = (
    "/",
    "//",
    "/?",
    "/?limit=",
    "/?limit=abc",
    "/?limit=-1",
    "/?limit=0",
    "/?limit=1e3",
    "/?limit=2.5",
    "/?limit=99999999999999999999999",
    "/?limit=%FF%FE",
    "/?limit=%00",
    "/?limit=1&limit=2",
    "/?format=xml",
    "/?format=",
    "/?format=CSV&limit=5",
    "/?limit=5&format=json&format=csv",
    "/?%zz=1",
    "/?=&&&=",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/../../etc/passwd",
    "/index.html",
    "/readyz/extra",
    "/metrics?format=json",
    "/diagnostics?limit=abc",
    "/status?x=%ZZ",
    "/version/..",
    "/\u00e9\u4e2d\u6587",
    "/" + "a" * 4000,
    "/?limit=" + "9" * 3000,
    "/?" + "&".join(f"k{i}=v{i}" for i in range(500)),
)
METHODS = ("GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
ODD_HEADERS = (
    {"Accept": "text/csv"},
    {"Accept": "application/xml"},
    {"Accept": "*/*;q=abc"},
    {"Accept": ",,,;;;"},
    {"Accept": "text/csv;q=0, application/json;q=0"},
    {"If-None-Match": "garbage"},
    {"If-None-Match": '"unterminated'},
    {"If-None-Match": "*"},
    {"If-None-Match": ", ".join(['W/"x"'] * 200)},
    {"Range": "bytes=0-10"},
    {"Accept-Encoding": "gzip;q=oops"},
    {"Content-Type": "application/json"},
    {"X-Forwarded-For": "not-an-ip"},
    {"Host": "example.invalid"},
    {"Accept": "a" * 6000},
)


def random_requests(seed: int, count: int) -> Iterator[tuple[str, str, dict[str, str], bytes]]:
    """``count`` (method, path, headers, body) tuples, reproducible from ``seed``."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-._~%/?&=;+,!$'()*:@ "
    for _ in range(count):
        method = rng.choice(METHODS)
        if rng.random() < 0.5:
            path = rng.choice(ODD_PATHS)
        else:
            tail = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            path = "/" + tail.replace(" ", "%20")
        headers: dict[str, str] = {}
        for _ in range(rng.randint(0, 3)):
            headers |= rng.choice(ODD_HEADERS)
        body = rng.randbytes(rng.randint(0, 64)) if method in ("POST", "PUT", "PATCH") else b""
        yield method, path, headers, body


RAW_REQUESTS = (
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNo-Colon-Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /\x00\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n",
    b"GET /?limit=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nAccept: \xff\xfe\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the plain port
)


def raw_status(port: int, request: bytes) -> int | None:
    """Send raw bytes; the status code of the answer, or None if the server just closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return None
    if not answer:
        return None
    status_line = answer.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None


def check_answer(response: httpx.Response, where: str) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    content_type = response.headers.get("content-type", "")
    if response.request.method == "HEAD":
        return
    if content_type.startswith("application/json"):
        body = json.loads(response.content)  # raises if the body is not well-formed JSON
        if response.status_code >= 400:
            assert set(body) >= {"error", "detail"}, f"{where}: {body}"
    elif content_type.startswith("text/"):
        response.content.decode("utf-8")  # raises if the text is not UTF-8


def test_odd_http_requests_never_get_a_server_error(stack):
    good = served_top(stack)
    assert_complete(good)
    with httpx.Client(base_url=stack.web_url, timeout=10) as client:
        for number, (method, path, headers, body) in enumerate(random_requests(2024, REQUESTS)):
            response = client.request(method, path, headers=headers, content=body or None)
            check_answer(response, f"request {number}: {method} {path[:80]} {headers}")
    port = stack.settings.web_port
    for request in RAW_REQUESTS:
        status = raw_status(port, request)
        assert status is None or status < 500, (request[:60], status)
    # Still healthy and serving the whole list.
    assert httpx.get(f"{stack.web_url}/healthz", timeout=10).status_code == 200
    assert_complete(served_top(stack))
    assert not stack.supervisor.exited()
