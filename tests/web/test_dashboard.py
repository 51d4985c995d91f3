"""``GET /dashboard``: the page, its headers and what it may load (the browser test is
``tests/e2e/test_dashboard.py``)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from tests.web.conftest import ClientFactory
from topcoins.web.dashboard import PAGE, content_security_policy
from topcoins.web.view import TopListView


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags() -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(PAGE.decode())
    return parser.tags


def test_the_page_is_served_as_html_with_its_policy(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    response = make_client(sample_view).get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == PAGE
    assert response.headers["content-security-policy"] == content_security_policy(PAGE)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_is_served_before_any_data(make_client: ClientFactory) -> None:
    assert make_client().get("/dashboard").status_code == 200


def test_the_policy_allows_exactly_the_inline_script_and_style() -> None:
    policy = dict(part.split(" ", 1) for part in content_security_policy(PAGE).split("; "))
    script = re.search(rb"<script>(.*?)</script>", PAGE, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1)).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for tag, attrs in _tags():
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "/", "#")), (tag, attrs)
    assert b"http://" not in PAGE.replace(b"http://www.w3.org/2000/svg", b"")
    assert b"https://" not in PAGE


def test_the_market_table_is_a_real_table_with_the_seven_column_headers() -> None:
    headers = [attrs for tag, attrs in _tags() if tag == "th"]
    assert [attrs.get("scope") for attrs in headers] == ["col"] * 7
    text = PAGE.decode()
    for label in (
        "Rank",
        "Symbol",
        "Name",
        "Price (USD)",
        "24 h volume",
        "24 h change",
        "Market cap",
    ):
        assert f">{label}" in text
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in [
        (tag, attrs) for tag, attrs in _tags() if tag == "meta" and "name" in attrs
    ]


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_other_methods_are_405(make_client: ClientFactory, method: str) -> None:
    response = make_client().request(method, "/dashboard")
    assert response.status_code == 405
    assert response.json()["error"]
