"""``ghtrader demo | status | coverage`` with ``GHTRADER_STORE=questdb``.

Against the in-memory stand-in everywhere (``questdb_cli_driver``: every command, one
process), and, marked ``questdb``, the real CLI against a live server when
``GHTRADER_QDB_HOST`` is set (tables prefixed ``ghtrader_test_<uuid8>_``, dropped after).
An unreachable server must fail fast with one line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ghtrader_assets_tests.cli_process import ROOT, run_ghtrader, symbol_rows

UNIVERSE = "KQ.m@SHFE.cu,KQ.m@DCE.m"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHTRADER_", "DAGSTER_HOME"))}
    env.update(
        {
            "GHTRADER_DATA_DIR": str(tmp_path / "data"),
            "GHTRADER_UNIVERSE": UNIVERSE,
            "GHTRADER_START_DATE": "2025-01-02",
            "GHTRADER_STORE": "questdb",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def _sections(stdout: str) -> dict[str, str]:
    """Output of each command of the driver, keyed by the command's name."""
    parts = re.split(r"^=== ghtrader (\w+).*$", stdout, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_command_works_on_the_questdb_stand_in(tmp_path: Path) -> None:
    env = _env(tmp_path, GHTRADER_QDB_HOST="qdb.stand-in.test", GHTRADER_QDB_PASSWORD="pw-from-env")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ghtrader_assets_tests.questdb_cli_driver",
            "demo",
            "--days",
            "1",
            "--",
            "status",
            "--",
            "coverage",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = _sections(proc.stdout)
    assert set(out) == {"demo", "status", "coverage"}
    # Every command built its store from the environment's values (inside runs and out).
    for text in out.values():
        stores = re.findall(r"^=== store (.*)$", text, flags=re.M)
        assert stores and all(
            s == "host=qdb.stand-in.test pg_port=8812 password_from_env=True" for s in stores
        ), stores
        assert "=== exit 0" in text
    demo = out["demo"]
    assert "store=questdb" in demo and "questdb://qdb.stand-in.test:8812" in demo
    assert "ticks_main_l5_current" in demo
    rows = symbol_rows(demo)
    assert len(rows) == 2 and all(r.rstrip().endswith("| yes |") for r in rows), demo
    assert "success" in demo and "FAILED" not in demo
    status = symbol_rows(out["status"])
    assert {r.split("|")[1].strip() for r in status} == set(UNIVERSE.split(","))
    assert "store=questdb" in out["status"]
    coverage = out["coverage"]
    assert "days_present" in coverage
    assert len(symbol_rows(coverage)) == 2
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["status", "coverage", "demo"])
def test_an_unreachable_server_fails_fast_with_one_line(tmp_path: Path, command: str) -> None:
    port = _free_port()  # nothing listens there
    env = _env(
        tmp_path,
        GHTRADER_QDB_HOST="127.0.0.1",
        GHTRADER_QDB_PG_PORT=str(port),
        GHTRADER_QDB_ILP_PORT=str(port),
    )
    started = time.monotonic()
    proc = run_ghtrader(command, env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for part in (
        f"127.0.0.1:{port}",
        "GHTRADER_QDB_HOST",
        "GHTRADER_QDB_PG_PORT",
        "nothing was written",
    ):
        assert part in lines[0]
    # Interpreter and Dagster imports dominate on a loaded 2-core machine; the probe itself
    # gives up after 3 s per port (a refused port answers at once).
    assert elapsed < 60, elapsed
    assert not list((tmp_path / "data").glob("**/*.json"))  # no manifest, no report


# -- live server ---------------------------------------------------------------------------

LIVE = pytest.mark.skipif(
    not os.environ.get("GHTRADER_QDB_HOST", "").strip(),
    reason="needs a live QuestDB: set GHTRADER_QDB_HOST (and GHTRADER_QDB_* as needed)",
)


@pytest.mark.questdb
@LIVE
def test_every_command_works_against_a_live_server(tmp_path: Path) -> None:
    from ghtrader_assets.schema import all_tables
    from ghtrader_assets.stores.questdb import QuestDBSettings, QuestDBStore
    from ghtrader_assets.stores.questdb.registry import PARTITION_LOG

    prefix = f"ghtrader_test_{uuid.uuid4().hex[:8]}_"
    keep = {k: v for k, v in os.environ.items() if k.startswith("GHTRADER_QDB_")}
    env = _env(tmp_path, **keep, GHTRADER_QDB_TABLE_PREFIX=prefix)
    try:
        outputs = {}
        for command in (["demo", "--days", "2"], ["status"], ["coverage"]):
            proc = run_ghtrader(*command, env=env, cwd=tmp_path, timeout=900)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            assert "Traceback" not in proc.stderr and "__dealloc__" not in proc.stderr
            outputs[command[0]] = proc.stdout
        rows = symbol_rows(outputs["demo"])
        assert len(rows) == 4 and all(r.rstrip().endswith("| yes |") for r in rows)
        assert f"{prefix}ticks_main_l5_current" in outputs["demo"]
        assert len(symbol_rows(outputs["status"])) == 2
        cov = symbol_rows(outputs["coverage"])
        assert len(cov) == 2 and all("| 2 |" in r for r in cov), outputs["coverage"]
    finally:
        cleaner = QuestDBStore(dataclasses.replace(QuestDBSettings.from_env(), table_prefix=prefix))
        try:
            for spec in [*all_tables(), PARTITION_LOG]:
                cleaner.drop_table(spec)
        finally:
            cleaner.close()
