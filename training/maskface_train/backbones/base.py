"""The shape every backbone shares, so MFSA can be inserted between stages without forking them."""
from __future__ import annotations

import torch
from torch import nn


class StagedBackbone(nn.Module):
    """stem -> stages -> head.

    Subclasses set `stem`, `stages` (nn.ModuleList), `head`, and `hook_stages`: the indices of the
    stages whose outputs are the 28x28, 14x14 and 7x7 maps (finest first) where MFSA goes.
    """

    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module
    hook_stages: tuple[int, ...]
    hook_channels: tuple[int, ...]
    embedding_size: int

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        x = self.stem(x)
        maps = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.hook_stages:
                maps.append(x)
        embedding = self.head(x)
        return (embedding, maps) if return_maps else embedding
