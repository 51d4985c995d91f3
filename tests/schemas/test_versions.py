"""The published schema files, and the version each record type is bound to."""

import pytest

from topcoins.schemas import versions
from topcoins.schemas.binding import binding_problems
from topcoins.schemas.codec import fingerprint_of
from topcoins.schemas.records import TopCoin


@pytest.mark.parametrize(
    ("record_type", "filename"), versions.CURRENT.items(), ids=lambda v: getattr(v, "__name__", v)
)
def test_each_record_dataclass_has_the_fields_of_its_schema_version(record_type, filename):
    assert binding_problems(record_type, versions.load_schema(filename)) == []


def test_a_record_bound_to_a_version_it_does_not_match_is_refused(monkeypatch):
    monkeypatch.setitem(versions.CURRENT, TopCoin, "top_coin.v1.avsc")
    versions.current_schema.cache_clear()
    try:
        with pytest.raises(versions.SchemaMismatch) as refused:
            versions.current_schema(TopCoin)
    finally:
        versions.current_schema.cache_clear()
    message = str(refused.value)
    assert message.startswith("schemas/records.py and schemas/published/top_coin.v1.avsc disagree")
    assert "'market_cap_usd', 'percent_change_24h']" in message
    assert message.endswith("bind it in CURRENT (schemas/versions.py)")


def test_every_published_version_is_a_distinct_schema():
    published = versions.published_schemas()
    fingerprints = {fingerprint_of(schema) for _, schema in published}
    assert len(fingerprints) == len(published)
