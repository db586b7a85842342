"""ONNX export of a maskface model (the contract in DESIGN.md §1).

input `input` [N,3,H,W] float32; outputs `embedding` [N,D] (not normalised) and, for CAL models,
`regions` [N,3,h,w]: the class probabilities (face, mask, background) of the finest MFSA module.
Preprocessing facts travel in metadata_props (maskface.*), so the file describes itself to the
Node runtime.

    /usr/bin/python3 -m maskface_train.export --backbone r50 --random --out r50-cal.onnx
writes a randomly initialised CAL model for latency benchmarks (generated on demand, never
committed).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from .backbones import get_backbone
from .mfsa import MaskFaceNet

ARCFACE_MEAN = (127.5, 127.5, 127.5)
ARCFACE_STD = (127.5, 127.5, 127.5)


@dataclass(frozen=True)
class ModelCard:
    """What the runtime needs to know about a model, written into metadata_props."""

    name: str
    version: str
    mean: tuple[float, float, float] = ARCFACE_MEAN
    std: tuple[float, float, float] = ARCFACE_STD
    color: str = "rgb"
    template: str = "arcface"

    def metadata(self, dim: int, gating: str | None) -> dict[str, str]:
        numbers = lambda values: ",".join(f"{v:g}" for v in values)  # noqa: E731
        entries = {
            "maskface.name": self.name,
            "maskface.version": self.version,
            "maskface.mean": numbers(self.mean),
            "maskface.std": numbers(self.std),
            "maskface.color": self.color,
            "maskface.template": self.template,
            "maskface.dim": str(dim),
        }
        if gating is not None:
            entries["maskface.regions"] = "face,mask,background"
            entries["maskface.gating"] = gating
        return entries


class _Exported(nn.Module):
    """The graph that is exported: embedding, and the finest module's probabilities."""

    def __init__(self, model: MaskFaceNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        embedding, region_logits = self.model(x)
        if not region_logits:
            return embedding
        return embedding, torch.softmax(region_logits[0], dim=1)


def export_onnx(model: MaskFaceNet, path: str | os.PathLike, card: ModelCard, *, opset: int = 13,
                input_size: int = 112) -> Path:
    """Exports `model` (eval mode, batch symbolic) and returns the path written."""
    path = Path(path)
    exported = _Exported(model).eval()
    has_regions = bool(model.mfsa)
    outputs = ["embedding", "regions"] if has_regions else ["embedding"]
    dummy = torch.zeros(2, 3, input_size, input_size)
    with torch.no_grad():
        dim = int(exported(dummy)[0].shape[1] if has_regions else exported(dummy).shape[1])
        torch.onnx.export(
            exported, dummy, str(path), input_names=["input"], output_names=outputs,
            dynamic_axes={name: {0: "N"} for name in ["input", *outputs]},
            opset_version=opset, do_constant_folding=True)
    onnx_model = onnx.load(str(path))
    gating = next(iter(model.mfsa.values())).gating if has_regions else None
    for key, value in card.metadata(dim, gating).items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))
    return path


def random_cal_model(backbone: str, gating: str = "face") -> MaskFaceNet:
    """A randomly initialised CAL model (for latency measurements only: it recognises nobody)."""
    return MaskFaceNet(get_backbone(backbone), use_mfsa=True, gating=gating).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="r50", help="r18, r34, r50, r100 or mobilefacenet")
    parser.add_argument("--random", action="store_true", required=True,
                        help="export a randomly initialised model (trained exports come with the training loop)")
    parser.add_argument("--gating", default="face", choices=["face", "not_mask"])
    parser.add_argument("--opset", type=int, default=13)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = random_cal_model(args.backbone, args.gating)
    card = ModelCard(name=f"random-{args.backbone}-cal", version="0")
    print(export_onnx(model, args.out, card, opset=args.opset))


if __name__ == "__main__":
    main()
