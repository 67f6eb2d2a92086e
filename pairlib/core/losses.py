"""Distillation losses, each a small function with a test (tests/test_losses.py).

- `kd_loss`: Hinton et al.'s knowledge distillation, KL(teacher || student) on temperature-softened distributions,
  scaled by T^2 so that its gradients keep their size as T changes (DeFormer uses T=2).
- `lrs_loss`: DeFormer's layer-wise representation similarity, the squared distance between the teacher's and the
  student's token representations in the upper layers, averaged over layers, real tokens and dimensions (the
  official code's MSE averaged over the upper layers).
- `self_distillation_loss`: FastBERT's sum over the student classifiers of KL(student || teacher), as the paper
  writes it (the teacher's distribution is a fixed target; unlabeled data is enough).
- `weighted_sum`: DeFormer's total loss gamma * task + alpha * KD + beta * LRS, with the terms that are switched off
  left out entirely (the official sbert script crashes when distillation is off; this does not).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)) * T^2, averaged over the batch (and over any extra leading dims,
    e.g. start and end logits of span QA given as separate rows)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    s = F.log_softmax(student_logits.float() / temperature, dim=-1).flatten(0, -2)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1).flatten(0, -2)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature ** 2


def lrs_loss(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor],
             attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared distance between paired layers' token representations, over real (unmasked) tokens."""
    if len(student_states) != len(teacher_states) or not student_states:
        raise ValueError(f"need the same, non-zero number of layers, got {len(student_states)} and "
                         f"{len(teacher_states)}")
    losses = []
    for s, t in zip(student_states, teacher_states):
        sq = (s.float() - t.float()).pow(2).mean(-1)  # (batch, tokens)
        if attention_mask is not None:
            m = attention_mask.to(sq.dtype)
            losses.append((sq * m).sum() / m.sum().clamp(min=1))
        else:
            losses.append(sq.mean())
    return torch.stack(losses).mean()


def weighted_sum(terms: dict[str, torch.Tensor | None], weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    """Sum of weight * term over the terms whose weight is non-zero; returns the loss and each term for logging."""
    total, logs = None, {}
    for name, w in weights.items():
        if w == 0:
            continue
        term = terms.get(name)
        if term is None:
            raise ValueError(f"loss term {name!r} has weight {w} but was not computed")
        total = w * term if total is None else total + w * term
        logs[name] = float(term.detach())
    if total is None:
        raise ValueError("every loss weight is zero")
    return total, logs


def self_distillation_loss(student_logits: Sequence[torch.Tensor], teacher_logits: torch.Tensor) -> torch.Tensor:
    """Sum over students of KL(p_s || p_t) = sum p_s (log p_s - log p_t), averaged over the batch."""
    if not student_logits:
        raise ValueError("need at least one student classifier")
    t = F.log_softmax(teacher_logits.detach().float(), dim=-1)
    total = None
    for s_logits in student_logits:
        if s_logits.shape != teacher_logits.shape:
            raise ValueError(f"logit shapes differ: {tuple(s_logits.shape)} vs {tuple(teacher_logits.shape)}")
        s = F.log_softmax(s_logits.float(), dim=-1)
        kl = (s.exp() * (s - t)).sum(-1).mean()
        total = kl if total is None else total + kl
    return total
