"""MobileFaceNet laid out exactly like fr_feature.onnx (faceplugin-face-recognition-js@0.0.1).

That graph is the common MobileFaceNet (Chen et al. 2018, as in the TreB1eN / foamliu PyTorch
ports) with every BatchNorm folded into the convolution before it, so here each unit is a plain
Conv2d with bias and the ONNX initializers load 1:1 (see import_onnx.py). For training from scratch
the missing BatchNorms matter; this module is meant for distilling from the pretrained weights.

Graph, for a 112x112 input (channels @ size):
  stem:    conv 3x3/2 + PReLU (64@56), depthwise 3x3 + PReLU (64@56)
  stage 0: bottleneck 64->128 dw/2 ->64 (28), 4 residual bottlenecks (64, expand 128)   -> 64@28
  stage 1: bottleneck 64->256 dw/2 ->128 (14), 6 residual bottlenecks (128, expand 256) -> 128@14
  stage 2: bottleneck 128->512 dw/2 ->128 (7), 2 residual bottlenecks (128, expand 256) -> 128@7
  head:    1x1 128->512 + PReLU, linear depthwise 7x7 (GDC) -> 512@1, linear 1x1 512->512, flatten
"""
from __future__ import annotations

import torch
from torch import nn

from .base import StagedBackbone


class ConvUnit(nn.Module):
    """Conv (BN folded in, hence bias) optionally followed by a per-channel PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 activation: bool = True) -> None:
        super().__init__()
        padding = 1 if kernel == 3 else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=True)
        self.prelu = nn.PReLU(cout) if activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """1x1 expand + PReLU, depthwise 3x3 + PReLU, linear 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.expand = ConvUnit(cin, expand)
        self.depthwise = ConvUnit(expand, expand, 3, stride=stride, groups=expand)
        self.project = ConvUnit(expand, cout, activation=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


def make_stage(cin: int, cout: int, down_expand: int, repeats: int, expand: int) -> nn.Sequential:
    blocks = [Bottleneck(cin, cout, down_expand, stride=2, residual=False)]
    blocks += [Bottleneck(cout, cout, expand, stride=1, residual=True) for _ in range(repeats)]
    return nn.Sequential(*blocks)


class MobileFaceNetHead(nn.Module):
    def __init__(self, cin: int, embedding_size: int) -> None:
        super().__init__()
        self.expand = ConvUnit(cin, 512)
        self.gdc = ConvUnit(512, 512, 7, groups=512, activation=False)  # global depthwise conv
        self.linear = ConvUnit(512, embedding_size, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.linear(self.gdc(self.expand(x))), 1)


class MobileFaceNet(StagedBackbone):
    hook_stages = (0, 1, 2)
    hook_channels = (64, 128, 128)

    def __init__(self, embedding_size: int = 512) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.stem = nn.Sequential(ConvUnit(3, 64, 3, stride=2), ConvUnit(64, 64, 3, groups=64))
        self.stages = nn.ModuleList([
            make_stage(64, 64, down_expand=128, repeats=4, expand=128),
            make_stage(64, 128, down_expand=256, repeats=6, expand=256),
            make_stage(128, 128, down_expand=512, repeats=2, expand=256),
        ])
        self.head = MobileFaceNetHead(128, embedding_size)
