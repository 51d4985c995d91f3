import pytest

from topcoins.emulator.config import EmulatorConfig
from topcoins.settings import SettingsError


def test_defaults():
    config = EmulatorConfig.from_env({})
    assert (config.host, config.port, config.tick_seconds) == ("0.0.0.0", 6668, 1.0)
    assert config.cmc_api_key == config.cryptocompare_api_key == ""


def test_reads_emulator_variables():
    config = EmulatorConfig.from_env(
        {
            "EMULATOR_HOST": "127.0.0.1",
            "EMULATOR_PORT": "7000",
            "EMULATOR_SEED": "7",
            "EMULATOR_TICK_SECONDS": "0",
            "EMULATOR_CMC_API_KEY": "cmc-secret",
            "EMULATOR_CRYPTOCOMPARE_API_KEY": "cc-secret",
            "EMULATOR_LOG_LEVEL": "debug",
        }
    )
    assert config == EmulatorConfig("127.0.0.1", 7000, 7, 0.0, "cmc-secret", "cc-secret", "DEBUG")


@pytest.mark.parametrize(
    ("name", "value"),
    [("EMULATOR_PORT", "http"), ("EMULATOR_PORT", "70000"), ("EMULATOR_TICK_SECONDS", "-1")],
)
def test_rejects_bad_values(name, value):
    with pytest.raises(SettingsError, match=name):
        EmulatorConfig.from_env({name: value})


def test_keys_never_show():
    config = EmulatorConfig(cmc_api_key="cmc-secret", cryptocompare_api_key="cc-secret")
    assert "secret" not in repr(config)
    assert "secret" not in str(config.public_dict())
    assert config.secrets == ("cmc-secret", "cc-secret")


def test_reads_universe_sizes():
    config = EmulatorConfig.from_env({"EMULATOR_CC_RANKED": "1000", "EMULATOR_CMC_LISTED": "5000"})
    assert (config.cc_ranked, config.cmc_listed) == (1000, 5000)


@pytest.mark.parametrize("name", ["EMULATOR_CC_RANKED", "EMULATOR_CMC_LISTED"])
def test_rejects_bad_universe_sizes(name):
    with pytest.raises(SettingsError, match=name):
        EmulatorConfig.from_env({name: "0"})
