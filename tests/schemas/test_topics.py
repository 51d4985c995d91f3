from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, TopCoin, TopListMeta
from topcoins.schemas.topics import SEVEN_DAYS_MS, Topics


def test_topic_names_follow_the_prefix():
    topics = Topics.for_prefix("t42")
    assert [t.name for t in topics.all()] == [
        "t42.prices.v1",
        "t42.ranks.v1",
        "t42.top.v1",
        "t42.status.v1",
    ]


def test_raw_topics_keep_seven_days_of_history_and_the_top_topic_is_compacted():
    topics = Topics.for_prefix("x")
    for raw in (topics.prices, topics.ranks):
        assert raw.config == {
            "cleanup.policy": "delete",
            "retention.ms": str(SEVEN_DAYS_MS),
            "min.insync.replicas": "1",
        }
    assert topics.top.config == {"cleanup.policy": "compact", "min.insync.replicas": "1"}
    assert topics.status.config == {"cleanup.policy": "compact", "min.insync.replicas": "1"}


def test_replication_and_min_insync_replicas_reach_every_topic():
    topics = Topics.for_prefix("x", replication_factor=3, min_insync_replicas=2)
    for spec in topics.all():
        assert (spec.replication_factor, spec.config["min.insync.replicas"]) == (3, "2")


def test_each_topic_names_its_value_types():
    topics = Topics.for_prefix("x")
    assert topics.prices.value_types == (PriceSnapshot,)
    assert topics.ranks.value_types == (RankingSnapshot,)
    assert topics.top.value_types == (TopCoin, TopListMeta)
