"""Multi-Focal Spatial Attention (MFSA) and the model that inserts it into a backbone (DESIGN §1).

Region classes per pixel: 0 visible face, 1 mask (occluder), 2 background.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .backbones.base import StagedBackbone

FACE, MASK, BACKGROUND = 0, 1, 2
GATINGS = ("face", "not_mask")


def frame_coordinates(x: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W): y and x of each cell centre of x's map, from -1 to 1 across the frame.

    Built from Python numbers, so an ONNX export holds it as a constant (H and W are fixed by
    the 112x112 input; the batch stays symbolic)."""
    height, width = int(x.shape[2]), int(x.shape[3])
    ys = torch.tensor([(2 * i + 1) / height - 1 for i in range(height)], dtype=x.dtype, device=x.device)
    xs = torch.tensor([(2 * j + 1) / width - 1 for j in range(width)], dtype=x.dtype, device=x.device)
    grid = torch.stack([ys.view(height, 1).expand(height, width), xs.view(1, width).expand(height, width)])
    return grid.unsqueeze(0).expand(x.shape[0], -1, -1, -1)


class MFSA(nn.Module):
    """F (N,C,H,W) -> (F * A, logits (N,3,H,W)).

    A = P[face] with gating 'face' (removes mask and background), or 1 - P[mask] with gating
    'not_mask' (removes only the mask; for a pretrained backbone whose teacher used the
    background). P = softmax over the 3 region logits.
    """

    def __init__(self, channels: int, projected: int = 4, branch_channels: int = 8,
                 dilations: tuple[int, ...] = (1, 2, 3), gating: str = "face",
                 initial_attention: float = 0.999, detach_attention: bool = False,
                 detach_features: bool = False) -> None:
        super().__init__()
        # detach_features: the region classifier reads F without passing gradients back into the
        # backbone, so the region loss trains the maps and costs the embedding nothing.
        self.detach_features = detach_features
        # detach_attention: the attention applied to F is computed from detached logits, so only
        # the region loss trains them; the embedding loss cannot redefine the regions.
        self.detach_attention = detach_attention
        if gating not in GATINGS:
            raise ValueError(f"gating must be one of {GATINGS}, got {gating!r}")
        self.gating = gating
        self.project = nn.Conv2d(channels, projected, 1)
        descriptors = 2 + projected  # channel mean, channel max, projection
        # Mean and max scale with F, whose magnitude differs by backbone and stage; normalising the
        # descriptors lets one set of hyper-parameters serve every insertion point. Per sample over
        # H x W (instance norm), not BatchNorm: no running statistics, so a short or small-batch
        # run behaves the same in train and eval mode (BatchNorm's lagging running stats did not).
        self.norm = nn.InstanceNorm2d(descriptors, affine=True)
        # Where a cell is in the aligned frame (y, x in [-1, 1]) joins the descriptors: a mask and a
        # background wall can look alike through a few cells of the 28x28 map, but they sit in
        # different places of an aligned face. Without it the 28x28 module called masks
        # background (mask IoU 0.03 against 0.79 for the 14x14 and 7x7 modules).
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(descriptors + 2, branch_channels, 3, padding=d, dilation=d), nn.ReLU(inplace=True))
            for d in dilations
        )
        self.classify = nn.Conv2d(branch_channels * len(dilations), 3, 1)
        self._init_near_identity(initial_attention)

    def _init_near_identity(self, attention: float) -> None:
        # Only the last 1x1 convolution starts small, with a face-logit bias b such that
        # softmax([b, 0, 0])[face] = attention: a pretrained backbone starts out (almost)
        # unchanged under either gating. The descriptor and branch convolutions keep their usual
        # initialisation so the classifier sees real features from the first step (with them
        # small too, the region loss took ~100 steps to start falling).
        nn.init.normal_(self.classify.weight, std=1e-3)
        nn.init.zeros_(self.classify.bias)
        with torch.no_grad():
            self.classify.bias[FACE] = math.log(2 * attention / (1 - attention))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        descriptors = torch.cat(
            [x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True), self.project(x)], dim=1)
        descriptors = torch.cat([self.norm(descriptors), frame_coordinates(x)], dim=1)
        return self.classify(torch.cat([branch(descriptors) for branch in self.branches], dim=1))

    def attention(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits, dim=1)
        attention = probs[:, FACE] if self.gating == "face" else 1 - probs[:, MASK]
        return attention.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(x.detach() if self.detach_features else x)
        gate = self.attention(logits.detach() if self.detach_attention else logits)
        return x * gate, logits


class MaskFaceNet(nn.Module):
    """A staged backbone with MFSA after its 28x28, 14x14 and 7x7 stages.

    forward -> (embedding, [logits 28x28, 14x14, 7x7]); with use_mfsa=False (ablation) the
    backbone runs unchanged and the list is empty.
    """

    def __init__(self, backbone: StagedBackbone, use_mfsa: bool = True, gating: str = "face",
                 **mfsa_kwargs) -> None:
        super().__init__()
        self.backbone = backbone
        self.use_mfsa = use_mfsa
        # Keyed by stage index as a string (ModuleDict keys must be strings).
        self.mfsa = nn.ModuleDict(
            {str(stage): MFSA(channels, gating=gating, **mfsa_kwargs)
             for stage, channels in zip(backbone.hook_stages, backbone.hook_channels)}
            if use_mfsa else {}
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.backbone.stem(x)
        region_logits = []
        for index, stage in enumerate(self.backbone.stages):
            x = stage(x)
            if str(index) in self.mfsa:
                x, logits = self.mfsa[str(index)](x)
                region_logits.append(logits)
        return self.backbone.head(x), region_logits
