"""Catastrophic-overfitting check of FGSM-RS trials: the rule and the measure."""

from __future__ import annotations

import torch
from torch import nn

from robnas.trainables._overfit import OverfitCheck, ProbeAccuracy, is_catastrophic, probe_accuracy


def test_the_rule_needs_pgd_accuracy_to_collapse_while_fgsm_accuracy_rises():
    before = ProbeAccuracy(pgd=0.40, fgsm=0.50)
    assert is_catastrophic(before, ProbeAccuracy(pgd=0.05, fgsm=0.90))
    assert not is_catastrophic(before, ProbeAccuracy(pgd=0.05, fgsm=0.10))  # everything collapsed
    assert not is_catastrophic(before, ProbeAccuracy(pgd=0.25, fgsm=0.90))  # a drop of 0.15 only
    assert not is_catastrophic(before, ProbeAccuracy(pgd=0.45, fgsm=0.90))


class Threshold(nn.Module):
    """Class 1 when the mean pixel exceeds 0.5: hand-checkable under an L-inf budget."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(50.0))

    def forward(self, x):
        score = self.scale * (x.flatten(1).mean(dim=1) - 0.5)
        return torch.stack([-score, score], dim=1)


def test_the_probe_counts_images_no_attack_in_the_budget_can_flip():
    # Mean pixels 0.1 and 0.9 survive eps 0.2; 0.45 and 0.55 fall to any attack of 0.1.
    x = torch.tensor([0.1, 0.9, 0.45, 0.55]).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    y = torch.tensor([0, 1, 0, 1])
    assert probe_accuracy(Threshold(), x, y, eps=0.2) == ProbeAccuracy(pgd=0.5, fgsm=0.5)
    assert probe_accuracy(Threshold(), x, y, eps=0.0) == ProbeAccuracy(pgd=1.0, fgsm=1.0)


def test_the_check_remembers_a_collapse_and_restores_its_state():
    x = torch.tensor([0.1, 0.9, 0.45, 0.55]).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    check = OverfitCheck(x, torch.tensor([0, 1, 0, 1]), eps=0.2)
    check.start(Threshold())
    assert check.last == ProbeAccuracy(0.5, 0.5) and not check.detected
    check.last = ProbeAccuracy(pgd=1.0, fgsm=0.0)  # as if the epoch before had been robust
    check.after_epoch(Threshold())
    assert check.detected
    again = OverfitCheck(x, torch.tensor([0, 1, 0, 1]), eps=0.2)
    again.load_state_dict(check.state_dict())
    assert again.detected and again.last == check.last
