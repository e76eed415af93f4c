"""Shared pytest fixtures for ghtrader-assets (keep minimal; add fixtures as modules need them)."""

from __future__ import annotations

import sys
from pathlib import Path

# Make the repository importable without an editable install.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
