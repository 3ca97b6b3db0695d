"""The evaluation attack's step schedules (eval_schedule): exact on a linear model, worst case
over every iterate, same cost, deterministic, a validated trial key, old records unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.spaces import EVAL_LOSSES, EVAL_SCHEDULES, EvalConfig, decode
from robnas.trainables._adversarial import pgd_correct
from robnas.trainables._apgd_eval import checkpoint_steps
from robnas.trainables._pgd import uniform_noise
from robnas.trainables._pgd_eval import pgd_broken, step_sizes
from tests.test_attacks import _batch, _cnn, _gen, _intensity_data, _trained_cnn


class _Linear(nn.Module):
    """Two classes: z1 - z0 = w . (x - 0.5) + b, so the L-inf distance from ``x`` to the decision
    boundary is |z1 - z0| / ||w||_1 (while the eps-ball stays inside [0, 1])."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = ((x - 0.5).flatten(1) * self.w).sum(1) + self.b
        return torch.stack([torch.zeros_like(score), score], dim=1)


def _linear_case(eps: float):
    """``(model, x, y, robust)``: images near gray (their eps-balls inside [0, 1]), labelled as
    the model classifies them, and whether their distance to the boundary exceeds eps; none lies
    within 1e-3 eps of it."""
    g = _gen(3)
    w = torch.randn(16, generator=g)
    model = _Linear(w, b=0.05)
    x = 0.5 + 0.2 * (torch.rand(400, 1, 4, 4, generator=g) - 0.5)
    score = model(x)[:, 1]
    distance = score.abs() / w.abs().sum()
    keep = (distance - eps).abs() > 1e-3 * eps
    x, score, distance = x[keep], score[keep], distance[keep]
    return model, x, (score > 0).long(), distance > eps


@pytest.mark.parametrize("schedule", EVAL_SCHEDULES)
@pytest.mark.parametrize("loss", EVAL_LOSSES)
def test_every_schedule_finds_exactly_the_images_a_linear_model_is_not_robust_on(schedule, loss):
    """The steepest L-inf ascent of a linear score is the corner sign(w) eps: a sound attack
    never breaks an image farther than eps from the boundary, and one that reaches the corner
    breaks every closer one."""
    model, x, y, robust = _linear_case(eps=5.1 / 255)
    step = {"constant": 2.5 / 10, "cosine": 1.0, "apgd": 2.0}[schedule] * 5.1  # 1/255 units
    config = EvalConfig(eps=5.1, steps=10, step_size=step, seed=0, loss=loss, schedule=schedule)
    clean, got = pgd_correct(model, x, y, config)
    assert clean.all() and robust.any() and not robust.all()
    assert torch.equal(got, robust)


class _Recording(nn.Module):
    """Records whether each image is misclassified at every input the model sees."""

    def __init__(self, net: nn.Module, y: torch.Tensor) -> None:
        super().__init__()
        self.net, self.y, self.wrong = net, y, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        self.wrong.append((logits.argmax(1) != self.y).detach())
        return logits


@pytest.mark.parametrize("schedule", EVAL_SCHEDULES)
@pytest.mark.parametrize("loss", EVAL_LOSSES)
@pytest.mark.parametrize("steps", [1, 2, 5, 10])
def test_every_schedule_costs_steps_passes_and_counts_every_iterate(schedule, loss, steps):
    """``steps`` forward-backward passes and one forward pass, whatever the schedule; an image is
    broken iff some input the model saw (start, every iterate, the last) was misclassified."""
    x, y = _batch(n=16, classes=3)
    model = _Recording(_cnn(classes=3, seed=1), y)
    eps = 48 / 255
    start = (x + uniform_noise(x, eps, _gen(4))).clamp(0.0, 1.0)
    broken = pgd_broken(model, x, y, start, eps=eps, step_size=2 * eps, steps=steps, loss=loss, schedule=schedule)
    assert len(model.wrong) == steps + 1
    assert torch.equal(broken, torch.stack(model.wrong).any(dim=0))


@pytest.mark.parametrize("schedule", ["cosine", "apgd"])
def test_a_schedule_from_two_eps_breaks_at_least_what_the_constant_step_breaks_on_a_trained_network(schedule):
    """A regression guard, not a proof: on a small trained CNN, at the same cost, steps from
    2 eps (cosine decay, or APGD's halving) leave no more images robust than 2.5 eps / steps."""
    x, y = _intensity_data(n=128)
    model = _trained_cnn(x, y)
    base = {"eps": 48.0, "steps": 10, "seed": 0, "loss": "ce+margin"}
    _, constant = pgd_correct(model, x, y, EvalConfig(**base, step_size=12.0, schedule="constant"))
    _, scheduled = pgd_correct(model, x, y, EvalConfig(**base, step_size=96.0, schedule=schedule))
    assert int(scheduled.sum()) <= int(constant.sum())


@pytest.mark.parametrize("schedule", EVAL_SCHEDULES)
def test_every_schedule_is_deterministic_and_monotone_in_restarts(schedule):
    x, y = _intensity_data(n=128)
    model = _trained_cnn(x, y)
    config = {"eps": 48.0, "steps": 10, "step_size": 24.0, "seed": 3, "loss": "ce+margin", "schedule": schedule}
    flags = {r: pgd_correct(model, x, y, EvalConfig(**config, restarts=r), batch_size=50) for r in (1, 2, 4)}
    again = pgd_correct(model, x, y, EvalConfig(**config, restarts=4), batch_size=50)
    assert all(torch.equal(a, b) for a, b in zip(again, flags[4]))
    assert not (flags[2][1] & ~flags[1][1]).any() and not (flags[4][1] & ~flags[2][1]).any()


def test_step_sizes_and_checkpoints():
    assert step_sizes("constant", 0.5, 3) == [0.5] * 3
    cosine = step_sizes("cosine", 1.0, 4)
    assert cosine[0] == 1.0 and cosine == sorted(cosine, reverse=True) and cosine[-1] > 0
    # APGD's checkpoints for 100 iterations: gaps 22, 19, 16, ... down to 6.
    assert checkpoint_steps(100)[:4] == [22, 41, 57, 70] and checkpoint_steps(5) == [1, 2, 3, 4]
    assert checkpoint_steps(10) == [2, 3, 4, 5, 6, 7, 8, 9] and checkpoint_steps(1) == []


@pytest.mark.parametrize("value", ["x", "APGD", "", None, 1, True])
def test_eval_schedule_must_be_one_of_the_known_schedules(value):
    with pytest.raises(ValueError) as error:
        decode({"eval_schedule": value})
    message = str(error.value)
    assert "\n" not in message and message.startswith("config key 'eval_schedule': EvalConfig.schedule must be one of")
    x, y = _intensity_data(n=4)
    with pytest.raises(ValueError, match="unknown evaluation step schedule"):
        pgd_broken(_cnn(classes=2), x, y, x, eps=0.1, step_size=0.1, steps=1, schedule=value)


def test_eval_schedule_is_a_trial_key_recorded_by_a_search():
    from robnas.search._run import _param_space
    from robnas.search._settings import SearchSettings

    space, record = _param_space(SearchSettings.from_mapping({"space": ["cell"], "trial": {"eval_schedule": "cosine"}}))
    assert space["eval_schedule"] == "cosine" and record["resolved_trial"]["eval_schedule"] == "cosine"
    assert decode({"eval_schedule": "apgd"}).evaluation.schedule == "apgd"
