"""GET /metrics: request counts, replica figures, build info."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.web.conftest import ClientFactory
from tests.web.factories import BUILD, SAMPLE_ROWS, FakeHistory, join_of
from tests.web.fake_kafka import TOPICS
from tests.web.replicas import StaticReplica
from topcoins.history import HistoryStats
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.metrics import RequestCounter, WebMetrics
from topcoins.web.replica import TopListReplica
from topcoins.web.view import TopListView


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_are_counted_by_route_and_status(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    client = make_client(sample_view)
    client.get("/")
    etag = client.get("/").headers["etag"]
    client.get("/", headers={"If-None-Match": etag})
    client.get("/?limit=0")
    client.post("/")
    client.get("/nowhere")
    client.get("/healthz")
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    got = samples(response.text)

    def requests(route: str, status: str) -> float:
        return got[("topcoins_web_requests_total", (("route", route), ("status", status)))]

    assert requests("/", "200") == 2
    assert requests("/", "304") == 1
    assert requests("/", "400") == 1
    assert requests("/", "405") == 1
    assert requests("unmatched", "404") == 1
    assert requests("/healthz", "200") == 1


def test_replica_figures(sample_view: TopListView) -> None:
    replica = StaticReplica(sample_view)
    replica.stats.skipped_messages = 3
    replica.stats.incomplete_generations = 2
    replica.stats.messages_applied = 40
    replica.stats.lag = 7
    got = samples(WebMetrics(replica, BUILD).render().decode())

    assert got[("topcoins_web_generations_total", ())] == 1
    assert got[("topcoins_web_skipped_messages_total", ())] == 3
    assert got[("topcoins_web_incomplete_generations_total", ())] == 2
    assert got[("topcoins_web_messages_applied_total", ())] == 40
    assert got[("topcoins_web_replica_lag_messages", ())] == 7
    assert got[("topcoins_web_replica_running", ())] == 1
    assert got[("topcoins_web_ranked_assets", ())] == 5
    assert got[("topcoins_web_unmatched_assets", ())] == 1
    assert got[("topcoins_web_ranking_updated_timestamp_seconds", ())] == (
        sample_view.ranking_updated_at.timestamp()
    )
    assert got[("topcoins_web_prices_updated_timestamp_seconds", ())] == 1714564757.5
    assert got[("topcoins_web_last_generation_timestamp_seconds", ())] > 1.7e9
    labels = (
        ("build_time", BUILD.build_time),
        ("git_commit", BUILD.git_commit),
        ("version", "1.2.3"),
    )
    assert got[("topcoins_web_build_info", labels)] == 1
    assert any(name.startswith("process_") for name, _ in got)


def test_freshness_and_catch_up_figures(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    replica = StaticReplica(sample_view)
    replica.stats.status_messages_applied = 6
    replica.stats.skipped_status_messages = 1
    got = samples(make_client(replica, Settings(stale_after_seconds=60)).get("/metrics").text)
    assert got[("topcoins_web_replica_caught_up", ())] == 1
    assert got[("topcoins_web_status_messages_applied_total", ())] == 6
    assert got[("topcoins_web_skipped_status_messages_total", ())] == 1
    assert got[("topcoins_web_data_age_seconds", (("source", "ranking"),))] == 31
    assert got[("topcoins_web_data_age_seconds", (("source", "prices"),))] == 73
    assert got[("topcoins_web_data_stale", (("source", "ranking"),))] == 0
    assert got[("topcoins_web_data_stale", (("source", "prices"),))] == 1
    assert got[("topcoins_web_stale_after_seconds", (("source", "prices"),))] == 60


def test_freshness_without_data_is_stale_with_no_age(make_client: ClientFactory) -> None:
    got = samples(make_client(None).get("/metrics").text)
    assert got[("topcoins_web_replica_caught_up", ())] == 0
    assert got[("topcoins_web_data_stale", (("source", "prices"),))] == 1
    assert ("topcoins_web_data_age_seconds", (("source", "prices"),)) not in got


def test_figures_that_are_unknown_are_absent_not_zero() -> None:
    got = samples(WebMetrics(StaticReplica(running=False), BUILD).render().decode())
    assert got[("topcoins_web_replica_running", ())] == 0
    for name in (
        "topcoins_web_replica_lag_messages",
        "topcoins_web_last_generation_timestamp_seconds",
        "topcoins_web_ranking_updated_timestamp_seconds",
        "topcoins_web_ranked_assets",
    ):
        assert (name, ()) not in got


def test_each_app_has_its_own_registry(sample_view: TopListView) -> None:
    first = WebMetrics(StaticReplica(sample_view), BUILD)
    second = WebMetrics(StaticReplica(sample_view), BUILD)
    first.requests.inc("/", 200)
    assert b'route="/"' in first.render()
    assert b'route="/"' not in second.render()


def test_request_counter() -> None:
    counter = RequestCounter()
    counter.inc("/", 200)
    counter.inc("/", 200)
    counter.inc("/readyz", 503)
    assert counter.counts == {("/", 200): 2, ("/readyz", 503): 1}


def test_a_stuck_consumer_is_a_gauge_per_topic() -> None:
    healthy = samples(WebMetrics(TopListReplica(Settings(), TOPICS), BUILD).render().decode())
    assert healthy[("topcoins_web_consumer_stuck", (("topic", TOPICS.top.name),))] == 0
    assert healthy[("topcoins_web_consumer_stuck", (("topic", TOPICS.status.name),))] == 0
    stuck = StaticReplica(stuck={TOPICS.top.name: "3 failed attempts in a row"})
    got = samples(WebMetrics(stuck, BUILD).render().decode())
    assert got[("topcoins_web_consumer_stuck", (("topic", TOPICS.top.name),))] == 1


def test_request_durations_by_route(make_client: ClientFactory, sample_view: TopListView) -> None:
    client = make_client(sample_view)
    client.get("/")  # the fast path
    client.get("/?limit=0")  # a 400 through the routed stack
    client.get("/healthz")
    got = samples(client.get("/metrics").text)

    def count(route: str) -> float:
        name = "topcoins_web_request_duration_seconds_count"
        return got[(name, (("route", route),))]

    assert count("/") == 2
    assert count("/healthz") == 1
    inf = got[("topcoins_web_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/")))]
    assert inf == 2
    assert 0 < got[("topcoins_web_request_duration_seconds_sum", (("route", "/"),))] < 5


def test_request_duration_buckets_are_cumulative_and_inclusive() -> None:
    counter = RequestCounter()
    for seconds in (0.0005, 0.0006, 0.3, 99.0):
        counter.inc("/", 200, seconds)
    (_, family) = counter.collect()
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.0005"] == 1  # an upper bound is inclusive
    assert buckets["0.001"] == 2
    assert buckets["0.25"] == 2
    assert buckets["0.5"] == 3
    assert buckets["2.5"] == 3
    assert buckets["+Inf"] == 4


def test_messages_the_history_reader_walked_past_are_counted_by_reason(
    sample_view: TopListView,
) -> None:
    history = FakeHistory(join_of(SAMPLE_ROWS))
    app = create_app(Settings(), StaticReplica(sample_view), build=BUILD, history=history)
    name = "topcoins_web_history_skipped_messages_total"
    before = samples(TestClient(app).get("/metrics").text)  # a reader without stats: zeros
    history.stats = HistoryStats()  # type: ignore[attr-defined]
    history.stats.skipped("from_future")
    history.stats.skipped("from_future")
    history.stats.skipped("undecodable")
    got = samples(TestClient(app).get("/metrics").text)

    assert before[(name, (("reason", "from_future"),))] == 0
    assert got[(name, (("reason", "from_future"),))] == 2
    assert got[(name, (("reason", "undecodable"),))] == 1
