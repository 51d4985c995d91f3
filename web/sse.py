"""Server-Sent Events framing for ``GET /stream``, and the id of each event.

An event is ``id: <event id>`` then ``data: <the GET / JSON body>`` then a blank line; a
heartbeat is the comment line ``: heartbeat`` then a blank line (clients ignore it, and it
keeps proxies and load balancers from closing an idle connection).

The event id names what the event says, the same on every replica and after a restart:
``<generation>`` or ``<generation>-stale-<source>...``. ``<generation>`` is 16 hex digits
of a hash of the generation's snapshot pair (``ranking_snapshot_id`` and
``pricing_snapshot_id``), which every web process reads from the same top topic; the
per-process ``TopListView.generation`` counter is not used, since it differs between
replicas and restarts. The stale suffix (as on the ``ETag`` of ``GET /``) makes the id
change when a source turns stale or fresh again, so a client that resumes with a
``Last-Event-ID`` is sent the list again exactly when the data or its staleness changed.
"""

from __future__ import annotations

import hashlib

from topcoins.web.freshness import Freshness
from topcoins.web.view import TopListView

__all__ = ["HEARTBEAT", "event_id", "generation_id", "sse_event"]

HEARTBEAT = b": heartbeat\n\n"


def generation_id(view: TopListView) -> str:
    """16 hex digits naming ``view``'s generation by its snapshot pair."""
    pair = f"{view.ranking_snapshot_id}\n{view.pricing_snapshot_id or ''}"
    return hashlib.blake2b(pair.encode("utf-8"), digest_size=8).hexdigest()


def event_id(view: TopListView, freshness: Freshness) -> str:
    """The id of the event that carries ``view`` at ``freshness`` (see the module docstring)."""
    return generation_id(view) + "".join(f"-stale-{source}" for source in freshness.stale_sources)


def sse_event(event_id: str, data: bytes) -> bytes:
    """One event: ``id:``, one ``data:`` line per line of ``data``, then a blank line."""
    lines = data.split(b"\n")
    return b"".join(
        (b"id: ", event_id.encode("ascii"), b"\ndata: ", b"\ndata: ".join(lines), b"\n\n")
    )
