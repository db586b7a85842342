"""ONNX export of a maskface model (the contract in DESIGN.md §1).

input `input` [N,3,H,W] float32; outputs `embedding` [N,D] (not normalised) and, for CAL models,
`regions` [N,3,h,w]: the class probabilities (face, mask, background) of the finest MFSA module.
Preprocessing facts travel in metadata_props (maskface.*), so the file describes itself to the
Node runtime.

With fused_attention (--fused-attention), each MFSA module's softmax, gate and multiply become one
`maskface::AttentionMask` node (docs/models.md), which maskface's runtime registers on every
session; other runtimes do not know the op, so the default export stays unfused.

    /usr/bin/python3 -m maskface_train.export --backbone r50 --random --out r50-cal.onnx
writes a randomly initialised CAL model for latency benchmarks (generated on demand, never
committed);
    /usr/bin/python3 -m maskface_train.export --run runs/cal-not_mask-s0 --fused-attention --out fused.onnx
exports a finished distillation run again, with the model card of its model.onnx.
"""
from __future__ import annotations

import argparse
import copy
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from .backbones import get_backbone
from .mfsa import MFSA, MaskFaceNet

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

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> "ModelCard":
        """The card that metadata() wrote (the entries of an exported model's metadata_props)."""
        numbers = lambda text: tuple(float(v) for v in text.split(","))  # noqa: E731
        return cls(name=metadata["maskface.name"], version=metadata["maskface.version"],
                   mean=numbers(metadata["maskface.mean"]), std=numbers(metadata["maskface.std"]),
                   color=metadata["maskface.color"], template=metadata["maskface.template"])


ATTENTION_MASK_DOMAIN = "maskface"
ATTENTION_MASK_OP = "AttentionMask"
ATTENTION_MASK_OPSET = 1


class _AttentionMask(torch.autograd.Function):
    """(features, logits) -> (features * A, softmax(logits)): eager maths of MFSA, one ONNX node."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, logits: torch.Tensor, module: MFSA):
        return features * module.attention(logits), torch.softmax(logits, dim=1)

    @staticmethod
    def symbolic(g, features, logits, module: MFSA):
        return g.op(f"{ATTENTION_MASK_DOMAIN}::{ATTENTION_MASK_OP}", features, logits,
                    gating_s=module.gating, outputs=2)


class _FusedMFSA(nn.Module):
    """An MFSA module whose attention masking exports as one maskface::AttentionMask node.

    Returns the op's probabilities where MFSA returns logits: export only uses the finest module's
    probabilities (the `regions` output), which then come from the op instead of another softmax.
    """

    def __init__(self, module: MFSA) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _AttentionMask.apply(x, self.module.logits(x), self.module)


class _Exported(nn.Module):
    """The graph that is exported: embedding, and the finest module's probabilities."""

    def __init__(self, model: MaskFaceNet, fused_attention: bool) -> None:
        super().__init__()
        if fused_attention:
            model = copy.deepcopy(model)  # the caller's model keeps its own modules
            for key, module in model.mfsa.items():
                model.mfsa[key] = _FusedMFSA(module)
        self.model = model
        self.fused_attention = fused_attention

    def forward(self, x: torch.Tensor):
        embedding, region_outputs = self.model(x)
        if not region_outputs:
            return embedding
        if self.fused_attention:
            return embedding, region_outputs[0]  # already probabilities (_FusedMFSA)
        return embedding, torch.softmax(region_outputs[0], dim=1)


def export_onnx(model: MaskFaceNet, path: str | os.PathLike, card: ModelCard, *, opset: int = 13,
                input_size: int = 112, fused_attention: bool = False) -> Path:
    """Exports `model` (eval mode, batch symbolic) and returns the path written.

    fused_attention: each MFSA module's softmax + gate + multiply becomes one
    maskface::AttentionMask node, which only maskface's runtime (or one that registers the op)
    can run; without it the model is plain ONNX."""
    path = Path(path)
    exported = _Exported(model, fused_attention).eval()
    has_regions = bool(model.mfsa)
    outputs = ["embedding", "regions"] if has_regions else ["embedding"]
    dummy = torch.zeros(2, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        # Its missing shape inference is made up for below (_declare_shapes_past_custom_ops).
        warnings.filterwarnings("ignore", "The shape inference of maskface::AttentionMask", UserWarning)
        eager = exported(dummy)
        eager_shapes = {name: tuple(t.shape) for name, t in zip(outputs, eager if has_regions else [eager])}
        dim = eager_shapes["embedding"][1]
        torch.onnx.export(
            exported, dummy, str(path), input_names=["input"], output_names=outputs,
            dynamic_axes={name: {0: "N"} for name in ["input", *outputs]},
            opset_version=opset, do_constant_folding=True,
            custom_opsets={ATTENTION_MASK_DOMAIN: ATTENTION_MASK_OPSET} if fused_attention else None)
    onnx_model = onnx.load(str(path))
    if fused_attention:
        _declare_shapes_past_custom_ops(onnx_model.graph, eager_shapes)
    gating = next(iter(model.mfsa.values())).gating if has_regions else None
    for key, value in card.metadata(dim, gating).items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))
    return path


def _declare_shapes_past_custom_ops(graph: onnx.GraphProto, output_shapes: dict[str, tuple[int, ...]]) -> None:
    """Shape inference cannot see through a custom op: the exporter gives every tensor after the
    first AttentionMask made-up symbolic dimensions, outputs included, where the runtime needs
    fixed region and embedding sizes. Drops those hints (value_info is optional: ONNX Runtime
    infers what it can and sizes the rest when it runs) and declares the outputs' shapes from the
    eager run, batch symbolic."""
    del graph.value_info[:]
    for output in graph.output:
        for dim, size in zip(output.type.tensor_type.shape.dim[1:], output_shapes[output.name][1:]):
            dim.dim_value = size  # replaces the dim_param (a oneof)


def random_cal_model(backbone: str, gating: str = "face") -> MaskFaceNet:
    """A randomly initialised CAL model (for latency measurements only: it recognises nobody)."""
    return MaskFaceNet(get_backbone(backbone), use_mfsa=True, gating=gating).eval()


def trained_distill_model(run: str | os.PathLike) -> tuple[MaskFaceNet, ModelCard]:
    """A finished distillation run's student and the model card of the model.onnx it exported."""
    from .distill import load_student  # distill imports this module

    metadata = {p.key: p.value for p in onnx.load(str(Path(run) / "model.onnx")).metadata_props}
    return load_student(run), ModelCard.from_metadata(metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--random", action="store_true",
                        help="export a randomly initialised model (for latency measurements)")
    source.add_argument("--run", type=Path,
                        help="export a finished distillation run (its student.pt) again, with its model card")
    parser.add_argument("--backbone", default="r50", help="with --random: r18, r34, r50, r100 or mobilefacenet")
    parser.add_argument("--gating", default="face", choices=["face", "not_mask"], help="with --random")
    parser.add_argument("--fused-attention", action="store_true",
                        help="export attention masking as maskface::AttentionMask nodes (maskface runtime only)")
    parser.add_argument("--opset", type=int, default=13)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.run is not None:
        model, card = trained_distill_model(args.run)
    else:
        torch.manual_seed(0)
        model = random_cal_model(args.backbone, args.gating)
        card = ModelCard(name=f"random-{args.backbone}-cal", version="0")
    print(export_onnx(model, args.out, card, opset=args.opset, fused_attention=args.fused_attention))


if __name__ == "__main__":
    main()
