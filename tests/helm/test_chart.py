"""The Helm chart: each value set in ``helm/topcoins/ci/`` renders to manifests that are
valid Kubernetes objects and keep topcoins' deployment rules, and the values schema
refuses what must not be deployed.

Needs the ``helm`` binary (on PATH, else in ``~/.cache/topcoins/bin``); without it the
tests skip. Manifests are checked offline against the Kubernetes JSON schemas that the
``kubernetes-validate`` package ships.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import missing_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "topcoins"
VALUE_SETS = sorted((CHART / "ci").glob("*.yaml"))
KUBERNETES_VERSION = "1.30"
RELEASE = "rel"
INSTALL_HINT = (
    "helm not found on PATH or in ~/.cache/topcoins/bin; install it with "
    "`GOBIN=~/.cache/topcoins/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0` (as .ci/run does)"
)
# The values that every test of a rejected value starts from: the required ones filled.
REQUIRED = ["--set", "kafka.bootstrapServers=kafka:9092", "--set", "providers.existingSecret=keys"]


class Component:
    """What the chart must deploy for one topcoins component."""

    def __init__(self, name: str, values_key: str, command: str, port_env: str) -> None:
        self.name = name  # the app.kubernetes.io/component label and the container name
        self.values_key = values_key
        self.command = command
        self.port_env = port_env


COMPONENTS = {
    c.name: c
    for c in (
        Component("pricing-producer", "pricingProducer", "pricing", "PRICING_OPS_PORT"),
        Component("ranking-producer", "rankingProducer", "ranking", "RANKING_OPS_PORT"),
        Component("stream-worker", "streams", "worker", "WORKER_OPS_PORT"),
        Component("web", "web", "web", "WEB_PORT"),
    )
}
API_KEYS = {"pricing-producer": "CMC_API_KEY", "ranking-producer": "CRYPTOCOMPARE_API_KEY"}
COMPONENT_LABEL = "app.kubernetes.io/component"
# The Prometheus Operator's API group: its kinds are checked in tests/helm/test_monitoring.py.
CUSTOM_RESOURCES = {"monitoring.coreos.com/v1"}
PROBE_PATHS = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}


def _cache_dir() -> Path:
    return Path(os.environ.get("TOPCOINS_CACHE_DIR") or Path.home() / ".cache" / "topcoins")


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary: on PATH, else in the topcoins cache; skip when there is none."""
    found = shutil.which("helm")
    if found:
        return found
    cached = _cache_dir() / "bin" / "helm"
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    missing_tool("helm", INSTALL_HINT)
    raise AssertionError("unreachable")


def helm_template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "template", RELEASE, str(CHART), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Rendered:
    """The manifests of one value set, and the values they were rendered from."""

    def __init__(self, text: str, values: dict[str, Any]) -> None:
        self.text = text
        self.values = values
        self.docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def deployments(self) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["labels"][COMPONENT_LABEL]: d for d in self.of_kind("Deployment")}

    def web_service(self) -> dict[str, Any]:
        """The web's Service (the optional metrics Service is another one)."""
        (service,) = [
            s for s in self.of_kind("Service") if s["metadata"]["labels"][COMPONENT_LABEL] == "web"
        ]
        return service

    def component_values(self, component: str) -> dict[str, Any]:
        return self.values[COMPONENTS[component].values_key]


@pytest.fixture(scope="module", params=VALUE_SETS, ids=lambda path: path.stem)
def rendered(request: pytest.FixtureRequest, helm: str) -> Rendered:
    value_set: Path = request.param
    result = helm_template(helm, "--values", str(value_set))
    assert result.returncode == 0, result.stderr
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    values = deep_merge(defaults, yaml.safe_load(value_set.read_text()) or {})
    return Rendered(result.stdout, values)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = container(deployment).get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env vars: {names}"
    return {e["name"]: e for e in entries}


def test_there_are_ci_value_sets():
    assert len(VALUE_SETS) >= 2


