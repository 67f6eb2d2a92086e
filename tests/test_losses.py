import math

import pytest
import torch

from pairlib.core import losses


def test_kd_is_zero_for_equal_logits_and_matches_a_hand_computed_case():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert losses.kd_loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # teacher (0.75, 0.25) at T=1
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert losses.kd_loss(s, t, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)
    # T^2 scaling: at T=2 the teacher becomes (sqrt3, 1)/(sqrt3+1)
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    expected2 = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    assert losses.kd_loss(s, t, temperature=2.0).item() == pytest.approx(expected2, rel=1e-6)


def test_kd_refuses_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        losses.kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), temperature=0)
    with pytest.raises(ValueError, match="shapes differ"):
        losses.kd_loss(torch.zeros(1, 2), torch.zeros(1, 3))


def test_lrs_ignores_padding_and_averages_layers():
    s = [torch.zeros(1, 3, 2), torch.zeros(1, 3, 2)]
    t = [torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]]), torch.ones(1, 3, 2)]
    mask = torch.tensor([[1, 1, 0]])
    # layer 1: tokens 1 and 9 -> 5; layer 2: 1 -> mean 3
    assert losses.lrs_loss(s, t, mask).item() == pytest.approx(3.0)
    with pytest.raises(ValueError):
        losses.lrs_loss([], [])


def test_weighted_sum_leaves_out_switched_off_terms():
    total, logs = losses.weighted_sum({"task": torch.tensor(2.0), "kd": None}, {"task": 0.7, "kd": 0.0})
    assert total.item() == pytest.approx(1.4) and set(logs) == {"task"}
    with pytest.raises(ValueError, match="'kd' has weight 1.1"):
        losses.weighted_sum({"task": torch.tensor(1.0)}, {"task": 1.0, "kd": 1.1})
    with pytest.raises(ValueError, match="every loss weight is zero"):
        losses.weighted_sum({}, {"task": 0})
