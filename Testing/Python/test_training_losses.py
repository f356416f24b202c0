"""Losses and Hungarian matching on hand-made cases."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from TextLesionSegLib.training.losses import (  # noqa: E402
    attribute_nce_loss,
    bce_loss,
    dice_bce_loss,
    dice_loss,
    mp_nce_loss,
)
from TextLesionSegLib.training.matching import bce_cost, dice_cost, hungarian_match  # noqa: E402


def _masks():
    t = torch.zeros(3, 8, 8, 8)
    t[0, :4], t[1, 4:, :4], t[2, 4:, 4:, 4:] = 1, 1, 1
    return t


def test_perfect_prediction_is_the_minimum():
    t = _masks()
    perfect = (t * 2 - 1) * 20  # logits
    assert float(dice_bce_loss(perfect, t)) < 1e-4
    noisy = perfect + torch.randn_like(perfect) * 30
    assert float(dice_bce_loss(noisy, t)) > float(dice_bce_loss(perfect, t)) + 0.05
    # probabilities (Malenia's ensemble): same minimum, finite at exactly 0/1
    assert float(dice_loss(t, t, logits=False)) < 1e-4
    assert torch.isfinite(bce_loss(t, t, logits=False)) and float(bce_loss(t, t, logits=False)) < 1e-4
    assert float(dice_bce_loss(1 - t, t, logits=False)) > 1.0


def test_empty_inputs_give_zero_with_gradient():
    x = torch.zeros(0, 4, 4, 4, requires_grad=True)
    loss = dice_bce_loss(x, torch.zeros(0, 4, 4, 4))
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_mp_nce_prefers_the_true_positives():
    torch.manual_seed(0)
    cand = torch.nn.functional.normalize(torch.randn(16, 32), dim=-1)
    pos = torch.zeros(2, 16, dtype=torch.bool)
    pos[0, :8], pos[1, 8:] = True, True
    aligned = torch.stack([cand[:8].mean(0), cand[8:].mean(0)])
    good = mp_nce_loss(aligned, cand, pos, 0.07)
    swapped = mp_nce_loss(aligned.flip(0), cand, pos, 0.07)
    assert float(good) < float(swapped) - 1.0
    # the multi-positive minimum is log(#positives) when all positives score equally and negatives vanish
    assert float(good) >= torch.log(torch.tensor(8.0)) - 1e-4
    t = torch.tensor(0.07, requires_grad=True)
    mp_nce_loss(aligned, cand, pos, t).backward()
    assert t.grad is not None and t.grad != 0  # the temperature learns


def test_attribute_loss_compares_the_values_of_each_attribute():
    """Two attributes with two values each (A0/A1, B0/B1): a token alike to every value reads as
    chance (log 2), one on its own values scores ~0, a wrong value costs a lot, -1 skips."""
    cand = torch.eye(4)  # A0, A1, B0, B1
    pos = torch.tensor([[True, False, True, False]])  # the lesion is A0 and B0
    blind = torch.tensor([[1.0, 1.0, 1.0, 1.0]])  # all four values alike
    reads = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    groups = [torch.tensor([0, 1]), torch.tensor([2, 3])]
    target = torch.tensor([[0, 0]])
    tau = 0.1
    assert float(attribute_nce_loss(reads, cand, groups, target, tau)) < 0.01
    assert float(attribute_nce_loss(blind, cand, groups, target, tau)) == pytest.approx(float(torch.log(torch.tensor(2.0))))
    assert float(attribute_nce_loss(reads, cand, groups, torch.tensor([[1, -1]]), tau)) > 5  # wrong value; B skipped
    assert float(attribute_nce_loss(reads, cand, groups, torch.tensor([[-1, -1]]), tau)) == 0.0
    q = reads.clone().requires_grad_(True)
    attribute_nce_loss(q, cand, groups, torch.tensor([[1, 1]]), tau).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_hungarian_recovers_a_permutation():
    t = _masks().flatten(1)
    perm = torch.tensor([2, 0, 1])
    pred = ((t[perm] * 2 - 1) * 10)  # prediction i is target perm[i]
    pred = torch.cat([pred, torch.full((2, t.shape[1]), -10.0)])  # two empty extra tokens
    cost = dice_cost(pred, t) + bce_cost(pred, t)
    rows, cols = hungarian_match(cost)
    assert cols.tolist() == [0, 1, 2]
    assert [int(perm[r]) for r in rows] == [0, 1, 2]


def test_pairwise_costs_match_direct_computation():
    torch.manual_seed(1)
    pred, t = torch.randn(4, 50), (torch.rand(3, 50) > 0.5).float()
    bc = bce_cost(pred, t)
    direct = torch.nn.functional.binary_cross_entropy_with_logits(pred[2], t[1])
    assert torch.allclose(bc[2, 1], direct, atol=1e-5)
    p = pred[1].sigmoid()
    assert torch.allclose(dice_cost(pred, t)[1, 0], 1 - (2 * (p * t[0]).sum() + 1) / (p.sum() + t[0].sum() + 1), atol=1e-5)
