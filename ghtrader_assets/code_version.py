"""The code version recorded in manifests and on assets.

A content hash of the package's own source files: it changes exactly when the code that
produced a partition changes, works from a wheel as well as a checkout, and needs no git.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import ghtrader_assets


@lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+<12 hex digits of the source hash>``."""
    root = Path(ghtrader_assets.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in {".py", ".csv", ".json"} and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return f"{ghtrader_assets.__version__}+{digest.hexdigest()[:12]}"
