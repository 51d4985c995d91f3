"""The chart's monitoring and availability objects: the ServiceMonitor and its Service, the
PrometheusRule, the Grafana dashboard, the web's PodDisruptionBudget and topology spread,
and the NetworkPolicy (``ci/monitoring-values.yaml`` turns them all on).

Every metric the alert rules and the dashboard query must exist on some component's
``/metrics`` (``tests.metric_expositions``: the real metric objects). The rules are
checked with ``promtool check rules`` when promtool is on PATH or in
``~/.cache/topcoins/bin`` (skipped without it: .ci/run does not build it, it takes far
longer than helm); the metric names are read from each PromQL expression by
``promql_metric_names`` whatever the tools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.helm.test_chart import (
    CHART,
    COMPONENT_LABEL,
    Rendered,
    _cache_dir,
    helm_template,
)
from tests.metric_expositions import expositions, metric_names

MONITORING_VALUES = CHART / "ci" / "monitoring-values.yaml"
DASHBOARD = CHART / "dashboards" / "topcoins.json"
ALERTS = {
    "TopcoinsDataStale",
    "TopcoinsProviderFailing",
    "TopcoinsWorkerNotPublishing",
    "TopcoinsReplicaNotReady",
    "TopcoinsCreditPlanRunningOut",
    "TopcoinsCreditBudgetExhausted",
}

# PromQL words that are not metric names: operators, modifiers and aggregation clauses.
_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, labels, keywords, numbers).

    Strings, label matchers, ranges and ``by (...)``-style clauses go first, then every
    identifier not followed by ``(`` (a function call) is a metric name.
    """
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _CLAUSE.sub(" ", text)
    return {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}


@pytest.fixture(scope="module")
def monitored(helm: str) -> Rendered:
    result = helm_template(helm, "--values", str(MONITORING_VALUES))
    assert result.returncode == 0, result.stderr
    return Rendered(result.stdout, yaml.safe_load(MONITORING_VALUES.read_text()))


@pytest.fixture(scope="module")
def exposed() -> set[str]:
    return metric_names(expositions().values())


def rules_of(rendered: Rendered) -> list[dict[str, Any]]:
    (rule,) = rendered.of_kind("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('max by (source) (x_total{a="b(c)"}) == 1', {"x_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("time() - max(g) > 900 and on () absent(y) or z unless w offset 5m", {"g", "y", "z", "w"}),
        ("sum(increase(c_total[24h])) * 31 * 24 / 24 > 1e3", {"c_total"}),
        ("a:recorded:rate5m / ignoring (x) group_left (y) b", {"a:recorded:rate5m", "b"}),
    ],
)
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_every_metric_of_the_rules_and_the_dashboard_is_exposed(
    monitored: Rendered, exposed: set[str]
) -> None:
    exprs = [str(rule["expr"]) for rule in rules_of(monitored)] + dashboard_exprs()
    used = set().union(*(promql_metric_names(expr) for expr in exprs))
    assert len(used) >= 15
    assert used - exposed == set()


def test_a_metric_that_no_component_exposes_is_caught(exposed: set[str]) -> None:
    used = promql_metric_names("rate(topcoins_web_requests_totl[5m])")
    assert used - exposed == {"topcoins_web_requests_totl"}


def test_the_alerts_are_there_with_a_severity_and_a_summary(monitored: Rendered) -> None:
    rules = rules_of(monitored)
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    failing = next(r for r in rules if r["alert"] == "TopcoinsProviderFailing")
    assert failing["expr"].endswith(">= 5")  # prometheusRule.providerFailedPolls
    (rule,) = monitored.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_every_rule_and_dashboard_query_parses_as_promql(monitored: Rendered) -> None:
    # promql-parser is a port of Prometheus's own parser: the check that runs everywhere
    # (promtool, below, runs only where it has been built).
    exprs = [str(rule["expr"]) for rule in rules_of(monitored)]
    exprs += [expr.replace("$__rate_interval", "5m") for expr in dashboard_exprs()]
    for expr in exprs:
        promql_parser.parse(expr)
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        promql_parser.parse("sum(rate(topcoins_web_requests_total[5m])")


