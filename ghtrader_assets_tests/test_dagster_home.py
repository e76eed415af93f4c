"""Where the Dagster instance lives when ``ghtrader`` chooses it (review findings).

A relative ``DAGSTER_HOME`` (``DAGSTER_HOME=.dagster ghtrader demo``) was exported as is and
Dagster then refused it with a stack trace and exit code 1; a ``DAGSTER_HOME`` naming a
file failed the same way. Now the first is made absolute and the second is a one-line user
error (exit code 2) naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from ghtrader_assets import cli
from ghtrader_assets.runner import ensure_dagster_home


def test_a_relative_dagster_home_is_made_absolute_and_opens(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "rel/home")
    home = ensure_dagster_home(tmp_path / "unused")
    assert home == tmp_path / "rel" / "home"
    assert os.environ["DAGSTER_HOME"] == str(tmp_path / "rel" / "home")
    with DagsterInstance.get() as instance:  # Dagster refuses a relative home
        assert instance.get_runs() == []
    # The pooled storages put their files under the instance folder, not elsewhere.
    assert (home / "history" / "runs.db").exists()
    assert not (tmp_path / "unused").exists()


def test_a_dagster_home_that_is_a_file_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    not_a_folder = tmp_path / "dagster_home"
    not_a_folder.write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(not_a_folder))
    monkeypatch.setenv("GHTRADER_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["demo", "--days", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ghtrader: DAGSTER_HOME=") and str(not_a_folder) in err
    assert "\n" not in err and "Traceback" not in err
    assert Path(not_a_folder).is_file()  # left as it was
