"""Shared pytest fixtures for ghtrader-assets (keep minimal; add fixtures as modules need them).

Imports of the package stay inside the fixtures: the repository is put on ``sys.path`` first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    from dagster import DagsterInstance

    from ghtrader_assets.sources.base import RollEntry
    from ghtrader_assets.sources.csv import CsvSource

# Make the repository importable without an editable install.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

# Importing tqsdk replaces logging's root and manager (shinny_structlog); the package's own
# import puts them back. Done once here, before any test module imports tqsdk directly, so
# pytest's caplog sees every logger whichever test runs first.
from ghtrader_assets.sources.tqsdk_api import import_tqsdk  # noqa: E402

import_tqsdk()


@pytest.fixture(scope="module")
def cu_day() -> tuple[RollEntry, pd.DataFrame]:
    """A simulated KQ.m@SHFE.cu day (2026-01-07, seed 3): its roll entry and ticks."""
    from ghtrader_assets_tests.csv_files import simulated_day

    return simulated_day()


@pytest.fixture()
def small_csv(tmp_path: Path, cu_day) -> tuple[CsvSource, RollEntry, Path]:
    """A 30-tick cu file and its roll schedule under ``tmp_path``; tests then corrupt it."""
    from ghtrader_assets_tests.csv_files import small_csv_day

    return small_csv_day(tmp_path, *cu_day)


@pytest.fixture()
def instance() -> Iterator[DagsterInstance]:
    """An in-memory Dagster instance for ``execute_in_process`` runs. Modules whose tests
    need an on-disk one (sensors, automation, backfills) define their own ``instance``."""
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as inst:
        yield inst
