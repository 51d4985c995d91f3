import pytest

from topcoins.settings import Settings, SettingsError


def test_defaults_when_the_environment_is_empty():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.ranking_depth == 200
    assert settings.web_port == 6667
    assert settings.kafka_servers == ["localhost:9092"]


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


def test_the_web_limits_and_ops_port_are_read():
    settings = Settings.from_env(
        {
            "WEB_OPS_PORT": "9104",
            "WEB_LIMIT_CONCURRENCY": "50",
            "AT_MAX_WAITING": "0",
            "AT_TIMEOUT_SECONDS": "2.5",
        }
    )
    assert (settings.web_ops_port, settings.web_limit_concurrency) == (9104, 50)
    assert (settings.at_max_waiting, settings.at_timeout_seconds) == (0, 2.5)
    assert Settings().web_ops_port is None  # by default everything is on WEB_PORT


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RANKING_DEPTH", "abc", "RANKING_DEPTH"),
        ("RANKING_DEPTH", "0", "greater than 0"),
        ("WEB_PORT", "70000", "TCP port"),
        ("CMC_BASE_URL", "ftp://x", "http://"),
        ("LOG_LEVEL", "LOUD", "DEBUG, INFO"),
        ("KAFKA_BOOTSTRAP_SERVERS", "  ", "must not be empty"),
        ("WEB_OPS_PORT", "0", "WEB_OPS_PORT: must be a TCP port"),
        ("WEB_LIMIT_CONCURRENCY", "0", "greater than 0"),
        ("AT_MAX_WAITING", "-1", "AT_MAX_WAITING: must be 0 or more"),
        ("AT_TIMEOUT_SECONDS", "inf", "finite"),
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


@pytest.mark.parametrize("name", ["CMC_API_KEY", "CRYPTOCOMPARE_API_KEY"])
@pytest.mark.parametrize("raw", ["sekret-1\n", "sekret-1\r\n", "  sekret-1  ", "\tsekret-1\n"])
def test_whitespace_around_an_api_key_is_stripped(name, raw):
    settings = Settings.from_env({name: raw})
    assert settings.secrets == ("sekret-1",)


@pytest.mark.parametrize("name", ["CMC_API_KEY", "CRYPTOCOMPARE_API_KEY"])
@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("sek\nret-1", "a line break"),
        ("sek\r\nret-1\n", "a line break"),
        ("sek ret-1", "a space"),
        ("sek\tret-1", "whitespace"),
        ("kéy-sekret", "a non-ASCII character"),
        ("sek\x00ret-1", "a control character"),
    ],
)
def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(name, raw, kind):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: raw})
    message = str(caught.value)
    assert message.startswith(f"{name}: holds {kind}")
    assert "\n" not in message
    for part in ("sek", "ret-1", "kéy", "k\\xe9y"):
        assert part not in message


def test_a_component_reads_only_its_own_variables():
    env = {"WEB_PORT": "7000", "CMC_API_KEY": "sekret-cmc", "WORKER_OPS_PORT": "9200"}
    web = Settings.from_env(env, "web")
    assert (web.web_port, web.cmc_api_key, web.worker_ops_port) == (7000, "", 9103)
    assert "cmc_api_key" not in web.public_dict()
    assert "worker_ops_port" not in web.public_dict()
    assert Settings.from_env(env, "pricing").secrets == ("sekret-cmc",)


@pytest.mark.parametrize(
    ("name", "value", "component", "other"),
    [
        ("CMC_API_KEY", "sek ret", "pricing", "web"),
        ("WEB_PORT", "70000", "web", "worker"),
        ("WORKER_HEARTBEAT_SECONDS", "0", "worker", "replay"),
        ("PRICING_DEPTH", "0", "pricing", "ranking"),
    ],
)
def test_a_bad_value_stops_only_the_components_that_read_it(name, value, component, other):
    with pytest.raises(SettingsError, match=f"^{name}: "):
        Settings.from_env({name: value}, component)
    assert Settings.from_env({name: value}, other) == Settings(component=other)


def test_an_unknown_component_is_refused():
    with pytest.raises(ValueError, match="unknown component 'emulator'"):
        Settings.from_env({}, "emulator")  # type: ignore[arg-type]
