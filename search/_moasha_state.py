"""Multi-objective ASHA state as JSON: encoding, validation on load, and its Tune callback.

The JSON object has exactly the keys ``objectives`` and ``modes`` (lists of strings),
``rungs`` (``[[milestone, {trial_id: [objective values]}], ...]``, values encoded by
:func:`robnas.search._callback_json.encode_float`, trials in arrival order) and ``num_stopped``.
A file written by :func:`save_state` adds the header ``{"kind": KIND, "version": VERSION}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.callback import Callback

from robnas.search._callback_json import (
    callback_state,
    check_count,
    check_record,
    check_strings,
    decode_float,
    encode_float,
    from_callback_state,
)
from robnas.search._json_state import StateError, read_state, write_state

if TYPE_CHECKING:
    from robnas.search._moasha import MultiObjectiveASHA

_KEYS = {"objectives": list, "modes": list, "rungs": list, "num_stopped": int}
KIND, VERSION = "multi-objective ASHA", 1


def save_state(path: str, state: dict) -> None:
    """Write ``get_state()`` output to ``path`` as JSON, atomically."""
    write_state(path, KIND, VERSION, encode_state(state))


def load_state(path: str) -> dict:
    """Read a :func:`save_state` file back in ``get_state()`` form; StateError names ``path``."""
    document = read_state(path, KIND, VERSION)
    return decode_state({k: v for k, v in document.items() if k not in ("kind", "version")}, str(path))


def encode_state(state: dict) -> dict[str, Any]:
    """:meth:`MultiObjectiveASHA.get_state` output as JSON-able data."""
    return {
        "objectives": list(state["objectives"]),
        "modes": list(state["modes"]),
        "rungs": [
            [milestone, {trial_id: [encode_float(v) for v in vector] for trial_id, vector in recorded.items()}]
            for milestone, recorded in state["rungs"]
        ],
        "num_stopped": int(state["num_stopped"]),
    }


def decode_state(data: Any, source: str) -> dict:
    """Check :func:`encode_state` output and return it in ``get_state()`` form (tuples of
    floats). Raises ``ValueError`` naming ``source`` and the first problem found."""
    check_record(data, _KEYS, source)
    objectives = tuple(check_strings(data["objectives"], f"{source}: objectives"))
    modes = tuple(check_strings(data["modes"], f"{source}: modes"))
    rungs = []
    for rung in data["rungs"]:
        if not (isinstance(rung, list) and len(rung) == 2 and isinstance(rung[1], dict)):
            raise StateError(f"{source}: a rung must be [milestone, {{trial_id: [values]}}], got {rung!r}")
        milestone, recorded = rung
        if isinstance(milestone, bool) or not isinstance(milestone, (int, float)):
            raise StateError(f"{source}: rung milestone {milestone!r} is not a number")
        vectors = {}
        for trial_id, vector in recorded.items():
            where = f"{source}: rung {milestone} trial {trial_id!r}"
            if not isinstance(vector, list) or len(vector) != len(objectives):
                raise StateError(f"{where} must have a list of {len(objectives)} objective values, got {vector!r}")
            vectors[trial_id] = tuple(decode_float(v, where) for v in vector)
        rungs.append((milestone, vectors))
    num_stopped = check_count(data["num_stopped"], f"{source}: num_stopped")
    return {"objectives": objectives, "modes": modes, "rungs": rungs, "num_stopped": num_stopped}


class RungStateCallback(Callback):
    """Carries a :class:`MultiObjectiveASHA`'s rung state through Tune's callback checkpoints.

    Tune pickles what :meth:`get_state` returns; that is ``{"robnas_json": <JSON text>}``, and
    :meth:`set_state` parses and validates the text before the scheduler takes it.
    """

    def __init__(self, scheduler: MultiObjectiveASHA):
        self._scheduler = scheduler

    def get_state(self) -> dict | None:
        return callback_state({"multi_objective_asha": encode_state(self._scheduler.get_state())})

    def set_state(self, state: dict) -> None:
        source = "multi-objective ASHA state in Tune's callback checkpoint"
        if isinstance(state, dict) and set(state) == {"multi_objective_asha"}:
            # Saved by robnas 0.1.0 as plain Python data (unpickled by Tune): validate the same way.
            try:
                data = encode_state(state["multi_objective_asha"])
            except (KeyError, TypeError, ValueError) as error:
                raise StateError(f"{source}: not a multi-objective ASHA state ({error!r})") from None
        else:
            data = from_callback_state(state, source, "multi_objective_asha")
        self._scheduler.set_state(decode_state(data, source), source=source)
