"""What a running search prints: a line per finished trial and a periodic status line."""

from __future__ import annotations

import io
from types import SimpleNamespace

from robnas.search._progress import FrontProgress, _duration
from robnas.search.cli import main
from tests.test_reliability import table_search


def trial(trial_id, status, epoch=0, clean=None, robust=None):
    result = {"epoch": epoch, "clean_acc": clean, "robust_acc": robust} if epoch else {}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result)


def progress(period_s=0.0):
    stream = io.StringIO()
    return FrontProgress(["clean_acc", "robust_acc"], ["max", "max"], 6, max_epochs=4, stream=stream,
                         period_s=period_s), stream


def test_the_status_line_says_where_the_search_stands():
    callback, _ = progress()
    trials = [trial("a", "TERMINATED", 4, 0.9, 0.5), trial("b", "TERMINATED", 4, 0.8, 0.6),
              trial("c", "TERMINATED", 1, 0.3, 0.1), trial("d", "RUNNING", 2, 0.5, 0.2)]
    line = callback.status_line(trials, elapsed_s=80.0)
    # 11 epochs in 80 s; at most 6 x 4 = 24: 13 more at 80/11 s each.
    assert line == ("[status 1m20s] 3/6 done, 1 running, 2 pending | 11 of at most 24 epochs | "
                    "at most about 1m35s left | best clean_acc 0.900  robust_acc 0.600 | front 2")
    assert "time left unknown" in callback.status_line([trial("a", "RUNNING")], elapsed_s=5.0)
    assert "best clean_acc -  robust_acc -" in callback.status_line([trial("a", "RUNNING")], elapsed_s=5.0)


def test_a_status_line_comes_only_while_trials_run_and_at_most_every_period():
    callback, stream = progress(period_s=0.0)
    callback.on_step_end(0, [trial("a", "RUNNING", 1, 0.5, 0.2)])
    callback.on_step_end(1, [trial("a", "RUNNING", 1, 0.5, 0.2)])
    callback.on_step_end(2, [trial("a", "TERMINATED", 4, 0.5, 0.2)])  # nothing runs: no line
    assert stream.getvalue().count("[status") == 2  # one per step while a trial runs (period 0)
    slow, stream = progress(period_s=3600.0)
    for step in range(5):
        slow.on_step_end(step, [trial("a", "RUNNING", 1, 0.5, 0.2)])
    assert stream.getvalue() == ""


def test_a_finished_trial_says_finished_or_where_it_was_stopped():
    callback, stream = progress()
    done, stopped = trial("a", "RUNNING", 4, 0.9, 0.5), trial("b", "RUNNING", 2, 0.4, 0.1)
    callback.on_trial_complete(0, [done, stopped], done)
    callback.on_trial_complete(0, [done, stopped], stopped)
    first, second = stream.getvalue().splitlines()
    assert first == "[1/6 done, 1 running] a finished at epoch 4: clean_acc 0.900  robust_acc 0.500 | front 1"
    assert second.startswith("[1/6 done, 1 running] b stopped at epoch 2: clean_acc 0.400")


def test_durations_read_as_people_write_them():
    assert [_duration(s) for s in (0, 45.4, 185, 7800)] == ["0s", "45s", "3m05s", "2h10m"]


def test_quiet_prints_only_the_outcome(ray_session, shared_data, tmp_path, capsys):
    assert main([*table_search(tmp_path, "q"), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"3 trials, 0 failed; experiment: {tmp_path / 'q'}"]
    assert main([*table_search(tmp_path, "n")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(" finished " in line for line in lines) == 3 and lines[-1].startswith("3 trials, 0 failed")
