"""IResNet in insightface's arcface_torch layout (BN-conv-BN-PReLU-conv-BN blocks, 512-d head).

Parameter names follow arcface_torch inside each stage (bn1/conv1/bn2/prelu/conv2/bn3,
downsample.0/.1) so its checkpoints can be remapped by a prefix rename.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import StagedBackbone

LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
WIDTHS = (64, 128, 256, 512)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # eps 1e-5 like arcface_torch's blocks (its stem and head BNs also use 1e-5).
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + identity


class IResNetHead(nn.Module):
    """BN -> dropout -> flatten -> FC -> BN (the 'features' BN has a fixed unit scale, as in
    arcface_torch, so the embedding norm is not an extra free parameter)."""

    def __init__(self, channels: int, spatial: int, embedding_size: int, dropout: float) -> None:
        super().__init__()
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels * spatial * spatial, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.bn2(x))
        return self.features(self.fc(torch.flatten(x, 1)))


class IResNet(StagedBackbone):
    # Stages 1, 2, 3 end at 28x28, 14x14 and 7x7 for a 112x112 input (stage 0 is 56x56).
    hook_stages = (1, 2, 3)

    def __init__(self, layers: tuple[int, ...], embedding_size: int = 512, dropout: float = 0.0,
                 widths: tuple[int, ...] = WIDTHS) -> None:
        """widths: channels of the four stages (the stem has the first); narrower than
        insightface's (64, 128, 256, 512) only for small experiments and fast tests."""
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"IResNet needs 4 stage widths, got {widths}")
        widths = tuple(int(w) for w in widths)
        self.embedding_size = embedding_size
        self.hook_channels = widths[1:]
        self.stem = nn.Sequential(
            conv3x3(3, widths[0]), nn.BatchNorm2d(widths[0], eps=1e-5), nn.PReLU(widths[0])
        )
        stages = []
        inplanes = widths[0]
        for planes, blocks in zip(widths, layers):
            # The first block of every stage halves the resolution: 112 -> 56 -> 28 -> 14 -> 7.
            stage = [IBasicBlock(inplanes, planes, stride=2)]
            stage += [IBasicBlock(planes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            inplanes = planes
        self.stages = nn.ModuleList(stages)
        self.head = IResNetHead(widths[-1], 7, embedding_size, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0, 0.1)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)
        # Zero the last BN of each residual branch so every block starts as the identity,
        # which keeps deep variants (IResNet-100) trainable from scratch.
        for module in self.modules():
            if isinstance(module, IBasicBlock):
                nn.init.constant_(module.bn3.weight, 0)


def iresnet(depth: int, **kwargs) -> IResNet:
    if depth not in LAYERS:
        raise ValueError(f"IResNet depth must be one of {sorted(LAYERS)}, got {depth}")
    return IResNet(LAYERS[depth], **kwargs)
