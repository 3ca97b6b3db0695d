"""The evaluation attack: worst case over PGD iterates, clean-and-robust counting, restarts."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robnas.spaces import DATASET_DEFAULTS, EVAL_LOSSES, EvalConfig, decode
from robnas.trainables._adversarial import evaluate_robustness, pgd_correct
from robnas.trainables._pgd import ascent_step, attack_mode, pgd, uniform_noise
from robnas.trainables._pgd_eval import margin_loss, pgd_broken, step_losses
from tests.test_attacks import _batch, _cnn, _gen, _intensity_data, _trained_cnn


def _evaluation(eps=8.0, steps=10, step_size=2.0, seed=0, max_images=0, restarts=1):
    return SimpleNamespace(eps=eps, steps=steps, step_size=step_size, seed=seed, max_images=max_images,
                           restarts=restarts)


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(dim=1)


class _Bowl(nn.Module):
    """Two classes, true class 1 for gray images: logit(1) - logit(0) = (s - 0.8 eps)^2 / eps^2 - 0.3
    with s = mean(x) - 0.5 (fractions of the pixel range).

    Class 1 wins for s < 0.25 eps (the gray image and a random start near it) and at s = -eps;
    class 0 wins at s = +eps. From s < 0.8 eps the loss ascent pushes s up, from s > 0.8 eps down;
    with step_size = 2 eps every step lands on a corner of the eps-ball, so the iterates are
    start, +eps (misclassified), -eps (correct), +eps, -eps, ...
    """

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(1, 2, 3)) - 0.5
        margin = (s - 0.8 * self.eps) ** 2 / self.eps**2 - 0.3
        return torch.stack([torch.zeros_like(margin), margin], dim=1)


class _GrayTrap(nn.Module):
    """Two classes: logit(1) - logit(0) = max|x - 0.5| - 1e-3, so the uniform gray image is class 0
    and every image a random start or a PGD step moves away from it is class 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = (x - 0.5).abs().amax(dim=(1, 2, 3)) - 1e-3
        return torch.stack([torch.zeros_like(margin), margin], dim=1)


# --- worst case over the iterates --------------------------------------------------------------

def test_an_image_misclassified_at_an_intermediate_iterate_is_broken():
    eps = 0.1  # 25.5 / 255
    model = _Bowl(eps)
    x, y = torch.full((4, 3, 4, 4), 0.5), torch.ones(4, dtype=torch.long)

    def last_iterate(steps: int) -> torch.Tensor:
        return _predict(model, pgd(model, x, y, eps=eps, step_size=2 * eps, steps=steps, generator=_gen(0)))

    # The attack crosses the boundary and comes back: the last iterate of PGD-4 is correct.
    assert (_predict(model, x) == 1).all()
    assert [last_iterate(k).tolist() for k in range(5)] == [[1] * 4, [0] * 4, [1] * 4, [0] * 4, [1] * 4]
    start = (x + uniform_noise(x, eps, _gen(0))).clamp(0.0, 1.0)
    assert not pgd_broken(model, x, y, start, eps=eps, step_size=2 * eps, steps=0).any()
    assert pgd_broken(model, x, y, start, eps=eps, step_size=2 * eps, steps=1).all()  # the last iterate
    assert pgd_broken(model, x, y, start, eps=eps, step_size=2 * eps, steps=4).all()
    # Counting the last iterate only would give (1.0, 1.0).
    assert evaluate_robustness(model, x, y, _evaluation(eps=25.5, steps=4, step_size=51.0)) == (1.0, 0.0)


def _bowl_case():
    """Near-gray images, broken at odd iterates only, and dark ones (0.2) that are never broken."""
    x = 0.5 + 0.02 * (torch.rand((8, 3, 4, 4), generator=_gen(5)) - 0.5)
    x[4:] -= 0.3
    return _Bowl(0.1), x, torch.ones(8, dtype=torch.long), 0.1, 0.2


def _cnn_case(seed: int):
    return (_cnn(seed=seed, classes=2), *_intensity_data(n=64), 48 / 255, 16 / 255)


CASES = {"bowl": _bowl_case, **{f"cnn{seed}": lambda seed=seed: _cnn_case(seed) for seed in range(3)}}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pgd_broken_is_the_union_over_the_iterates_of_pgd(case):
    """Reference: rerun ``pgd`` for 0..steps steps from the same start and OR the mistakes."""
    model, x, y, eps, step_size = CASES[case]()
    steps = 4
    start = (x + uniform_noise(x, eps, _gen(7))).clamp(0.0, 1.0)
    expected = torch.zeros(len(x), dtype=torch.bool)
    for k in range(steps + 1):
        x_k = pgd(model, x, y, eps=eps, step_size=step_size, steps=k, generator=_gen(7))
        expected |= _predict(model, x_k) != y
    got = pgd_broken(model, x, y, start, eps=eps, step_size=step_size, steps=steps)
    assert torch.equal(got, expected)
    assert expected.any() and not expected.all()


