"""``ghtrader`` as a user runs it: a fresh process of ``python -m ghtrader_assets.cli``.

A fresh process is what proves the console entry point (one line and exit code 2 on a
user error, no traceback) and what keeps a command's Dagster instance and settings apart
from the test process's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What ``ghtrader import`` must not inherit: it chooses its universe, source and folder.
IMPORT_DROPS = ("DAGSTER_HOME", "GHTRADER_UNIVERSE", "GHTRADER_SOURCE", "GHTRADER_CSV_DIR")


def cli_env(*, drop: Iterable[str] = ("DAGSTER_HOME",), **values: str) -> dict[str, str]:
    """This process's environment with the repository importable, ``values`` set and the
    names in ``drop`` removed (by default ``DAGSTER_HOME``: the command must make its own
    under ``GHTRADER_DATA_DIR`` rather than share the caller's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **values}
    for name in drop:
        env.pop(name, None)
    return env


def start_ghtrader(
    *args: str, env: Mapping[str, str], cwd: Path, **popen: object
) -> subprocess.Popen:
    """Start ``ghtrader ARGS`` and return at once (for a test that signals or kills it);
    ``popen`` goes to :class:`subprocess.Popen` (where its output goes)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ghtrader_assets.cli", *args], cwd=cwd, env=dict(env), **popen
    )


def run_ghtrader(
    *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``ghtrader ARGS`` to completion and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "ghtrader_assets.cli", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def symbol_rows(output: str) -> list[str]:
    """The rows of the per-symbol tables a command prints (``| KQ.m@... |``), in order."""
    return [line for line in output.splitlines() if line.startswith("| KQ.m@")]