def test_every_manifest_is_a_valid_kubernetes_object(rendered: Rendered):
    assert rendered.docs
    for doc in rendered.docs:
        assert doc.get("apiVersion") and doc.get("kind"), doc
        if doc["apiVersion"] in CUSTOM_RESOURCES:
            continue  # not in the Kubernetes schemas: tests/helm/test_monitoring.py
        # strict: unknown fields (a misspelt key) fail too, not only wrong types.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    kinds = {(d["apiVersion"], d["kind"]) for d in rendered.docs}
    assert kinds <= {
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }


def test_the_validator_rejects_a_misspelt_field(rendered: Rendered):
    broken = copy.deepcopy(next(iter(rendered.deployments().values())))
    broken["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_names_are_unique_and_at_most_63_characters(rendered: Rendered):
    names = [(d["kind"], d["metadata"]["name"]) for d in rendered.docs]
    assert len(names) == len(set(names)), names
    assert all(len(name) <= 63 for _, name in names), names


def test_one_deployment_per_component_running_its_subcommand(rendered: Rendered):
    deployments = rendered.deployments()
    assert len(rendered.of_kind("Deployment")) == 4
    assert set(deployments) == set(COMPONENTS)
    image = rendered.values["image"]
    for name, deployment in deployments.items():
        spec = container(deployment)
        assert spec["name"] == name
        assert spec["args"] == [COMPONENTS[name].command]
        assert spec["image"] == f"{image['repository']}:{image['tag'] or '0.1.0'}"
        assert "command" not in spec  # the image's ENTRYPOINT is `topcoins`


def test_producers_run_exactly_one_replica_and_never_overlap(rendered: Rendered):
    deployments = rendered.deployments()
    for name in ("pricing-producer", "ranking-producer"):
        assert deployments[name]["spec"]["replicas"] == 1
        assert deployments[name]["spec"]["strategy"] == {"type": "Recreate"}
    worker = deployments["stream-worker"]["spec"]
    assert worker["replicas"] <= 1  # one input partition per topic
    assert worker["strategy"] == {"type": "Recreate"}


def test_web_has_a_service_and_scales_with_an_hpa_when_enabled(rendered: Rendered):
    web = rendered.deployments()["web"]
    service = rendered.web_service()
    assert service["metadata"]["name"] == web["metadata"]["name"]
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]  # no ops port
    assert service["spec"]["ports"][0]["port"] == rendered.values["web"]["service"]["port"]
    autoscaling = rendered.values["web"]["autoscaling"]
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    if not autoscaling["enabled"]:
        assert hpas == []
        assert web["spec"]["replicas"] == rendered.values["web"]["replicas"]
        return
    (hpa,) = hpas
    assert "replicas" not in web["spec"]  # the HPA owns the count
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": web["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] == autoscaling["minReplicas"]
    assert hpa["spec"]["maxReplicas"] == autoscaling["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": autoscaling["targetCPUUtilizationPercentage"],
    }
    assert "cpu" in container(web)["resources"]["requests"]  # utilisation needs a request


def test_api_keys_come_only_from_the_existing_secret(rendered: Rendered):
    assert rendered.of_kind("Secret") == []
    secret = rendered.values["providers"]["existingSecret"]
    secret_keys = {
        "CMC_API_KEY": rendered.values["providers"]["cmc"]["apiKeySecretKey"],
        "CRYPTOCOMPARE_API_KEY": rendered.values["providers"]["cryptocompare"]["apiKeySecretKey"],
    }
    for name, deployment in rendered.deployments().items():
        env = env_of(deployment)
        keys_here = {n for n in env if n.endswith("_API_KEY")}
        expected = {API_KEYS[name]} if name in API_KEYS else set()
        assert keys_here == expected, f"{name} gets {keys_here}"
        for key in keys_here:
            assert env[key] == {
                "name": key,
                "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_keys[key]}},
            }
    for config in rendered.of_kind("ConfigMap"):
        assert not any("API_KEY" in key for key in config["data"])


