"""The operator metrics of issue 11 on a running stack: they move, and every component's
real ``/metrics`` follows the naming conventions of ``tests/test_metric_names.py``."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import wait_until
from tests.test_metric_names import naming_problems
from topcoins.dev import DevStack


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (found, pairs), value in samples.items()
        if found == name and labels.items() <= dict(pairs).items()
    )


def check_operator_metrics(stack: DevStack) -> None:
    """Freshness and generation lag observed on the web, provider calls timed, credits and
    lags exposed, the worker's last publish set; every family well named."""
    settings = stack.settings
    web = f"{stack.web_url}/metrics"
    pricing = f"http://127.0.0.1:{settings.pricing_ops_port}/metrics"
    worker = f"http://127.0.0.1:{settings.worker_ops_port}/metrics"
    # The producers keep polling, so generations keep coming after the replica caught up.
    wait_until(
        lambda: _samples(web),
        lambda s: (
            _total(s, "topcoins_web_generation_lag_seconds_count") >= 1
            and _total(s, "topcoins_web_freshness_seconds_count", source="ranking") >= 1
        ),
        60,
        "a generation served after catching up",
    )
    got = _samples(pricing)
    assert _total(got, "topcoins_producer_call_duration_seconds_count", outcome="ok") >= 1
    assert _total(got, "topcoins_producer_budget_plan_credits") > 0
    assert any(name == "topcoins_producer_consumer_lag_messages" for name, _ in got)
    got = _samples(worker)
    assert _total(got, "topcoins_worker_last_publish_timestamp_seconds") > 0
    assert any(name == "topcoins_worker_consumer_lag_messages" for name, _ in got)
    for component, url in (("web", web), ("producer", pricing), ("worker", worker)):
        families = list(text_string_to_metric_families(httpx.get(url, timeout=10).text))
        names = {f.name for f in families}
        problems = {
            f.name: naming_problems(component, f)
            for f in families
            if not (f.name.endswith("_created") and f.name[:-8] in names)
        }
        assert {name: p for name, p in problems.items() if p} == {}, component
