import asyncio
import logging
import subprocess
import sys

import pytest

from topcoins.emulator import main as main_module
from topcoins.emulator.app import EmulatorConfig, create_app


async def test_lifespan_runs_the_drift_and_stops_it(caplog):
    app = create_app(EmulatorConfig(tick_seconds=0.01))
    market = app.state.emulator.market
    with caplog.at_level(logging.INFO, logger="topcoins.emulator.app"):
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.1)
            assert market.ticks > 0
        stopped_at = market.ticks
        await asyncio.sleep(0.03)
    assert market.ticks == stopped_at
    assert [r.getMessage() for r in caplog.records] == ["emulator ready", "emulator stopped"]


async def test_tick_zero_disables_the_drift():
    app = create_app(EmulatorConfig(tick_seconds=0))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.03)
    assert app.state.emulator.market.ticks == 0


def test_run_serves_with_uvicorn_and_never_logs_keys(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(main_module.uvicorn, "run", lambda app, **kw: served.update(kw, app=app))
    config = EmulatorConfig(port=7001, cmc_api_key="cmc-secret", cryptocompare_api_key="cc-sec")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        main_module.run(config)
    finally:
        root.handlers[:], root.level = handlers, level
    assert served["port"] == 7001 and served["access_log"] is False
    assert served["app"].state.emulator.config is config
    err = capsys.readouterr().err
    assert '"emulator starting"' in err
    assert "cmc-secret" not in err and "cc-sec" not in err


@pytest.mark.e2e  # runs the emulator in another process
def test_python_dash_m_reports_bad_settings():
    result = subprocess.run(
        [sys.executable, "-m", "topcoins.emulator"],
        env={"EMULATOR_PORT": "nope", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "EMULATOR_PORT" in result.stderr
