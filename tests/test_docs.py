"""The README's generated tables and .env.example match the code."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_settings_and_topic_tables_are_up_to_date(capsys):
    path = ROOT / "scripts" / "docs_tables.py"
    spec = importlib.util.spec_from_file_location("docs_tables", path)
    assert spec is not None and spec.loader is not None
    docs_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs_tables)
    assert docs_tables.main(["--check"]) == 0, capsys.readouterr().err


def test_the_readme_starts_with_the_two_commands_that_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["./scripts/dev", "./scripts/test"]
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_states_the_stale_thresholds_the_defaults_give():
    from topcoins.dev import DEV_POLL_SECONDS
    from topcoins.producers.jobs import pricing_job, ranking_job
    from topcoins.settings import Settings
    from topcoins.web.freshness import STALE_AFTER_POLLS

    settings = Settings()
    pricing, ranking = pricing_job(settings), ranking_job(settings)
    timeout = settings.http_timeout_seconds
    freshness = (ROOT / "README.md").read_text().split("## Freshness", 1)[1].split("\n## ")[0]
    assert f"the pricing poll to {pricing.interval:.0f} s" in freshness
    assert f"stale after {STALE_AFTER_POLLS * ranking.interval + timeout:.0f} s" in freshness
    prices = f"{STALE_AFTER_POLLS * pricing.interval + timeout:,.0f}"
    assert f"the prices are stale after {prices} s" in freshness
    poll = float(DEV_POLL_SECONDS)  # how often topcoins dev polls the emulator
    assert f"both poll every {poll:g} s: {STALE_AFTER_POLLS * poll + timeout:.0f} s" in freshness
