"""``GET /openapi.json``: a valid OpenAPI 3.1 document of exactly the routes the app serves."""

from __future__ import annotations

import json

import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from tests.web.factories import BUILD, Clock, TestClient
from tests.web.replicas import StaticReplica
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.openapi import DESCRIBED_PATHS, TOP_LIST_PARAMETERS
from topcoins.web.params import PARAMETERS
from topcoins.web.view import TopListView


def make_client(view: TopListView | None = None, settings: Settings | None = None) -> TestClient:
    """A client of the app without its lifespan (no history worker process: fast)."""
    app = create_app(settings or Settings(), StaticReplica(view), build=BUILD, clock=Clock())
    return TestClient(app)


def served_paths(client) -> set[str]:
    return {route.path for route in client.app.routes if isinstance(route, Route)}


def document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document(make_client())
    validate(doc)  # raises OpenAPIValidationError
    assert doc["openapi"].startswith("3.1")


@pytest.mark.parametrize("ops_port", [None, 9999])
def test_every_served_route_is_documented_and_nothing_else(ops_port: int | None) -> None:
    client = make_client(settings=Settings(web_ops_port=ops_port))
    served = served_paths(client)
    assert served <= DESCRIBED_PATHS, f"undocumented routes: {served - DESCRIBED_PATHS}"
    documented = document(client)["paths"]
    assert set(documented) == served
    for path, item in documented.items():
        route = next(r for r in client.app.routes if isinstance(r, Route) and r.path == path)
        assert {method.lower() for method in route.methods or ()} - {"head"} == set(item), path
    if ops_port is not None:
        assert "/metrics" not in documented  # served on the ops port instead


def test_every_query_parameter_is_documented_with_the_real_limits() -> None:
    assert set(PARAMETERS) == TOP_LIST_PARAMETERS
    doc = document(make_client(settings=Settings(ranking_depth=150)))
    parameters = {p["name"]: p for p in doc["paths"]["/"]["get"]["parameters"]}
    assert set(parameters) == {*PARAMETERS, "If-None-Match"}
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 150, 150)
    assert parameters["format"]["schema"]["enum"] == ["json", "csv"]


def test_top_list_headers_and_error_statuses() -> None:
    operation = document(make_client())["paths"]["/"]["get"]
    ok = operation["responses"]["200"]
    assert set(ok["headers"]) == {"ETag", "Last-Modified", "X-Data-Age", "X-Data-Stale"}
    assert set(ok["content"]) == {"application/json", "text/csv"}
    assert {"304", "400", "404", "503"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["503"]["headers"]


def _schema_of(doc: dict, name: str) -> dict:
    """A component schema with its refs resolvable (the document as the root)."""
    return {**doc, "$ref": f"#/components/schemas/{name}"}


def test_real_answers_match_their_schemas(sample_view: TopListView) -> None:
    client = make_client(sample_view)
    doc = document(client)
    for path, schema in [
        ("/?limit=3", "TopList"),
        ("/status", "Status"),
        ("/readyz", "Ready"),
        ("/version", "Version"),
        ("/diagnostics", "Diagnostics"),
        ("/?limit=0", "Error"),
    ]:
        body = client.get(path).json()
        jsonschema.validate(body, _schema_of(doc, schema))
    empty = make_client()
    jsonschema.validate(empty.get("/").json(), _schema_of(doc, "Error"))
    with pytest.raises(jsonschema.ValidationError):  # the schemas do constrain
        body = client.get("/?limit=3").json()
        body["data"][0]["rank"] = "1"
        jsonschema.validate(body, _schema_of(doc, "TopList"))


def test_the_document_is_served_as_compact_json() -> None:
    raw = make_client().get("/openapi.json").content
    assert json.loads(raw) and b"\n" not in raw


def test_the_stream_parameters_are_documented_with_the_real_limits() -> None:
    from topcoins.web.params import STREAM_PARAMETERS

    doc = document(make_client(settings=Settings(ranking_depth=50)))
    stream = doc["paths"]["/stream"]["get"]
    parameters = {p["name"]: p for p in stream["parameters"]}
    assert set(parameters) == {*STREAM_PARAMETERS, "Last-Event-ID"}
    assert parameters["limit"]["schema"]["maximum"] == 50
    assert set(stream["responses"]) == {"200", "400", "503"}