def test_kafka_security_reaches_every_component_without_a_secret_value(rendered: Rendered):
    kafka = rendered.values["kafka"]
    security = kafka["security"]
    [config] = [  # the settings, not the optional Grafana dashboard (a component of its own)
        c for c in rendered.of_kind("ConfigMap") if COMPONENT_LABEL not in c["metadata"]["labels"]
    ]
    data = config["data"]
    assert data["KAFKA_SECURITY_PROTOCOL"] == security["protocol"]
    assert data["TOPIC_REPLICATION_FACTOR"] == str(kafka["replicationFactor"])
    assert data["TOPIC_MIN_INSYNC_REPLICAS"] == str(kafka["minInsyncReplicas"])
    assert not any("SASL_USERNAME" in key or "SASL_PASSWORD" in key for key in data)
    sasl = security["protocol"].startswith("SASL_")
    tls_secret = security["tls"]["existingSecret"]
    for name, deployment in rendered.deployments().items():
        env = env_of(deployment)
        if sasl:
            secret = security["sasl"]["existingSecret"]
            for var, key in (
                ("KAFKA_SASL_USERNAME", "usernameKey"),
                ("KAFKA_SASL_PASSWORD", "passwordKey"),
            ):
                ref = {"secretKeyRef": {"name": secret, "key": security["sasl"][key]}}
                assert env[var]["valueFrom"] == ref, name
        else:
            assert "KAFKA_SASL_PASSWORD" not in env, name
        mounts = {m["name"]: m for m in container(deployment).get("volumeMounts", [])}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        if tls_secret:
            assert mounts["kafka-tls"]["readOnly"] is True, name
            assert volumes["kafka-tls"]["secret"]["secretName"] == tls_secret, name
            ca_file = data["KAFKA_SSL_CA_FILE"]
            assert ca_file == f"{mounts['kafka-tls']['mountPath']}/{security['tls']['caKey']}"
        else:
            assert "kafka-tls" not in mounts and "kafka-tls" not in volumes, name


def test_a_sasl_ssl_value_set_is_rendered_in_ci():
    protocols = {
        (yaml.safe_load(path.read_text()).get("kafka", {}).get("security") or {}).get("protocol")
        for path in VALUE_SETS
    }
    assert "SASL_SSL" in protocols


def test_selectors_match_their_pods_and_only_them(rendered: Rendered):
    deployments = rendered.deployments()
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    def selects(selector: dict[str, str]) -> set[str]:
        return {n for n, labels in pod_labels.items() if selector.items() <= labels.items()}

    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector[COMPONENT_LABEL] == name
        assert selector["app.kubernetes.io/instance"] == RELEASE
        assert selects(selector) == {name}
        assert deployment["metadata"]["labels"][COMPONENT_LABEL] == name
    service = rendered.web_service()
    assert selects(service["spec"]["selector"]) == {"web"}


def test_probes_point_at_each_components_port(rendered: Rendered):
    for name, deployment in rendered.deployments().items():
        spec = container(deployment)
        values = rendered.component_values(name)
        port = values["port"]
        declared, *others = spec["ports"]
        assert declared["containerPort"] == port
        assert env_of(deployment)[COMPONENTS[name].port_env]["value"] == str(port)
        for probe, path in PROBE_PATHS.items():
            assert spec[probe]["httpGet"] == {"path": path, "port": declared["name"]}, (name, probe)
        metrics_port = port
        if name == "web":  # /metrics and /diagnostics on a port of their own
            (ops,) = others
            metrics_port = values["opsPort"]
            assert (ops["name"], ops["containerPort"]) == ("ops", metrics_port)
            assert env_of(deployment)["WEB_OPS_PORT"]["value"] == str(metrics_port)
        else:
            assert others == []
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        if rendered.values["metrics"]["podAnnotations"]:
            assert annotations["prometheus.io/port"] == str(metrics_port)
        else:
            assert "prometheus.io/scrape" not in annotations


