"""The host-local ``datetime`` text of DataDownloader files from tqsdk 3.0.0-3.4.10.

``tqsdk.tools.DataDownloader`` writes two time columns: ``datetime`` (text) and
``datetime_nano`` (ns since the epoch, the time actually used). Releases 3.0.0 to 3.4.10
formatted the text with the *host's* time zone, so a file downloaded on a machine outside
China time carries ``datetime`` shifted from Asia/Shanghai by the host's UTC offset, while
``datetime_nano`` is right. Such files are sound: this module recognises them so the CSV
reader can accept them (and say so) instead of rejecting every row.

A file qualifies when every row's text equals ``datetime_nano`` shifted by a UTC offset a
real time zone has (a whole number of quarter hours within UTC-12..UTC+14): one offset for
the whole file, or two that are 30 or 60 minutes apart and switch once in time order (a
daylight-saving change inside the file). Anything else stays an error: the text and the
nanoseconds then disagree in a way no host zone explains (e.g. one edited row).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

_QUARTER_HOUR_NS = 15 * 60 * 1_000_000_000
_MIN_OFFSET_NS = -12 * 3600 * 1_000_000_000
_MAX_OFFSET_NS = 14 * 3600 * 1_000_000_000


def host_local_offsets(text_wall_ns: np.ndarray, nanos: np.ndarray) -> tuple[int, ...] | None:
    """The host UTC offsets (minutes) that explain a file's ``datetime`` text, or ``None``.

    ``text_wall_ns`` is the ``datetime`` text parsed as a naive wall time (ns as if UTC);
    ``nanos`` the ``datetime_nano`` column.
    """
    if len(text_wall_ns) == 0 or len(text_wall_ns) != len(nanos):
        return None
    diff = np.asarray(text_wall_ns, dtype=np.int64) - np.asarray(nanos, dtype=np.int64)
    if (diff % _QUARTER_HOUR_NS).any():
        return None
    if diff.min() < _MIN_OFFSET_NS or diff.max() > _MAX_OFFSET_NS:
        return None
    offsets = np.unique(diff)
    if len(offsets) == 2:
        # A daylight-saving change: offsets 30 or 60 minutes apart, switching once in time.
        gap = int(offsets[1] - offsets[0]) // 60_000_000_000
        in_time = diff[np.argsort(np.asarray(nanos), kind="stable")]
        if gap not in (30, 60) or np.count_nonzero(np.diff(in_time)) != 1:
            return None
    elif len(offsets) > 2:
        return None
    return tuple(int(o // 60_000_000_000) for o in offsets)


def describe_offsets(offsets: tuple[int, ...]) -> str:
    """``UTC+01:00/UTC+02:00`` for a log line."""

    def one(minutes: int) -> str:
        sign = "+" if minutes >= 0 else "-"
        h, m = divmod(abs(minutes), 60)
        return f"UTC{sign}{h:02d}:{m:02d}"

    return "/".join(one(o) for o in offsets)


def accept_host_local(path: object, text_wall_ns: np.ndarray, nanos: np.ndarray) -> bool:
    """Whether a file whose ``datetime`` text disagrees with Asia/Shanghai is a tqsdk
    3.0-3.4.10 file written on a host in another zone; logs what was accepted."""
    offsets = host_local_offsets(text_wall_ns, nanos)
    if offsets is None:
        return False
    logger.warning(
        "%s: the datetime text is in host-local time %s, not Asia/Shanghai (a DataDownloader "
        "file from tqsdk 3.0.0-3.4.10 written outside China time); datetime_nano is "
        "consistent with it and is used",
        path,
        describe_offsets(offsets),
    )
    return True