def test_pgd_broken_restores_modes_and_creates_no_parameter_grads():
    model, (x, y) = _cnn(classes=2), _intensity_data(n=16)
    model.train()
    stats = model[1].running_mean.clone()
    pgd_broken(model, x, y, x.clone(), eps=8 / 255, step_size=2 / 255, steps=2)
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model[1].running_mean, stats)
    with pytest.raises(ValueError, match="shape of x"):
        pgd_broken(model, x, y, x[:2], eps=8 / 255, step_size=2 / 255, steps=2)


# --- robust only if correct clean --------------------------------------------------------------

def test_an_image_misclassified_clean_is_never_robust():
    model = _GrayTrap()
    x = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.9)])
    y = torch.ones(2, dtype=torch.long)
    eps, step_size = 8 / 255, 2 / 255
    assert _predict(model, x).tolist() == [0, 1]  # the gray image is wrong clean
    # The attack "fixes" the gray image: no iterate of PGD is misclassified.
    start = (x + uniform_noise(x, eps, _gen(0))).clamp(0.0, 1.0)
    assert not pgd_broken(model, x, y, start, eps=eps, step_size=step_size, steps=10).any()
    x_adv = pgd(model, x, y, eps=eps, step_size=step_size, steps=10, generator=_gen(0))
    assert _predict(model, x_adv).tolist() == [1, 1]
    for restarts in (1, 3):
        evaluation = _evaluation(eps=8.0, steps=10, step_size=2.0, restarts=restarts)
        assert evaluate_robustness(model, x, y, evaluation) == (0.5, 0.5)


# --- restarts ----------------------------------------------------------------------------------

def test_more_restarts_never_raise_robust_accuracy():
    x, y = _intensity_data(n=128)
    model = _trained_cnn(x, y)
    config = {"eps": 48.0, "steps": 10, "step_size": 12.0, "seed": 3, "schedule": "constant"}
    results = {r: evaluate_robustness(model, x, y, EvalConfig(**config, restarts=r), batch_size=50)
               for r in (1, 2, 3, 4, 8)}
    clean = {c for c, _ in results.values()}
    robust = [results[r][1] for r in sorted(results)]
    assert len(clean) == 1 and clean.pop() >= 0.9
    assert robust == sorted(robust, reverse=True)
    assert robust[-1] < robust[0]  # each restart draws fresh starts
    # Same seed, same numbers; restarts=1 is the default.
    assert evaluate_robustness(model, x, y, EvalConfig(**config, restarts=4), batch_size=50) == results[4]
    assert evaluate_robustness(model, x, y, EvalConfig(**config), batch_size=50) == results[1]
    assert decode({"eval_restarts": 1}) == decode({})


def test_robust_accuracy_never_exceeds_the_last_iterate_count():
    x, y = _intensity_data(n=128)
    model = _trained_cnn(x, y)
    clean, robust = evaluate_robustness(model, x, y, _evaluation(eps=48.0, steps=10, step_size=12.0, seed=3))
    x_adv = pgd(model, x, y, eps=48 / 255, step_size=12 / 255, steps=10, generator=_gen(3))
    model.eval()  # predict as the attack does, with batch norm's running statistics
    last = float(((_predict(model, x) == y) & (_predict(model, x_adv) == y)).float().mean())
    assert robust <= last <= clean


@pytest.mark.parametrize("value", [0, -1, "x", True, 1.5])
def test_eval_restarts_must_be_an_integer_of_at_least_one(value):
    with pytest.raises(ValueError) as error:
        decode({"eval_restarts": value})
    message = str(error.value)
    assert "\n" not in message and message.startswith("config key 'eval_restarts': EvalConfig.restarts")
    with pytest.raises(ValueError, match="evaluation.restarts"):
        evaluate_robustness(_cnn(classes=2), *_intensity_data(n=4), _evaluation(restarts=value))