def _promtool() -> str | None:
    found = shutil.which("promtool")
    cached = _cache_dir() / "bin" / "promtool"
    if found:
        return found
    return str(cached) if cached.is_file() and os.access(cached, os.X_OK) else None


def test_promtool_accepts_the_rules_and_the_dashboard_queries(
    monitored: Rendered, tmp_path: Path
) -> None:
    promtool = _promtool()
    if promtool is None:
        # Not built by .ci/run: from source it took ~18 min on 2 busy cores (helm: 3.5).
        pytest.skip(
            "promtool not found on PATH or in ~/.cache/topcoins/bin; the metric names of the "
            "rules are still checked (test_every_metric_of_the_rules_and_the_dashboard_is_exposed)"
        )
    (rule,) = monitored.of_kind("PrometheusRule")
    # The dashboard's queries too, as recording rules (Grafana's $__rate_interval: 5m).
    dashboard = {
        "name": "dashboard",
        "rules": [
            {"record": f"dashboard:query{n}", "expr": expr.replace("$__rate_interval", "5m")}
            for n, expr in enumerate(dashboard_exprs())
        ],
    }
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [*rule["spec"]["groups"], dashboard]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS) + len(dashboard['rules'])} rules found" in result.stdout


def test_the_service_monitor_scrapes_every_components_ops_port(monitored: Rendered) -> None:
    (monitor,) = monitored.of_kind("ServiceMonitor")
    (service,) = [
        s
        for s in monitored.of_kind("Service")
        if s["metadata"]["labels"][COMPONENT_LABEL] == "metrics"
    ]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "ops", "path": "/metrics", "interval": "15s"}
    assert [p["name"] for p in service["spec"]["ports"]] == ["ops"]
    assert service["spec"]["ports"][0]["targetPort"] == "ops"
    assert service["spec"]["clusterIP"] == "None"
    selected = {
        name
        for name, deployment in monitored.deployments().items()
        if service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    }
    assert selected == {"pricing-producer", "ranking-producer", "stream-worker", "web"}
    for deployment in monitored.deployments().values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "ops" in {port["name"] for port in container["ports"]}


def test_the_dashboard_configmap_carries_the_dashboard(monitored: Rendered) -> None:
    (config,) = [
        c for c in monitored.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert config["metadata"]["annotations"] == {"grafana_folder": "topcoins"}
    dashboard = json.loads(config["data"]["topcoins.json"])
    assert dashboard == json.loads(DASHBOARD.read_text())
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("freshness", "request rate", "latency", "provider", "credits"):
        assert topic in titles


def test_web_pods_have_a_disruption_budget_and_spread(monitored: Rendered) -> None:
    web = monitored.deployments()["web"]
    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    (budget,) = monitored.of_kind("PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 2
    assert budget["spec"]["selector"]["matchLabels"] == web["spec"]["selector"]["matchLabels"]
    (spread,) = web["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert (spread["maxSkew"], spread["whenUnsatisfiable"]) == (2, "DoNotSchedule")
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spread["labelSelector"]["matchLabels"][COMPONENT_LABEL] == "web"


def test_the_network_policy_admits_only_the_given_sources(monitored: Rendered) -> None:
    (policy,) = monitored.of_kind("NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for deployment in monitored.deployments().values():
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    web, ops = policy["spec"]["ingress"]
    assert web["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert web["from"] == monitored.values["networkPolicy"]["webFrom"]
    assert ops["ports"] == [{"port": "ops", "protocol": "TCP"}]
    assert ops["from"] == monitored.values["networkPolicy"]["opsFrom"]


def test_by_default_only_the_budget_and_the_spread_are_rendered(helm: str) -> None:
    result = helm_template(
        helm, "--set", "kafka.bootstrapServers=k:9092", "--set", "providers.existingSecret=s"
    )
    assert result.returncode == 0, result.stderr
    rendered = Rendered(result.stdout, {})
    kinds = {d["kind"] for d in rendered.docs}
    assert "PodDisruptionBudget" in kinds
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"}
    assert len(rendered.of_kind("Service")) == 1
    spread = rendered.deployments()["web"]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
