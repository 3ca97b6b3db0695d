"""Selection numbers beside final numbers, and the front and knee over the final numbers.

Selection numbers are what a search measured every epoch and selected on (``clean_acc``,
``robust_acc`` of ``trials``); final numbers are those of ``final.csv``, measured once on the
test split by ``robnas evaluate`` with the strongest attack it holds (AutoAttack > APGD > PGD).
The gap is selection minus final: positive when the selection numbers were optimistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from robnas.analysis._final import strongest_attack
from robnas.analysis._front import FrontResult, analyze_trials

#: The objectives final.csv measures again; any other objective keeps the search's value.
FINAL_METRICS = ("clean_acc", "robust_acc")
_FRONT_COLUMNS = ("excluded", "eligible", "rank", "pareto", "knee")


@dataclass(frozen=True, eq=False)
class FinalComparison:
    """``table``: one row per trial with final numbers (see :func:`compare_final`);
    ``result``: the front over those trials on their final numbers; ``summary``: JSON-ready."""

    attack: str
    table: pd.DataFrame
    result: FrontResult
    summary: dict[str, Any]


def compare_final(
    result: FrontResult,
    final: pd.DataFrame,
    *,
    max_epochs: int,
    reference_point: Sequence[float],
    all_fidelities: bool = False,
) -> FinalComparison | None:
    """Compare ``result`` (the search's front) with the rows of ``final`` (``final.csv``);
    None if ``final`` has no row of a trial of ``result``.

    ``table`` columns: ``trial_id``, ``arch``, ``epoch``; per final metric ``m``: ``m`` (selection),
    ``final_m`` and ``m_gap``; ``eps`` (fraction of 1), ``images``, ``final_pareto``,
    ``final_knee``. The final front is over the trials eligible for the search's front that
    have final numbers, with ``FINAL_METRICS`` replaced by them.
    """
    trials = result.trials
    known = final[final["trial_id"].isin(trials["trial_id"].astype(str))]
    attack = strongest_attack(known)
    if attack is None:
        return None
    rows = known[known["attack"] == attack].drop_duplicates("trial_id", keep="last").set_index("trial_id")
    ids = trials["trial_id"].astype(str)
    evaluated = trials[ids.isin(rows.index)].drop(columns=list(_FRONT_COLUMNS))
    order = evaluated["trial_id"].astype(str).to_numpy()
    metrics = [m for m in FINAL_METRICS if m in evaluated]
    on_final = evaluated.copy()
    for m in metrics:
        on_final[m] = rows.loc[order, m].to_numpy(float)
    front = analyze_trials(on_final, result.objectives, max_epochs=max_epochs, reference_point=reference_point,
                           all_fidelities=all_fidelities)
    arch = evaluated["arch"].astype(str).to_numpy() if "arch" in evaluated else ""
    table = pd.DataFrame({"trial_id": order, "arch": arch, "epoch": rows.loc[order, "epoch"].to_numpy(int)})
    for m in metrics:
        table[m] = evaluated[m].to_numpy(float)
        table[f"final_{m}"] = rows.loc[order, m].to_numpy(float)
        table[f"{m}_gap"] = table[m] - table[f"final_{m}"]
    table["eps"] = rows.loc[order, "eps"].to_numpy(float)
    table["images"] = rows.loc[order, "images"].to_numpy(int)
    table["final_pareto"] = front.trials["pareto"].to_numpy(bool)
    table["final_knee"] = front.trials["knee"].to_numpy(bool)
    summary = {
        "split": "test",
        "attack": attack,
        "eps": sorted({float(v) for v in table["eps"]}),
        "images": sorted({int(v) for v in table["images"]}),
        "n_evaluated": len(table),
        "n_eligible": front.summary["n_eligible"],
        "final_metrics": metrics,
        "n_pareto": front.summary["n_pareto"],
        "pareto": front.summary["pareto"],
        "knee": front.summary["knee"],
        "hypervolume": front.summary["hypervolume"],
        "mean_gap": {m: _mean(table[f"{m}_gap"]) for m in metrics},
    }
    return FinalComparison(attack, table, front, summary)


def _mean(values: pd.Series) -> float | None:
    finite = values.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None
