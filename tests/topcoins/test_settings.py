import pytest

from topcoins.settings import ENV_DOCS, Settings, SettingsError


def test_defaults_when_the_environment_is_empty():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.ranking_depth == 200
    assert settings.web_port == 6667
    assert settings.kafka_servers == ["localhost:9092"]


def test_every_documented_default_parses_to_the_dataclass_default():
    documented = {spec.name: spec.default for spec in ENV_DOCS.values()}
    assert Settings.from_env(documented) == Settings()


def test_values_are_read_and_typed():
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "a:1, b:2",
            "RANKING_DEPTH": "300",
            "PRICING_POLL_SECONDS": "2.5",
            "CMC_BASE_URL": "http://127.0.0.1:6668/",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.kafka_servers == ["a:1", "b:2"]
    assert settings.ranking_depth == 300
    assert settings.pricing_poll_seconds == 2.5
    assert settings.cmc_base_url == "http://127.0.0.1:6668"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RANKING_DEPTH", "abc", "RANKING_DEPTH"),
        ("RANKING_DEPTH", "0", "greater than 0"),
        ("WEB_PORT", "70000", "TCP port"),
        ("CMC_BASE_URL", "ftp://x", "http://"),
        ("LOG_LEVEL", "LOUD", "DEBUG, INFO"),
        ("KAFKA_BOOTSTRAP_SERVERS", "  ", "must not be empty"),
    ],
)
def test_bad_values_name_the_variable_and_what_is_allowed(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})


def test_api_keys_are_masked_everywhere_a_settings_object_is_printed():
    settings = Settings.from_env({"CMC_API_KEY": "sekret-cmc", "CRYPTOCOMPARE_API_KEY": "sek-cc"})
    assert "sekret-cmc" not in repr(settings)
    assert "sek-cc" not in repr(settings)
    assert "sekret-cmc" not in str(settings.public_dict())
    assert settings.public_dict()["cmc_api_key"] == "***"
    assert set(settings.secrets) == {"sekret-cmc", "sek-cc"}


def test_topics_follow_the_prefix_and_the_raw_retention():
    settings = Settings.from_env({"TOPIC_PREFIX": "acme", "RAW_RETENTION_HOURS": "48"})
    topics = settings.topics
    assert topics.prices.name == "acme.prices.v1"
    assert topics.prices.config["retention.ms"] == str(48 * 3_600_000)
    assert topics.ranks.config["retention.ms"] == str(48 * 3_600_000)
    assert "retention.ms" not in topics.top.config


def test_the_replication_factor_reaches_every_topic_contract():
    topics = Settings.from_env({"TOPIC_REPLICATION_FACTOR": "3"}).topics
    assert {spec.replication_factor for spec in topics.all()} == {3}
    assert {spec.replication_factor for spec in Settings().topics.all()} == {1}
