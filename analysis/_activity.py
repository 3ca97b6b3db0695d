"""How long a search ran: the time since its first start without its idle gaps.

A search is busy while a trial trains: the row a trial reports at ``timestamp`` (Unix time, s)
covers ``[timestamp - time_this_iter_s, timestamp]``, its epoch (with the trial's start-up for
the first one). Trial starts, finishes and failures are busy instants. Between busy spans the
driver launches trials and the searcher proposes; a stretch of more than ``IDLE_GAP_S`` seconds
without any of them is an idle gap (the search was stopped and resumed or extended later) and
is not counted. Shorter stretches count as the search's own overhead.
"""

from __future__ import annotations

import numpy as np

#: Seconds without a training epoch, a trial start or a finish that make an idle gap.
IDLE_GAP_S = 60.0


def idle_gaps(spans: object, *, idle_gap_s: float = IDLE_GAP_S) -> np.ndarray:
    """``(g, 2)`` ``[begin, end]`` of the stretches longer than ``idle_gap_s`` covered by none of
    ``spans`` (``(n, 2)`` ``[begin, end]``, Unix s; a begin equal to its end is an instant),
    between the first span's begin and the last span's end, in time order."""
    spans = np.asarray(spans, dtype=float).reshape(-1, 2)
    spans = spans[np.all(np.isfinite(spans), axis=1)]
    if len(spans) < 2:
        return np.zeros((0, 2))
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    reach = np.maximum.accumulate(np.maximum(spans[:, 0], spans[:, 1]))  # end of the busy time so far
    begins, ends = reach[:-1], spans[1:, 0]
    idle = ends - begins > idle_gap_s
    return np.column_stack([begins[idle], ends[idle]])


def active_seconds(times: object, start: float, gaps: np.ndarray) -> np.ndarray:
    """Seconds from ``start`` to each of ``times`` (Unix s) minus the part of ``gaps`` (see
    :func:`idle_gaps`) before it; NaN where a time is unknown."""
    times = np.asarray(times, dtype=float)
    gaps = np.asarray(gaps, dtype=float).reshape(-1, 2)
    before = np.clip(np.minimum(times[..., np.newaxis], gaps[:, 1]) - gaps[:, 0], 0.0, None)
    return times - start - before.sum(axis=-1)
