"""Every subcommand's --help says what it reads, from the one settings table."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from topcoins.cli import _parser
from topcoins.emulator.config import EmulatorConfig
from topcoins.settings import ENV_DOCS
from topcoins.usage import COMMANDS, variables

ROOT = Path(__file__).resolve().parents[2]
# Where each command's code reads its settings (``settings.<field>``).
SOURCES = {
    "pricing": ["producers"],
    "ranking": ["producers"],
    "worker": ["streams"],
    "web": ["web"],
}
# Settings properties and methods that are not a variable of their own.
DERIVED = {"topics", "secrets", "kafka_servers", "public_dict"}


def help_text(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        _parser().parse_args([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [*COMMANDS])
def test_each_help_says_what_it_does_and_names_every_variable_it_reads(command, capsys):
    text = help_text(command, capsys)
    assert COMMANDS[command].description.split()[0] in text
    rows = variables(command)
    assert rows, f"{command} reads no variable?"
    for name, default, _ in rows:
        assert (f"  {name}={default}\n" if default else f"  {name} (empty)\n") in text


@pytest.mark.parametrize("command", ["pricing", "ranking", "worker", "web", "emulator", "dev"])
def test_each_service_help_names_its_ports(command, capsys):
    assert "\nports: " in help_text(command, capsys)


def test_every_setting_is_read_by_some_command():
    read = {name for command in COMMANDS for name, _, _ in variables(command)}
    assert {spec.name for spec in ENV_DOCS.values()} - read == set()


def _fields_read(folder: str) -> Iterator[str]:
    for path in (ROOT / folder).glob("*.py"):
        yield from re.findall(r"\bsettings\.([a-z_]+)\b", path.read_text())


@pytest.mark.parametrize("folder", sorted({f for folders in SOURCES.values() for f in folders}))
def test_the_help_of_the_commands_whose_code_reads_a_setting_names_it(folder):
    """A setting the code reads but the help of its commands does not name fails here."""
    commands = [command for command, folders in SOURCES.items() if folder in folders]
    named = {name for command in commands for name, _, _ in variables(command)}
    read = {field for field in _fields_read(folder) if field not in DERIVED}
    assert {ENV_DOCS[field].name for field in read} - named == set()


class _Recording(dict):
    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def test_the_emulator_help_names_every_variable_the_emulator_reads(capsys):
    env = _Recording()
    EmulatorConfig.from_env(env)
    listed = help_text("emulator", capsys).split("\nenvironment (default):\n", 1)[1]
    names = set(re.findall(r"^  ([A-Z_]+)[= ]", listed, flags=re.MULTILINE))
    assert env.asked, "EmulatorConfig.from_env read nothing through get()"
    assert env.asked - names == set()


def test_the_emulator_help_shows_how_to_make_a_provider_fail_and_recover(capsys):
    text = help_text("emulator", capsys)
    fail, restore = re.findall(r"curl -X POST \S+/_emulator/faults -d '([^']+)'", text)
    assert '"mode": "server_error"' in fail
    assert '"mode": "none"' in restore


def test_replay_format_and_broker_port_have_help_and_defaults(capsys):
    assert re.search(
        r"--format \{json,csv,table\}\s+rows as .*table, the default", help_text("replay", capsys)
    )
    assert re.search(
        r"--port PORT\s+port it listens on.*default: 9092", help_text("broker", capsys)
    )


def test_a_command_lists_only_the_variables_declared_for_it():
    names = [name for name, _, _ in variables("ranking")]
    assert "RANKING_DEPTH" in names and "CRYPTOCOMPARE_API_KEY" in names
    assert "CMC_API_KEY" not in names and "WEB_PORT" not in names
