"""``GET /dashboard``: one self-contained HTML page (``dashboard.html``, shipped in the package).

The page holds its own CSS and JavaScript and fetches nothing but ``/stream`` (or ``GET /``
every 5 s when the server has no ``/stream``): a live market table, a log-log liquidity
scatter plot in hand-written SVG, and a banner while the data is stale or the connection is
lost. It is read once, at import; the ``Content-Security-Policy`` allows exactly its inline
script and style (by hash) and connections to this origin, so the browser itself refuses
anything from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["DASHBOARD_PATH", "PAGE", "content_security_policy", "dashboard"]

DASHBOARD_PATH = "/dashboard"
PAGE = resources.files("topcoins.web").joinpath("dashboard.html").read_bytes()


def _hashes(page: bytes, tag: bytes) -> str:
    """The CSP source list of the ``sha256`` of every inline ``<tag>`` block of ``page``."""
    blocks = re.findall(rb"<" + tag + rb">(.*?)</" + tag + rb">", page, flags=re.DOTALL)
    if not blocks:
        raise ValueError(f"dashboard.html has no <{tag.decode()}> block")
    digests = (base64.b64encode(hashlib.sha256(block).digest()).decode() for block in blocks)
    return " ".join(f"'sha256-{digest}'" for digest in digests)


def content_security_policy(page: bytes) -> str:
    """The policy that lets ``page`` run its own inline code and talk to this origin only."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {_hashes(page, b'script')}",
            f"style-src {_hashes(page, b'style')}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": content_security_policy(PAGE),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def dashboard(request: Request) -> Response:
    """The dashboard page."""
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=_HEADERS)