def test_pods_run_unprivileged(rendered: Rendered):
    for deployment in rendered.deployments().values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert container(deployment)["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_worker_keeps_its_state_in_an_empty_dir(rendered: Rendered):
    worker = rendered.deployments()["stream-worker"]
    data_dir = env_of(worker)["WORKER_DATA_DIR"]["value"]
    mounts = {m["name"]: m["mountPath"] for m in container(worker)["volumeMounts"]}
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    assert data_dir.startswith(mounts["data"] + "/")
    assert "emptyDir" in volumes["data"]


def test_user_env_reaches_the_pods_and_component_env_wins(rendered: Rendered):
    extra = rendered.values["extraEnv"]
    for name, deployment in rendered.deployments().items():
        expected = {**extra, **rendered.component_values(name)["env"]}
        env = env_of(deployment)
        for var, value in expected.items():
            if isinstance(value, str):
                assert env[var]["value"] == value, (name, var)
            else:
                assert env[var]["valueFrom"] == value["valueFrom"], (name, var)


def test_helm_lint_passes(helm: str):
    for value_set in VALUE_SETS:
        result = subprocess.run(
            [helm, "lint", "--strict", str(CHART), "--values", str(value_set)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# What the values schema refuses: helm's arguments, then a part of its error. An unquoted
# image tag is refused as values files read 1.10 as 1.1; env values must be strings.
REFUSED = """\
--set unknownKey=1                                  additional properties 'unknownKey' not allowed
--set web.replica=3                                 additional properties 'replica' not allowed
--set pricingProducer.replicas=2                    /pricingProducer/replicas
--set rankingProducer.replicas=2                    /rankingProducer/replicas
--set pricingProducer.replicas=0                    /pricingProducer/replicas
--set streams.replicas=2                            /streams/replicas
--set logLevel=verbose                              /logLevel
--set web.service.type=ExternalName                 /web/service/type
--set web.port=70000                                /web/port
--set web.env.RANKING_DEPTH=300                     /web/env/RANKING_DEPTH
--set-string extraEnv.CMC_API_KEY=sk-in-values      /extraEnv/CMC_API_KEY
--set-string web.env.WEB_PORT=80                    /web/env/WEB_PORT
--set-string web.env.WEB_OPS_PORT=80                /web/env/WEB_OPS_PORT
--set image.tag=2                                   /image/tag
--set kafka.security.protocol=TLS                   /kafka/security/protocol
--set kafka.security.sasl.mechanism=GSSAPI          /kafka/security/sasl/mechanism
--set kafka.replicationFactor=0                     /kafka/replicationFactor
--set-string extraEnv.KAFKA_SASL_PASSWORD=pw        /extraEnv/KAFKA_SASL_PASSWORD
--set metrics.prometheusRule.providerFailedPolls=0  providerFailedPolls
--set metrics.serviceMonitor.interval=soon          /metrics/serviceMonitor/interval
--set metrics.grafanaDashboard.enable=true          'enable' not allowed
--set web.topologySpread.whenUnsatisfiable=Never    whenUnsatisfiable
--set web.podDisruptionBudget.maxUnavailable=0      maxUnavailable
--set networkPolicy.webFrom=everyone                /networkPolicy/webFrom
"""


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [line.split(maxsplit=2) for line in REFUSED.splitlines()],
    ids=[" ".join(line.split()[:2]) for line in REFUSED.splitlines()],
)
def test_the_schema_refuses(helm: str, option: str, value: str, error: str):
    result = helm_template(helm, *REQUIRED, option, value)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr
    assert error in result.stderr
    assert "sk-in-values" not in result.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--set", "providers.existingSecret=keys"], "kafka.bootstrapServers is required"),
        (["--set", "kafka.bootstrapServers=kafka:9092"], "providers.existingSecret is required"),
        (
            [*REQUIRED, "--set", "web.autoscaling.enabled=true,web.autoscaling.minReplicas=11"],
            "must not exceed web.autoscaling.maxReplicas",
        ),
        ([*REQUIRED, "--set", "web.opsPort=6667"], "web.opsPort must differ from web.port"),
        (
            [*REQUIRED, "--set", "kafka.security.protocol=SASL_SSL"],
            "kafka.security.sasl.existingSecret is required with a SASL_* protocol",
        ),
        (
            [*REQUIRED, "--set", "kafka.security.tls.certKey=tls.crt"],
            "kafka.security.tls.certKey and keyKey go together",
        ),
    ],
    ids=[
        "no-kafka",
        "no-secret",
        "hpa-min-over-max",
        "ops-port-is-web-port",
        "sasl-without-secret",
        "cert-without-key",
    ],
)
def test_rendering_fails_with_a_reason(helm: str, args: list[str], error: str):
    result = helm_template(helm, *args)
    assert result.returncode != 0
    assert error in result.stderr
