"""Multi-objective asynchronous successive halving (MO-ASHA) as a Ray Tune scheduler.

Asynchronous successive halving (Li et al. 2020) with one bracket, where a rung ranks the
objective vectors recorded there by non-dominated front and a within-front tie breaker
(crowding distance or the epsilon-net of Schmucker et al. 2021) instead of by one metric.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from robnas.analysis._pareto import TIE_BREAKERS, multiobjective_order
from robnas.search._moasha_state import RungStateCallback, load_state, save_state

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)

MODES = ("max", "min")


class MultiObjectiveASHA(FIFOScheduler):
    """Stop trials outside the top ``1 / reduction_factor`` of a rung, ranked on all objectives.

    Rungs sit at ``grace_period * reduction_factor**k < max_t`` (units of ``time_attr``, e.g.
    epochs). When a result first reaches a rung, its objective vector is recorded there and all
    vectors of that rung are ranked best-first with
    :func:`robnas.analysis._pareto.multiobjective_order`; the trial continues if its position is
    below ``ceil(n / reduction_factor)`` (n = vectors at the rung, the new one included), so the
    first trial at a rung always continues. A vector with a NaN, infinite or non-numeric objective
    ranks after all finite ones and its trial is stopped. Results without ``time_attr`` or an
    objective are skipped (as in ASHA), with one warning per missing key. With
    ``stop_last_trials`` a result at ``max_t`` stops the trial.

    ``rung_metrics`` maps an objective to the result key ranked at the rungs in its place when a
    result has that key: robnas ranks ``sparsity`` on ``target_sparsity``, the sparsity a trial
    reaches at ``max_t``, so that a trial pruned gradually is not ranked as dense at the early
    rungs (its accuracy there is still measured on the partly pruned network).

    Objectives are read from Tune's flattened result (nested keys joined by ``/``). Tune does not
    save or restore scheduler state on ``Tuner.restore``; add :meth:`state_callback` to
    ``RunConfig(callbacks=...)`` so that rung contents survive a restore.
    """

    def __init__(
        self,
        *,
        max_t: float,
        time_attr: str = "epoch",
        objectives: Sequence[str] = ("clean_acc", "robust_acc", "sparsity"),
        modes: Sequence[str] = ("max", "max", "max"),
        grace_period: float = 1,
        reduction_factor: float = 3,
        tie_breaker: str = "crowding",
        stop_last_trials: bool = True,
        rung_metrics: dict[str, str] | None = None,
    ):
        if not isinstance(time_attr, str) or not time_attr:
            raise ValueError(f"time_attr must be a non-empty string, got {time_attr!r}")
        if isinstance(objectives, str) or len(objectives) == 0:
            raise ValueError(f"objectives must be a non-empty sequence of names: {objectives!r}")
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"objectives must be distinct, got {tuple(objectives)}")
        if isinstance(modes, str) or len(modes) != len(objectives):
            raise ValueError(
                f"modes must give one of {MODES} per objective ({len(objectives)}), got {modes!r}"
            )
        bad_modes = [m for m in modes if m not in MODES]
        if bad_modes:
            raise ValueError(f"modes {bad_modes} are not in {MODES}")
        if not (max_t > 0 and math.isfinite(max_t)):
            raise ValueError(f"max_t must be finite and > 0, got {max_t!r}")
        if not 0 < grace_period <= max_t:
            raise ValueError(f"grace_period must be in (0, max_t={max_t}], got {grace_period!r}")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor!r}")
        if tie_breaker not in TIE_BREAKERS:
            raise ValueError(f"tie_breaker {tie_breaker!r} is not one of {TIE_BREAKERS}")
        super().__init__()
        self._time_attr = time_attr
        self._objectives = tuple(objectives)
        self._modes = tuple(modes)
        self._max_t = max_t
        self._stop_last_trials = bool(stop_last_trials)
        self._rung_metrics = dict(rung_metrics or {})
        self._bracket = _Bracket(
            grace_period,
            max_t,
            reduction_factor,
            modes=self._modes,
            tie_breaker=tie_breaker,
            stop_last_trials=self._stop_last_trials,
        )
        self._num_stopped = 0
        self._warned_missing: set[str] = set()

    @property
    def objectives(self) -> tuple[str, ...]:
        return self._objectives

    @property
    def milestones(self) -> tuple[float, ...]:
        """Rung milestones in ascending order (units of ``time_attr``)."""
        return tuple(sorted(milestone for milestone, _ in self._bracket.rungs))

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Accept Tune's metric/mode: None, or one of the objectives with its own mode.

        The objectives are the scheduler's own; a TuneConfig metric (used by Tune for reporting
        and ``get_best_result``) must be one of them, else Tune reports the conflict.
        """
        if metric is None:
            return mode is None or mode in MODES
        if metric not in self._objectives:
            return False
        return mode is None or mode == self._modes[self._objectives.index(metric)]

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict
    ) -> str:
        vector = self._read(result)
        if vector is None:
            return TrialScheduler.CONTINUE
        cur_iter = result[self._time_attr]
        if self._stop_last_trials and cur_iter >= self._max_t:
            action = TrialScheduler.STOP
        else:
            action = self._bracket.on_result(trial.trial_id, cur_iter, vector)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
        return action

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict
    ) -> None:
        vector = self._read(result)
        if vector is not None:
            self._bracket.on_result(trial.trial_id, result[self._time_attr], vector)

    def _read(self, result: dict) -> tuple[float, ...] | None:
        """Objective vector of a result (NaN for non-numbers); None if a key is missing."""
        missing = [k for k in (self._time_attr, *self._objectives) if k not in result]
        if missing:
            new = sorted(set(missing) - self._warned_missing)
            if new:
                logger.warning(
                    "MultiObjectiveASHA skips results without %s (reported keys: %s)",
                    new,
                    sorted(result),
                )
                self._warned_missing.update(new)
            return None
        substitutes = getattr(self, "_rung_metrics", {})  # absent from a scheduler pickled before
        keys = [substitutes[k] if substitutes.get(k) in result else k for k in self._objectives]
        return tuple(_as_float(result[k]) for k in keys)

    def debug_string(self) -> str:
        head = f"Using MultiObjectiveASHA: num_stopped={self._num_stopped}"
        return f"{head}\n{self._bracket.debug_str()}"

    def get_state(self) -> dict:
        """Rung contents and counters as plain data (milestone -> {trial_id: objective vector})."""
        return {
            "objectives": self._objectives,
            "modes": self._modes,
            "rungs": [(milestone, dict(recorded)) for milestone, recorded in self._bracket.rungs],
            "num_stopped": self._num_stopped,
        }

    def set_state(self, state: dict, *, source: str = "saved state") -> None:
        """Load :meth:`get_state` output; the objectives, modes and milestones must match.

        A mismatch raises ``ValueError`` naming ``source`` (e.g. the file it came from).
        """
        mine = self.get_state()
        for key in ("objectives", "modes"):
            if tuple(state[key]) != mine[key]:
                raise ValueError(f"{source}: saved {key} {tuple(state[key])} differ from {mine[key]}")
        saved = sorted(milestone for milestone, _ in state["rungs"])
        if saved != list(self.milestones):
            raise ValueError(f"{source}: saved rung milestones {saved} differ from {list(self.milestones)}")
        self._bracket.rungs = [
            (milestone, dict(recorded))
            for milestone, recorded in sorted(state["rungs"], key=lambda rung: -rung[0])
        ]
        self._num_stopped = int(state["num_stopped"])

    def save(self, checkpoint_path: str) -> None:
        """Write the state as JSON (see :mod:`robnas.search._moasha_state`)."""
        save_state(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        """Read a :meth:`save` file; anything else raises ``ValueError`` naming the file."""
        self.set_state(load_state(checkpoint_path), source=str(checkpoint_path))

    def state_callback(self) -> RungStateCallback:
        """A Tune callback that checkpoints this scheduler's rungs with the experiment state.

        Tune pickles the scheduler and the run config's callbacks together in ``tuner.pkl``, so
        after ``Tuner.restore`` the callback still points at the restored scheduler and hands it
        the rung contents saved at the last experiment checkpoint.
        """
        return RungStateCallback(self)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


class _Bracket:
    """Rungs of one successive-halving bracket, stored in descending milestone order."""

    def __init__(
        self,
        min_t: float,
        max_t: float,
        reduction_factor: float,
        *,
        modes: tuple[str, ...],
        tie_breaker: str,
        stop_last_trials: bool,
    ):
        self.rf = reduction_factor
        milestones = []
        k = 0
        while min_t * reduction_factor**k < max_t:
            milestones.append(min_t * reduction_factor**k)
            k += 1
        self.rungs: list[tuple[float, dict[str, tuple[float, ...]]]] = [
            (milestone, {}) for milestone in reversed(milestones)
        ]
        self._modes = modes
        self._tie_breaker = tie_breaker
        self._stop_last_trials = stop_last_trials

    def on_result(self, trial_id: str, cur_iter: float, vector: tuple[float, ...]) -> str:
        """Record ``vector`` at the highest rung reached for the first time and decide."""
        for milestone, recorded in self.rungs:
            if cur_iter >= milestone and trial_id in recorded and not self._stop_last_trials:
                break
            if cur_iter < milestone or trial_id in recorded:
                continue
            recorded[trial_id] = vector
            return self._decide(recorded, trial_id)
        return TrialScheduler.CONTINUE

    def _decide(self, recorded: dict[str, tuple[float, ...]], trial_id: str) -> str:
        if not np.all(np.isfinite(recorded[trial_id])):
            return TrialScheduler.STOP
        position = self.order(recorded).index(trial_id)
        keep = math.ceil(len(recorded) / self.rf)
        return TrialScheduler.CONTINUE if position < keep else TrialScheduler.STOP

    def order(self, recorded: dict[str, tuple[float, ...]]) -> list[str]:
        """Trial ids of a rung best-first; vectors with non-finite entries last, by arrival."""
        ids = list(recorded)
        vectors = np.array([recorded[i] for i in ids], dtype=float).reshape(len(ids), -1)
        finite = np.all(np.isfinite(vectors), axis=1)
        good = np.flatnonzero(finite)
        order = multiobjective_order(vectors[good], self._modes, tie_breaker=self._tie_breaker)
        ranked = good[order]
        return [ids[i] for i in ranked] + [ids[i] for i in np.flatnonzero(~finite)]

    def debug_str(self) -> str:
        rungs = " | ".join(
            f"Iter {milestone:.3f}: {len(recorded)} recorded, "
            f"top {math.ceil(len(recorded) / self.rf)} go on"
            for milestone, recorded in self.rungs
        )
        return "Bracket: " + rungs


# tuner.pkl files written by robnas 0.1.0 name the callback class by this path.
_RungStateCallback = RungStateCallback
