"""Importing tqsdk must not cut this package's loggers off from logging's root.

tqsdk's ``shinny_structlog`` replaces ``logging.Logger.root``/``manager``/``getLogger`` on
import; a logger made before it (every module logger of this package) then no longer
reaches the handlers Dagster, the CLI or pytest attach to the root. Checked in a fresh
interpreter, because the test session has imported tqsdk already (conftest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import logging
from ghtrader_assets.sources import tqsdk as source  # a module logger made before tqsdk
from ghtrader_assets.sources.tqsdk_api import import_tqsdk

import_tqsdk()
import_tqsdk("tqsdk.data_series")
# As Dagster, the CLI and caplog do: a handler put on the root after tqsdk was imported.
seen = []
handler = logging.Handler(logging.INFO)
handler.emit = lambda record: seen.append((record.name, record.getMessage()))
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
source.logger.warning("old logger heard")
logging.getLogger("ghtrader_assets.later").info("new logger heard")
logging.getLogger("TqApi").debug("tqsdk debug stays out")
print(sorted(seen))
"""


def test_importing_tqsdk_keeps_the_package_loggers_on_the_root_handlers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = result.stdout.strip().splitlines()[-1]
    assert seen == str(
        [
            ("ghtrader_assets.later", "new logger heard"),
            ("ghtrader_assets.sources.tqsdk", "old logger heard"),
        ]
    )
