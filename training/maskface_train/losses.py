"""Losses of DESIGN §1: ArcFace margin head, CAL region loss, embedding distillation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ArcFace(nn.Module):
    """Additive angular margin: logit of the true class s*cos(theta + m), others s*cos(theta).

    Computed in float32 whatever the autocast dtype: cos near +-1 and s=64 overflow half precision.
    """

    def __init__(self, embedding_size: int, num_classes: int, s: float = 64.0, m: float = 0.5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)
        self.s, self.m = s, m
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        # Past theta = pi - m, cos(theta + m) stops decreasing in theta, so the margin would reward
        # pushing the true class further away; there use the linear continuation cos(theta) - m*sin(m)
        # (insightface's `th`/`mm`), which keeps the target logit monotonic.
        self.threshold = math.cos(math.pi - m)
        self.fallback = math.sin(math.pi - m) * m

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float()))
        cos = cos.clamp(-1.0, 1.0)
        target = cos.gather(1, labels[:, None])
        # sqrt has an infinite derivative at 0. In float32 the smallest nonzero 1 - cos^2 is ~1.2e-7,
        # so this floor only catches |cos| == 1 exactly, where the clamp then passes no gradient.
        sin = torch.sqrt((1.0 - target * target).clamp_min(1e-12))
        with_margin = target * self.cos_m - sin * self.sin_m
        with_margin = torch.where(target > self.threshold, with_margin, target - self.fallback)
        return self.s * cos.scatter(1, labels[:, None], with_margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings, labels), labels)


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N,H,W) class indices -> (N,h,w) by nearest neighbour.

    'nearest-exact' samples each output cell at its centre; plain 'nearest' takes the top-left
    pixel of each cell, which shifts the 7x7 labels by 7.5 px of the 112 frame.
    """
    resized = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return resized[:, 0].long()


def region_loss(region_logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Mean over MFSA modules of the per-pixel cross-entropy vs the region labels (N,112,112).

    Labels: 0 face, 1 mask, 2 background; -100 is ignored (F.cross_entropy's ignore_index).
    """
    if not region_logits:
        raise ValueError("region_loss needs at least one MFSA module's logits")
    losses = [F.cross_entropy(logits.float(), resize_labels(labels, tuple(logits.shape[-2:])))
              for logits in region_logits]
    return torch.stack(losses).mean()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(student, teacher); the teacher gets no gradient."""
    return (1.0 - F.cosine_similarity(student.float(), teacher.detach().float(), dim=1)).mean()
