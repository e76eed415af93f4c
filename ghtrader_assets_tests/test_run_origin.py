"""Demo runs look like the UI's own runs (issue 13.3).

``dagster dev -w workspace.yaml`` lists a run on the Overview timeline under its code
location, and *Re-execute* loads the job without "loaded from a different code location"
only when the run's origin is the workspace's location and its job snapshot is the one that
location serves. Checked against Dagster's own workspace loading (a code server started from
``workspace.yaml``, as the webserver does), without a webserver.
"""

from __future__ import annotations

import pytest
from dagster import DagsterInstance
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from ghtrader_assets.runner import (
    LOCATION_NAME,
    WORKSPACE_YAML,
    ensure_dagster_home,
    run_day,
    workspace_job_origin,
)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GHTRADER_UNIVERSE", "KQ.m@DCE.m")
    monkeypatch.setenv("GHTRADER_START_DATE", "2026-03-02")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return ensure_dagster_home(tmp_path / "dagster_home")


def test_origin_is_read_from_the_workspace_file():
    origin = workspace_job_origin("ingest_daily")
    assert WORKSPACE_YAML.exists()
    assert origin.job_name == "ingest_daily"
    assert origin.repository_origin.get_label() == f"__repository__@{LOCATION_NAME}"
    target = origin.repository_origin.code_location_origin.loadable_target_origin
    assert (target.module_name, target.attribute) == ("ghtrader_assets.definitions", "defs")


def test_origin_without_a_workspace_file_names_the_same_location(tmp_path):
    origin = workspace_job_origin("ingest_daily", tmp_path / "absent.yaml")
    assert origin.repository_origin.get_label() == f"__repository__@{LOCATION_NAME}"


def test_a_runner_run_matches_what_the_workspace_serves(home):
    day = run_day("2026-03-03")
    assert day.success
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(day.run_id)
        assert run is not None and run.remote_job_origin is not None
        with WorkspaceProcessContext(
            instance, WorkspaceFileTarget(paths=[str(WORKSPACE_YAML)])
        ) as workspace:
            request = workspace.create_request_context()
            location = request.get_code_location(LOCATION_NAME)
            repo = location.get_repository("__repository__")
            job = repo.get_full_job(run.job_name)
            # the UI's "origin-and-snapshot" match: no re-execute warning
            assert job.get_remote_origin().get_id() == run.remote_job_origin.get_id()
            assert job.identifying_job_snapshot_id == run.job_snapshot_id
        # the timeline and run filters find it under the location
        label = instance.get_run_tags(tag_keys=[".dagster/repository"])
        assert (".dagster/repository", {f"__repository__@{LOCATION_NAME}"}) in [
            (k, set(v)) for k, v in label
        ]
