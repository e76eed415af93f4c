"""Small vectorised helpers over row arrays split into contiguous *segments*.

A segment is a stretch of rows that follow each other in time with nothing left out: the
whole day, or one block of a sample. Sequential rules compare a row only with earlier rows
of its own segment, so sampling can never invent a decrease or a run across a cut.
"""

from __future__ import annotations

import numpy as np

Segments = list[tuple[int, int]]
#: ``NaT`` as int64 nanoseconds.
NAT_NS = np.iinfo(np.int64).min


def segments_of(n: int, starts: np.ndarray | None) -> Segments:
    """``[(start, end), ...]`` covering ``range(n)``, cut at ``starts`` (0 always included)."""
    cuts = {0} if starts is None else {0, *np.asarray(starts, dtype=np.int64).tolist()}
    bounds = sorted(c for c in cuts if 0 <= c < n) + [n]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def segment_ids(n: int, segments: Segments) -> np.ndarray:
    """The segment number of every row."""
    ids = np.zeros(n, dtype=np.int64)
    for k, (a, b) in enumerate(segments):
        ids[a:b] = k
    return ids


def prev_running_max(x: np.ndarray, segments: Segments) -> np.ndarray:
    """For each row, the max of the earlier non-NaN rows of its segment (NaN if none)."""
    out = np.full(x.shape, np.nan)
    for a, b in segments:
        if b - a > 1:
            out[a + 1 : b] = np.fmax.accumulate(x[a : b - 1])
    return out


def prev_value(x: np.ndarray, segments: Segments) -> np.ndarray:
    """For each row, the previous row's value in its segment (NaN for a segment's first)."""
    out = np.full(x.shape, np.nan)
    for a, b in segments:
        out[a + 1 : b] = x[a : b - 1]
    return out


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) positions of the runs of True in ``mask``."""
    padded = np.concatenate(([0], np.asarray(mask, dtype=np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def longest_run(mask: np.ndarray, segments: Segments) -> tuple[int, int]:
    """Length and start of the longest True run that stays inside one segment."""
    best, where = 0, -1
    for a, b in segments:
        starts, ends = true_runs(mask[a:b])
        if starts.size:
            lengths = ends - starts
            k = int(np.argmax(lengths))
            if lengths[k] > best:
                best, where = int(lengths[k]), a + int(starts[k])
    return best, where
