"""Every component's ``/metrics`` follows the Prometheus naming conventions.

https://prometheus.io/docs/practices/naming/: snake_case, an application prefix, base
units (seconds, bytes) as the last word, ``_total`` only on counters, timestamps as
``_timestamp_seconds``. The expositions are the real metric objects, built in-process
(``tests.metric_expositions``).
"""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.metric_expositions import expositions

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Words that name a unit that is not a base unit (or a scaled one).
NON_BASE_UNITS = {
    "ms", "millis", "milliseconds", "us", "microseconds", "ns", "nanoseconds", "minute",
    "minutes", "hour", "hours", "days", "kb", "mb", "gb", "kib", "mib", "kilobytes",
    "megabytes", "percent", "percentage",
}  # fmt: skip
FOREIGN_PREFIXES = ("process_", "python_")  # prometheus_client's own collectors

COMPONENTS = ("producer", "web", "worker")


def families(component: str) -> list:
    """The component's metric families, without the ``x_created`` gauges prometheus_client
    writes next to each counter and histogram ``x`` (creation times, not metrics of ours)."""
    found = list(text_string_to_metric_families(expositions()[component]))
    names = {family.name for family in found}
    return [f for f in found if not (f.name.endswith("_created") and f.name[:-8] in names)]


def naming_problems(component: str, family) -> list[str]:
    """What is wrong with one metric family's name, type and help."""
    name, kind = family.name, family.type
    words = name.split("_")
    problems = []
    if not SNAKE_CASE.match(name):
        problems.append("not snake_case")
    if not name.startswith(f"topcoins_{component}_") and not name.startswith(FOREIGN_PREFIXES):
        problems.append(f"does not start with topcoins_{component}_")
    if NON_BASE_UNITS & set(words):
        problems.append(f"non-base unit {sorted(NON_BASE_UNITS & set(words))}")
    if kind != "counter" and name.endswith("_total"):
        problems.append(f"a {kind} must not end in _total")
    if kind == "counter" and any(
        not s.name.endswith(("_total", "_created")) for s in family.samples
    ):
        problems.append("counter series must end in _total")
    if kind in ("histogram", "summary") and not name.endswith(("_seconds", "_bytes")):
        problems.append(f"a {kind} must measure a base unit (_seconds, _bytes)")
    if "seconds" in words and not name.endswith("_seconds"):
        problems.append("the unit (seconds) must be the last word")
    if "timestamp" in words and not name.endswith("_timestamp_seconds"):
        problems.append("timestamps are _timestamp_seconds")
    if not family.documentation.strip():
        problems.append("no help text")
    return problems


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_metric_follows_the_naming_conventions(component: str) -> None:
    found = families(component)
    assert len(found) >= 10  # the real registry, not an empty one
    problems = {f.name: naming_problems(component, f) for f in found}
    assert {name: p for name, p in problems.items() if p} == {}


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        ("topcoins_web_fetchMs gauge", "not snake_case"),
        ("topcoins_web_fetch_ms gauge", "non-base unit ['ms']"),
        ("topcoins_web_errors_total gauge", "a gauge must not end in _total"),
        ("topcoins_web_fetch histogram", "a histogram must measure a base unit"),
        ("topcoins_web_seconds_per_call gauge", "the unit (seconds) must be the last word"),
        ("topcoins_web_last_timestamp gauge", "timestamps are _timestamp_seconds"),
        ("topcoins_worker_joins gauge", "does not start with topcoins_web_"),
    ],
)
def test_the_checks_catch_bad_names(declared: str, problem: str) -> None:
    name, kind = declared.split()
    text = f"# HELP {name} Something.\n# TYPE {name} {kind}\n"
    (family,) = text_string_to_metric_families(text)
    assert any(p.startswith(problem) for p in naming_problems("web", family))


def test_the_operator_metrics_are_exposed() -> None:
    """Freshness, generation lag, consumer lag per reader, provider calls by outcome and
    the credit budget (issue 11) are on the components' ``/metrics``."""
    declared = {c: {f.name for f in families(c)} for c in COMPONENTS}
    assert {
        "topcoins_web_freshness_seconds",
        "topcoins_web_generation_lag_seconds",
        "topcoins_web_replica_lag_messages",
    } <= declared["web"]
    assert {
        "topcoins_producer_call_duration_seconds",
        "topcoins_producer_consumer_lag_messages",
        "topcoins_producer_budget_credits",
        "topcoins_producer_budget_plan_credits",
        "topcoins_producer_budget_credits_available",
    } <= declared["producer"]
    assert {
        "topcoins_worker_consumer_lag_messages",
        "topcoins_worker_last_publish_timestamp_seconds",
    } <= declared["worker"]
