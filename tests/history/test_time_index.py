"""``TimeIndex``: moments found from records already fetched, and when it must not answer."""

from __future__ import annotations

from dataclasses import dataclass

from topcoins.history.time_index import RecordRef, TimeIndex


@dataclass(frozen=True)
class Fetched:
    """The fields of an aiokafka ``ConsumerRecord`` the index reads."""

    offset: int
    timestamp: int
    headers: tuple[tuple[str, bytes], ...] = ()


def records(*pairs: tuple[int, int]) -> list[Fetched]:
    return [Fetched(o, t, (("snapshot_id", f"s-{o}".encode()),)) for o, t in pairs]


def test_a_moment_between_two_neighbours_is_found() -> None:
    index = TimeIndex()
    index.learn(10, records((10, 1000), (11, 2000), (12, 3000)))
    assert index.find(1000) == RecordRef(10, 1000, "s-10")
    assert index.find(1999) == RecordRef(10, 1000, "s-10")
    assert index.find(2000) == RecordRef(11, 2000, "s-11")


def test_moments_before_the_first_or_from_the_last_known_record_on_are_left_to_the_broker() -> None:
    index = TimeIndex()
    index.learn(10, records((10, 1000), (11, 2000)))
    assert index.find(999) is None  # an older record may exist
    assert index.find(2000) is None  # a newer record may have been published
    assert index.find(5000) is None


def test_records_from_separate_fetches_are_neighbours_only_when_nothing_can_lie_between() -> None:
    index = TimeIndex()
    index.learn(10, records((10, 1000)))
    index.learn(20, records((20, 2000), (21, 3000)))
    assert index.find(1500) is None  # offsets 11-19 were never read
    index.learn(11, records((13, 1200)))  # a fetch from 11 started at 13: 11 and 12 are gaps
    assert index.find(1100) == RecordRef(10, 1000, "s-10")
    assert index.find(1500) is None  # 14-19 still unread
    index.learn(14, records((14, 1400), (15, 1600), (16, 1800), (17, 1900), (18, 1950), (19, 1990)))
    assert index.find(1995) == RecordRef(19, 1990, "s-19")
    assert index.find(1300) == RecordRef(13, 1200, "s-13")


def test_timestamps_out_of_order_switch_the_index_off_for_good() -> None:
    index = TimeIndex()
    index.learn(0, records((0, 1000), (1, 3000), (2, 4000)))
    index.learn(3, records((3, 2000), (4, 5000)))  # offset 3 is older than offset 2
    assert not index.ordered
    assert index.find(3500) is None
    index.learn(10, records((10, 9000), (11, 9500)))
    assert index.find(9200) is None
    assert len(index) == 0


def test_records_deleted_by_retention_are_forgotten() -> None:
    index = TimeIndex()
    index.learn(0, records((0, 1000), (1, 2000), (2, 3000), (3, 4000)))
    index.forget_before(2)
    assert index.find(1500) is None
    assert index.find(3500) == RecordRef(2, 3000, "s-2")
    assert len(index) == 2


def test_past_its_size_the_index_starts_over() -> None:
    index = TimeIndex(max_entries=3)
    index.learn(0, records((0, 1000), (1, 2000), (2, 3000)))
    assert index.find(1500) is not None
    index.learn(3, records((3, 4000), (4, 5000)))
    assert len(index) == 2
    assert index.find(1500) is None  # forgotten: the broker answers it again
    assert index.find(4500) == RecordRef(3, 4000, "s-3")


def test_a_record_without_a_snapshot_id_header_is_indexed_without_one() -> None:
    index = TimeIndex()
    index.learn(0, [Fetched(0, 1000), Fetched(1, 2000)])
    assert index.find(1000) == RecordRef(0, 1000, None)