def test_eval_restarts_is_a_trial_key_of_the_cli_and_of_a_search(tmp_path, capsys):
    from robnas.search._run import _param_space
    from robnas.search._settings import SearchSettings
    from robnas.search.cli import main

    rows = {}
    for restarts in (1, 3):
        config = tmp_path / f"trial{restarts}.yaml"
        config.write_text(f"width: 4\nattack_steps: 1\neval_steps: 2\neval_images: 100\neval_restarts: {restarts}\n")
        assert main(["trial", "--config", str(config), "--epochs", "1", "--json"]) == 0
        rows[restarts] = json.loads(capsys.readouterr().out)
    assert rows[3]["clean_acc"] == rows[1]["clean_acc"] and rows[3]["robust_acc"] <= rows[1]["robust_acc"]
    space, record = _param_space(SearchSettings.from_mapping({"space": ["cell"], "trial": {"eval_restarts": 2}}))
    assert space["eval_restarts"] == 2 and record["resolved_trial"]["eval_restarts"] == 2
    with pytest.raises(ValueError, match="'eval_restarts'"):
        _param_space(SearchSettings.from_mapping({"space": ["cell"], "trial": {"eval_restarts": 0}}))


# --- the ascent's loss (eval_loss) -------------------------------------------------------------

class _TwoPixels(nn.Module):
    """Three classes on two-pixel images (1, 1, 2), ``a`` and ``b`` the pixels minus 0.5:
    z0 = 0, z1 = -2.2 + 20 a - 4 b, z2 = -2.5 + 20 b.

    At the gray image (a = b = 0) class 0 wins and class 1 is the runner-up. The margin's
    gradient is w1 - w0 = (20, -4): one step of 0.1 lands on a = 0.1, b = -0.1, where
    z1 = 0.2 > 0. Cross-entropy's gradient is p1 w1 + p2 w2 = (20 p1, 20 p2 - 4 p1), and
    20 p2 > 4 p1 there, so it moves b up too: at a = b = 0.1, z1 = -0.6 and z2 = -0.5, class 0
    still wins.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, 0, 0, 0] - 0.5, x[:, 0, 0, 1] - 0.5
        return torch.stack([torch.zeros_like(a), -2.2 + 20 * a - 4 * b, -2.5 + 20 * b], dim=1)


def test_margin_loss_is_the_largest_other_logit_minus_the_true_one():
    logits = torch.tensor([[0.0, -2.2, -2.5], [1.0, 3.0, -1.0], [2.0, 2.0, 0.5]])
    y = torch.tensor([0, 0, 2])
    assert margin_loss(logits, y).item() == pytest.approx(-2.2 + 2.0 + 1.5)
    assert margin_loss(logits[1:2], y[1:2]).item() == pytest.approx(2.0)  # misclassified: positive


def test_margin_pgd_follows_the_runner_up_where_cross_entropy_does_not():
    model, eps = _TwoPixels(), 0.1
    x, y = torch.full((1, 1, 1, 2), 0.5), torch.zeros(1, dtype=torch.long)
    with attack_mode(model):
        after_margin, logits = ascent_step(model, x, x, y, eps=eps, step_size=eps, loss=margin_loss)
        after_ce, _ = ascent_step(model, x, x, y, eps=eps, step_size=eps)
    assert torch.allclose(logits, torch.tensor([[0.0, -2.2, -2.5]]))
    assert torch.allclose(after_margin.flatten(), torch.tensor([0.6, 0.4]))
    assert torch.allclose(after_ce.flatten(), torch.tensor([0.6, 0.6]))
    assert _predict(model, after_margin).tolist() == [1] and _predict(model, after_ce).tolist() == [0]

    def broken(loss: str, steps: int) -> bool:
        return bool(pgd_broken(model, x, y, x, eps=eps, step_size=eps, steps=steps, loss=loss))

    assert broken("margin", 1) and not broken("ce", 1)
    # ce+margin with 2 steps: one cross-entropy step to (0.6, 0.6), where class 2 is the
    # runner-up; the margin step then pushes b against the bound: never broken. So ce+margin
    # is no superset of margin alone, only of its own cross-entropy steps.
    assert not broken("ce+margin", 2) and not broken("ce", 2)
    assert step_losses("ce+margin", 2) == ["ce", "margin"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_with_two_classes_every_eval_loss_takes_the_same_steps(case):
    """Two classes: d CE = p_other * d (z_other - z_y), the margin's gradient times a positive
    number, so the signed steps, and the verdicts, coincide."""
    model, x, y, eps, step_size = CASES[case]()
    start = (x + uniform_noise(x, eps, _gen(7))).clamp(0.0, 1.0)
    verdicts = [pgd_broken(model, x, y, start, eps=eps, step_size=step_size, steps=4, loss=loss)
                for loss in EVAL_LOSSES]
    assert all(torch.equal(v, verdicts[0]) for v in verdicts) and verdicts[0].any()


@pytest.mark.parametrize("steps", [1, 2, 5, 10])
def test_ce_plus_margin_splits_the_steps_and_costs_what_ce_costs(steps):
    schedule = step_losses("ce+margin", steps)
    assert len(schedule) == steps and schedule == sorted(schedule)  # all "ce" first, then "margin"
    assert schedule.count("margin") == steps // 2
    assert step_losses("ce", steps) == ["ce"] * steps and step_losses("margin", steps) == ["margin"] * steps

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.calls = _cnn(classes=3), 0

        def forward(self, x):
            self.calls += 1
            return self.net(x)

    x, y = _batch(n=8, classes=3)
    calls = {}
    for loss in EVAL_LOSSES:
        model = Counting()
        pgd_broken(model, x, y, x.clone(), eps=8 / 255, step_size=2 / 255, steps=steps, loss=loss)
        calls[loss] = model.calls
    assert set(calls.values()) == {steps + 1}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ce_plus_margin_breaks_every_image_its_cross_entropy_steps_break(case):
    """Its first ``steps - steps // 2`` iterates are those of cross-entropy PGD from the same start."""
    model, x, y, eps, step_size = CASES[case]()
    start = (x + uniform_noise(x, eps, _gen(7))).clamp(0.0, 1.0)
    for steps in (2, 3, 4):
        both = pgd_broken(model, x, y, start, eps=eps, step_size=step_size, steps=steps, loss="ce+margin")
        ce = pgd_broken(model, x, y, start, eps=eps, step_size=step_size, steps=steps - steps // 2, loss="ce")
        assert not (ce & ~both).any()


@pytest.mark.parametrize("loss", EVAL_LOSSES)
def test_every_eval_loss_is_deterministic_and_monotone_in_restarts(loss):
    x, y = _intensity_data(n=128)
    model = _trained_cnn(x, y)
    config = {"eps": 48.0, "steps": 10, "step_size": 12.0, "seed": 3, "loss": loss}
    flags = {r: pgd_correct(model, x, y, EvalConfig(**config, restarts=r), batch_size=50) for r in (1, 2, 4)}
    again = pgd_correct(model, x, y, EvalConfig(**config, restarts=4), batch_size=50)
    assert all(torch.equal(a, b) for a, b in zip(again, flags[4]))
    assert all(torch.equal(flags[r][0], flags[1][0]) for r in flags)  # clean flags do not depend on it
    # The first R restarts of a run with more are the run with R: robust flags only shrink.
    assert not (flags[2][1] & ~flags[1][1]).any() and not (flags[4][1] & ~flags[2][1]).any()
    assert EvalConfig(**config).loss == loss and decode({"eval_loss": loss}).evaluation.loss == loss


def test_eval_loss_ce_is_the_attack_without_a_loss_attribute():
    x, y = _intensity_data(n=64)
    model = _trained_cnn(x, y)
    plain = pgd_correct(model, x, y, _evaluation(eps=48.0, steps=5, step_size=24.0, seed=1))
    ce = pgd_correct(model, x, y, EvalConfig(eps=48.0, steps=5, step_size=24.0, seed=1, loss="ce"))
    assert all(torch.equal(a, b) for a, b in zip(plain, ce))


@pytest.mark.parametrize("value", ["x", "CE", "dlr", "", None, 1, True])
def test_eval_loss_must_be_one_of_the_known_losses(value):
    with pytest.raises(ValueError) as error:
        decode({"eval_loss": value})
    message = str(error.value)
    assert "\n" not in message and message.startswith("config key 'eval_loss': EvalConfig.loss must be one of")
    assert "'ce', 'margin', 'ce+margin'" in message
    x, y = _intensity_data(n=4)
    with pytest.raises(ValueError, match="evaluation.loss: unknown evaluation loss"):
        pgd_correct(_cnn(classes=2), x, y, SimpleNamespace(**vars(_evaluation()), loss=value))
    with pytest.raises(ValueError, match="unknown evaluation loss"):
        pgd_broken(_cnn(classes=2), x, y, x, eps=0.1, step_size=0.1, steps=1, loss=value)


def test_eval_loss_is_a_trial_key_of_a_search():
    from robnas.search._run import _param_space
    from robnas.search._settings import SearchSettings

    space, record = _param_space(SearchSettings.from_mapping({"space": ["cell"], "trial": {"eval_loss": "margin"}}))
    assert space["eval_loss"] == "margin" and record["resolved_trial"]["eval_loss"] == "margin"
    _, record = _param_space(SearchSettings.from_mapping({"space": ["cell"]}))
    assert record["resolved_trial"]["eval_loss"] == DATASET_DEFAULTS["digits"]["eval_loss"]
    with pytest.raises(ValueError, match="'eval_loss'"):
        _param_space(SearchSettings.from_mapping({"space": ["cell"], "trial": {"eval_loss": "cw"}}))
