from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robnas.trainables._adversarial import evaluate_robustness, training_loss
from robnas.trainables._fgsm_rs import fgsm_rs
from robnas.trainables._pgd import pgd
from robnas.trainables._trades import trades_loss

EPS = 8 / 255


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _init(model: nn.Module, seed: int, scale: float = 0.3) -> nn.Module:
    g = _gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return model


def _cnn(seed: int = 0, classes: int = 3) -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes),
    )
    return _init(model, seed)


def _linear(seed: int = 0, shape: tuple[int, ...] = (3, 4, 4)) -> nn.Module:
    d = shape[0] * shape[1] * shape[2]
    return _init(nn.Sequential(nn.Flatten(), nn.Linear(d, 2)), seed, scale=0.1)


def _batch(n: int = 16, seed: int = 1, classes: int = 3, lo: float = 0.0, hi: float = 1.0):
    g = _gen(seed)
    x = lo + (hi - lo) * torch.rand((n, 3, 4, 4), generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def _intensity_data(n: int = 64, seed: int = 2):
    """Class c has pixels 0.3 + 0.4 c + U[-0.05, 0.05]: mean-intensity margin 0.2 +- 0.05."""
    g = _gen(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.3 + 0.4 * y.float().view(-1, 1, 1, 1) + 0.1 * (torch.rand((n, 3, 4, 4), generator=g) - 0.5)
    return x, y


def _trained_cnn(x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    """``_cnn(classes=2)`` fitted to ``(x, y)`` by 40 full-batch SGD steps, gradients cleared."""
    model = _cnn(classes=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


def _mean_intensity_model() -> nn.Module:
    """Logit difference (class 1 - class 0) = mean(x) - 0.5, set by hand."""
    lin = nn.Linear(48, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[1].fill_(1 / 48)
        lin.bias.copy_(torch.tensor([0.0, -0.5]))
    return nn.Sequential(nn.Flatten(), lin)


def _evaluation(eps=8.0, steps=10, step_size=2.0, seed=0, max_images=0, restarts=1):
    return SimpleNamespace(eps=eps, steps=steps, step_size=step_size, seed=seed, max_images=max_images,
                           restarts=restarts)


def _attack(method, eps=8.0, steps=3, step_size=2.0, trades_beta=6.0):
    return SimpleNamespace(method=method, eps=eps, steps=steps, step_size=step_size, trades_beta=trades_beta)


# --- PGD ---------------------------------------------------------------------------------------

def test_pgd_stays_in_eps_ball_and_unit_box():
    x, y = _batch()
    x[0].zero_()
    x[1].fill_(1.0)
    x_adv = pgd(_cnn(), x, y, eps=EPS, step_size=2 / 255, steps=5, generator=_gen(0))
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert (x_adv != x).any()


def test_pgd_reaches_optimal_perturbation_of_linear_model():
    # For two classes, the CE gradient w.r.t. x has the sign of (w_other - w_y) everywhere, so the
    # optimal L-inf attack is the corner x + eps * sign(w_other - w_y) (x is away from 0 and 1).
    model = _linear()
    x, y = _batch(classes=2, lo=0.2, hi=0.8)
    w = model[1].weight.detach()
    direction = (w[1 - y] - w[y]).sign().view_as(x)
    assert (direction != 0).all()
    expected = x + EPS * direction
    x_adv = pgd(model, x, y, eps=EPS, step_size=EPS / 4, steps=10, generator=_gen(3))
    torch.testing.assert_close(x_adv, expected, rtol=0, atol=1e-6)
    one_step = pgd(model, x, y, eps=EPS, step_size=EPS, steps=1, random_start=False)
    torch.testing.assert_close(one_step, expected, rtol=0, atol=1e-6)


def test_pgd_same_seed_same_examples_different_seed_different():
    model, (x, y) = _cnn(), _batch()
    a = pgd(model, x, y, generator=_gen(7))
    b = pgd(model, x, y, generator=_gen(7))
    c = pgd(model, x, y, generator=_gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_pgd_rejects_missing_generator_and_negative_budget():
    model, (x, y) = _cnn(), _batch()
    with pytest.raises(ValueError, match="generator"):
        pgd(model, x, y)
    with pytest.raises(ValueError, match="eps"):
        pgd(model, x, y, eps=-0.1, generator=_gen(0))
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, y, steps=-1, generator=_gen(0))


def test_pgd_runs_in_eval_mode():
    # Same examples whether the model is in train or eval mode: batch norm uses running stats.
    model, (x, y) = _cnn(), _batch()
    with torch.no_grad():
        model[1].running_mean.fill_(0.2)
        model[1].running_var.fill_(2.0)
    from_train = pgd(model.train(), x, y, generator=_gen(0))
    from_eval = pgd(model.eval(), x, y, generator=_gen(0))
    assert torch.equal(from_train, from_eval)


ATTACKS = {
    "pgd": lambda m, x, y: pgd(m, x, y, steps=2, generator=_gen(0)),
    "fgsm_rs": lambda m, x, y: fgsm_rs(m, x, y, generator=_gen(0)),
    "trades": lambda m, x, y: trades_loss(m, x, y, steps=2, generator=_gen(0)),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_restore_modes_and_create_no_parameter_grads(name):
    model, (x, y) = _cnn(), _batch()
    model.train()
    model[5].eval()  # a submodule in its own mode must come back as it was
    modes = [m.training for m in model.modules()]
    stats = model[1].running_mean.clone(), model[1].running_var.clone()
    ATTACKS[name](model, x, y)
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())
    if name != "trades":  # trades' returned loss runs a training forward pass by design
        assert torch.equal(model[1].running_mean, stats[0])
        assert torch.equal(model[1].running_var, stats[1])


# --- FGSM-RS -----------------------------------------------------------------------------------

def test_fgsm_rs_default_step_is_1_25_eps_from_uniform_start():
    model = _linear()
    x, y = _batch(classes=2, lo=0.2, hi=0.8)
    w = model[1].weight.detach()
    direction = (w[1 - y] - w[y]).sign().view_as(x)
    start = (2 * torch.rand(x.shape, generator=_gen(5)) - 1) * EPS
    expected = x + (start + 1.25 * EPS * direction).clamp(-EPS, EPS)
    default = fgsm_rs(model, x, y, eps=EPS, generator=_gen(5))
    torch.testing.assert_close(default, expected, rtol=0, atol=1e-6)
    assert torch.equal(default, fgsm_rs(model, x, y, eps=EPS, step_size=1.25 * EPS, generator=_gen(5)))
    assert not torch.equal(default, fgsm_rs(model, x, y, eps=EPS, step_size=EPS, generator=_gen(5)))


# --- TRADES ------------------------------------------------------------------------------------

def test_trades_with_beta_zero_is_clean_cross_entropy():
    model, (x, y) = _cnn(), _batch()
    loss = trades_loss(model.train(), x, y, beta=0.0, generator=_gen(0))
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))


def test_trades_adds_beta_times_nonnegative_kl():
    model, (x, y) = _cnn(), _batch()
    model.eval()
    ce = F.cross_entropy(model(x), y)
    zero_eps = trades_loss(model, x, y, eps=0.0, beta=6.0, generator=_gen(0))
    torch.testing.assert_close(zero_eps, ce)
    loss1 = trades_loss(model, x, y, beta=1.0, generator=_gen(0))
    loss6 = trades_loss(model, x, y, beta=6.0, generator=_gen(0))
    assert loss1 > ce
    torch.testing.assert_close(loss6 - ce, 6 * (loss1 - ce))
    loss6.backward()
    assert all(p.grad is not None for p in model.parameters())


# --- training_loss dispatch --------------------------------------------------------------------

def test_training_loss_matches_the_attack_functions():
    model, (x, y) = _cnn(), _batch()
    model.eval()  # keep batch-norm statistics fixed between the compared calls

    def loss(**attack):
        return training_loss(model, x, y, _attack(**attack), _gen(0))

    def ce(images):
        return F.cross_entropy(model(images), y)

    torch.testing.assert_close(loss(method="none"), ce(x))
    x_pgd = pgd(model, x, y, eps=8 / 255, step_size=2 / 255, steps=3, generator=_gen(0))
    torch.testing.assert_close(loss(method="pgd"), ce(x_pgd))
    x_fgsm = fgsm_rs(model, x, y, eps=8 / 255, step_size=10 / 255, generator=_gen(0))
    torch.testing.assert_close(loss(method="fgsm_rs", step_size=10.0), ce(x_fgsm))
    x_fgsm_default = fgsm_rs(model, x, y, eps=8 / 255, generator=_gen(0))
    torch.testing.assert_close(loss(method="fgsm_rs", step_size=None), ce(x_fgsm_default))
    trades = trades_loss(model, x, y, eps=8 / 255, step_size=2 / 255, steps=3, beta=2.0,
                         generator=_gen(0))
    torch.testing.assert_close(loss(method="trades", trades_beta=2.0), trades)


@pytest.mark.parametrize("method", ["pgd", "fgsm_rs", "trades"])
def test_training_loss_with_zero_eps_is_clean_and_runs_no_attack(method):
    model, (x, y) = _cnn(), _batch()
    model.eval()
    g = _gen(0)
    state = g.get_state()
    loss = training_loss(model, x, y, _attack(method, eps=0.0), g)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    assert torch.equal(g.get_state(), state)


def test_training_loss_rejects_unknown_method_and_negative_eps():
    model, (x, y) = _cnn(), _batch()
    with pytest.raises(ValueError, match="'cw'.*pgd, fgsm_rs, trades, none"):
        training_loss(model, x, y, _attack("cw"), _gen(0))
    with pytest.raises(ValueError, match="attack.eps"):
        training_loss(model, x, y, _attack("pgd", eps=-1.0), _gen(0))


# --- evaluate_robustness -----------------------------------------------------------------------

def test_evaluate_robustness_known_answers_on_mean_intensity_classifier():
    # Every image is at L-inf distance 0.2 +- 0.05 from the decision boundary mean(x) = 0.5.
    model, (x, y) = _mean_intensity_model(), _intensity_data()
    assert evaluate_robustness(model, x, y, _evaluation(eps=20.0, steps=10, step_size=5.0)) == (1.0, 1.0)
    assert evaluate_robustness(model, x, y, _evaluation(eps=64.0, steps=10, step_size=16.0)) == (1.0, 0.0)
    assert evaluate_robustness(model, x, y, _evaluation(eps=0.0)) == (1.0, 1.0)


def test_evaluate_robustness_uses_first_max_images():
    model, (x, y) = _mean_intensity_model(), _intensity_data(n=40)
    y = y.clone()
    y[10:] = 1 - y[10:]  # only the first 10 labels are right
    assert evaluate_robustness(model, x, y, _evaluation(eps=0.0, max_images=10)) == (1.0, 1.0)
    assert evaluate_robustness(model, x, y, _evaluation(eps=0.0, max_images=20), batch_size=7) == (0.5, 0.5)
    assert evaluate_robustness(model, x, y, _evaluation(eps=0.0, max_images=0)) == (0.25, 0.25)


def test_evaluate_robustness_on_trained_model_is_deterministic_and_clean():
    x, y = _intensity_data(n=128)
    model = _trained_cnn(x, y)
    modes = [m.training for m in model.modules()]
    evaluation = _evaluation(eps=48.0, steps=10, step_size=12.0, seed=3)
    clean, robust = evaluate_robustness(model, x, y, evaluation, batch_size=50)
    assert clean >= 0.9
    assert 0.0 <= robust < clean  # eps 48/255 is past the margin of some images
    assert evaluate_robustness(model, x, y, evaluation, batch_size=50) == (clean, robust)
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())


def test_evaluate_robustness_rejects_bad_arguments():
    model, (x, y) = _mean_intensity_model(), _intensity_data(n=8)
    with pytest.raises(ValueError, match="max_images"):
        evaluate_robustness(model, x, y, _evaluation(max_images=-1))
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_robustness(model, x, y, _evaluation(), batch_size=0)
    with pytest.raises(ValueError, match="evaluation.eps"):
        evaluate_robustness(model, x, y, _evaluation(eps=-8.0))


def test_dispatch_reads_the_frozen_configs_of_robnas_spaces():
    spaces_attack = pytest.importorskip("robnas.spaces._attack")
    spaces_eval = pytest.importorskip("robnas.spaces._evaluation")
    model, (x, y) = _cnn(), _batch()
    model.eval()
    attack = spaces_attack.AttackConfig(method="fgsm_rs", eps=8.0, steps=1, step_size=None)
    x_fgsm = fgsm_rs(model, x, y, eps=8 / 255, generator=_gen(0))
    torch.testing.assert_close(training_loss(model, x, y, attack, _gen(0)),
                               F.cross_entropy(model(x_fgsm), y))
    evaluation = spaces_eval.EvalConfig(eps=8.0, steps=3, step_size=2.0, seed=4, max_images=0, loss="ce",
                                        schedule="constant")  # what the plain namespace means
    assert evaluate_robustness(model, x, y, evaluation) == evaluate_robustness(
        model, x, y, _evaluation(eps=8.0, steps=3, step_size=2.0, seed=4))


def test_attacks_on_a_cell_disconnected_from_its_input_do_not_fail():
    """The output of an all-`none` cell does not depend on the input: the attack is a no-op."""
    from types import SimpleNamespace

    from robnas.trainables._network import build_network

    model = build_network(["none"] * 6, width=4, cells_per_stage=1, in_channels=1)
    x = torch.rand(8, 1, 8, 8)
    y = torch.randint(0, 10, (8,))
    generator = torch.Generator().manual_seed(0)
    for method in ("pgd", "fgsm_rs", "trades"):
        attack = SimpleNamespace(method=method, eps=8.0, steps=2, step_size=2.0, trades_beta=6.0)
        loss = training_loss(model, x, y, attack, generator)
        assert torch.isfinite(loss)
    evaluation = SimpleNamespace(eps=8.0, steps=2, step_size=2.0, seed=0, max_images=0, restarts=1)
    clean, robust = evaluate_robustness(model, x, y, evaluation)
    assert clean == robust
