"""`ghtrader demo` and `ghtrader coverage` as a user runs them, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from ghtrader_assets_tests.cli_process import cli_env, run_ghtrader, symbol_rows


def _ghtrader(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(
        GHTRADER_DATA_DIR=str(tmp_path / "data"),
        GHTRADER_UNIVERSE="KQ.m@SHFE.cu,KQ.m@CZCE.SR",
        GHTRADER_START_DATE="2025-01-02",
    )
    return run_ghtrader(*args, env=env, cwd=tmp_path)


def test_demo_materializes_days_and_prints_where_to_look(tmp_path):
    proc = _ghtrader(tmp_path, "demo", "--days", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    data = tmp_path / "data"
    assert str(data / "store") in out and "dagster dev -w workspace.yaml" in out
    rows = symbol_rows(out)
    assert len(rows) == 4  # 2 symbols x 2 days
    # one clearly labelled defective day (first symbol, first of the two days): blocked,
    # no manifest; every other symbol-day passed with its manifest
    (bad,) = [r for r in rows if "(DEFECT, on purpose)" in r]
    assert bad.startswith("| KQ.m@SHFE.cu |") and "| blocked CROSSED_BOOK | no |" in bad
    assert all(line.rstrip().endswith("| pass | yes |") for line in rows if line != bad)
    assert "FAILED as planned" in out and "DEFECTIVE DAY (on purpose): KQ.m@SHFE.cu" in out
    assert "Checks -> book_integrity -> Partitions" in out
    assert "Partitions start at GHTRADER_START_DATE=2025-01-02" in out
    manifests = sorted((data / "manifests").rglob("*.json"))
    assert len(manifests) == 3
    assert json.loads(manifests[0].read_text())["source"] == "simulated"
    report = json.loads((data / "reports" / "coverage.json").read_text())["symbols"]
    assert {r["symbol"]: r["days_present"] for r in report} == {
        "KQ.m@SHFE.cu": 2,
        "KQ.m@CZCE.SR": 2,
    }
    # The runs are recorded in the instance the README points `dagster dev` at, and the
    # source pool limit is set there.
    os.environ["DAGSTER_HOME"] = str(data / "dagster_home")
    try:
        with DagsterInstance.get() as instance:
            runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
            assert len(runs) >= 2  # the clean day and the coverage report
            # every run carries the workspace's code-location origin, as UI-launched runs do
            for run in instance.get_runs():
                assert run.remote_job_origin is not None, run.job_name
                assert run.remote_job_origin.repository_origin.get_label() == (
                    "__repository__@ghtrader_assets"
                )
            info = instance.event_log_storage.get_concurrency_info("simulated")
            assert info.slot_count == 4
    finally:
        del os.environ["DAGSTER_HOME"]
    cov = _ghtrader(tmp_path, "coverage")
    assert cov.returncode == 0, cov.stderr
    assert "KQ.m@CZCE.SR" in cov.stdout and "days_present" in cov.stdout


def test_bad_setting_exits_with_a_clear_message(tmp_path):
    proc = _ghtrader(tmp_path, "--data-dir", str(tmp_path), "coverage")
    assert proc.returncode == 0
    env = cli_env(drop=(), GHTRADER_STORE="oracle")
    env_bad = run_ghtrader("coverage", env=env, cwd=tmp_path, timeout=120)
    assert env_bad.returncode == 2
    assert "GHTRADER_STORE='oracle'" in env_bad.stderr
    assert "Traceback" not in env_bad.stderr
