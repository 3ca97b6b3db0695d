"""``DIR/analysis/final.csv``: the final numbers of a search's trials, measured on the test split.

One row per trial and attack (``robnas evaluate`` replaces a trial's row for the attack it
runs): ``trial_id``, ``clean_acc`` and ``robust_acc`` (fractions in [0, 1]), ``attack``, ``eps``
(a fraction of 1, not 1/255 units), ``images`` (how many test images), ``split`` (``test``),
``epoch`` and ``checkpoint`` (the checkpoint measured) and ``seed`` (of the attack's random
starts). The file is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from robnas.trainables._layout import atomic_write_text

ANALYSIS_DIR = "analysis"
FINAL_FILE = "final.csv"
COLUMNS = ("trial_id", "clean_acc", "robust_acc", "attack", "eps", "images", "split", "epoch",
           "checkpoint", "seed")
#: The attacks of ``robnas evaluate``, weakest first: robnas's PGD, APGD-CE + APGD-T, AutoAttack.
ATTACKS = ("pgd", "apgd", "autoattack")
_TEXT = {"trial_id": str, "attack": str, "split": str, "checkpoint": str}


def final_path(run: str | Path) -> Path:
    return Path(run) / ANALYSIS_DIR / FINAL_FILE


def read_final(run: str | Path) -> pd.DataFrame:
    """The rows of ``run``'s ``final.csv`` (no rows if there is none); ValueError if damaged."""
    file = final_path(run)
    if not file.is_file():
        return pd.DataFrame({c: pd.Series(dtype=_TEXT.get(c, float)) for c in COLUMNS})
    try:
        frame = pd.read_csv(file, dtype=_TEXT, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"cannot read {file}: {' '.join(str(error).split())[:200]}") from None
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"{file} is not a robnas final.csv (no column {', '.join(missing)}); "
                         "move it away to evaluate again")
    return frame[list(COLUMNS)]


def write_final(run: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` (``COLUMNS``) as ``run``'s ``final.csv``, sorted by trial and attack."""
    frame = frame[list(COLUMNS)].sort_values(["trial_id", "attack"], kind="stable")
    return atomic_write_text(final_path(run), frame.to_csv(index=False, lineterminator="\n"))


def find_row(frame: pd.DataFrame, trial_id: str, attack: str) -> int | None:
    """The index of ``trial_id``'s row for ``attack`` in ``frame``, or None."""
    hits = frame.index[(frame["trial_id"] == trial_id) & (frame["attack"] == attack)]
    return hits[0] if len(hits) else None


def is_current(row: pd.Series, *, eps: float, images: int, checkpoint: str) -> bool:
    """Whether ``row`` measured ``checkpoint`` at ``eps`` (a fraction of 1) on ``images`` images."""
    return (math.isclose(float(row["eps"]), eps, rel_tol=1e-9, abs_tol=1e-12)
            and int(row["images"]) == images and str(row["checkpoint"]) == checkpoint)


def strongest_attack(frame: pd.DataFrame) -> str | None:
    """The strongest attack with a row in ``frame`` (AutoAttack > APGD > PGD); None if empty."""
    present = [a for a in ATTACKS if (frame["attack"] == a).any()]
    return present[-1] if present else None
