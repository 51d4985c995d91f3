"""``topcoins_web_stage_seconds``: the apply and render stages are timed and exposed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from tests.web.conftest import ClientFactory
from tests.web.factories import SAMPLE_ROWS, meta
from tests.web.fake_kafka import TOPICS, TP, meta_message, records, row_message
from tests.web.test_metrics import samples
from topcoins.settings import Settings
from topcoins.web.replica import TopListReplica
from topcoins.web.stages import STAGE_SECONDS
from topcoins.web.view import TopListView

COUNT = "topcoins_web_stage_seconds_count"


def observed(stage: str) -> float:
    """How many times ``stage`` was timed so far in this process."""
    return samples(_exposition()).get((COUNT, (("stage", stage),)), 0.0)


def _exposition() -> str:
    registry = CollectorRegistry()
    registry.register(STAGE_SECONDS)
    return generate_latest(registry).decode()


def test_one_fetched_batch_is_one_apply() -> None:
    replica = TopListReplica(Settings.from_env({}), TOPICS)
    messages = [row_message(row) for row in SAMPLE_ROWS]
    messages.append(meta_message(meta([row.symbol for row in SAMPLE_ROWS])))
    before = observed("apply")

    replica.apply_batches({TP: records(messages)})

    assert replica.view is not None
    assert observed("apply") == before + 1


def test_a_body_is_rendered_once_per_view_and_exposed_on_metrics(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    client = make_client(sample_view)
    before = samples(client.get("/metrics").text).get((COUNT, (("stage", "render"),)), 0.0)

    client.get("/?limit=3")
    client.get("/?limit=3")  # the same body, from the view's cache

    after = samples(client.get("/metrics").text)
    assert after[(COUNT, (("stage", "render"),))] == before + 1
