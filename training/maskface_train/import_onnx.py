"""Load fr_feature.onnx (faceplugin-face-recognition-js@0.0.1) into the PyTorch MobileFaceNet.

The ONNX graph has no parameter names worth trusting (initializers are numbered by the exporter),
so the mapping walks the graph in node order against the modules in forward order, and checks
everything that could silently go wrong: op sequence, data flow (each op reads the previous
output; each Add joins a residual block's input and output), conv attributes, tensor shapes, and
that every initializer is used exactly once.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from .backbones.mobilefacenet import Bottleneck, ConvUnit, MobileFaceNet

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_MODEL_NAME = "mobilefacenet.source.onnx"  # fr_feature.onnx exactly as published


def model_dir() -> Path:
    """Where `npm run fetch:models` leaves the models: the runtime's model cache ($MASKFACE_CACHE_DIR,
    else $XDG_CACHE_HOME/maskface, else ~/.cache/maskface, then models/); MASKFACE_MODEL_DIR overrides it."""
    if os.environ.get("MASKFACE_MODEL_DIR"):
        return Path(os.environ["MASKFACE_MODEL_DIR"])
    if os.environ.get("MASKFACE_CACHE_DIR"):
        root = Path(os.environ["MASKFACE_CACHE_DIR"])
    elif os.path.isabs(os.environ.get("XDG_CACHE_HOME", "")):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "maskface"
    else:
        root = Path.home() / ".cache" / "maskface"
    return root / "models"


class OnnxImportError(ValueError):
    pass


def _expected_ops(model: MobileFaceNet) -> list[tuple[str, nn.Module | None, bool]]:
    """(op type, module holding its parameters, whether this op starts a residual block)."""
    ops: list[tuple[str, nn.Module | None, bool]] = []

    def unit(u: ConvUnit, starts_block: bool = False) -> None:
        ops.append(("Conv", u.conv, starts_block))
        if u.prelu is not None:
            ops.append(("PRelu", u.prelu, False))

    for u in model.stem:
        unit(u)
    for stage in model.stages:
        for block in stage:
            assert isinstance(block, Bottleneck)
            unit(block.expand, starts_block=block.residual)
            unit(block.depthwise)
            unit(block.project)
            if block.residual:
                ops.append(("Add", None, False))
    for u in (model.head.expand, model.head.gdc, model.head.linear):
        unit(u)
    ops.append(("Reshape", None, False))
    return ops


def _check_conv(where: str, conv: nn.Conv2d, attrs: dict) -> None:
    expected = {
        "kernel_shape": list(conv.kernel_size),
        "strides": list(conv.stride),
        "dilations": list(conv.dilation),
        "group": conv.groups,
        "pads": list(conv.padding) * 2,  # ONNX: begin_h, begin_w, end_h, end_w
    }
    defaults = {"strides": [1, 1], "dilations": [1, 1], "group": 1, "pads": [0, 0, 0, 0]}
    for key, value in expected.items():
        got = attrs.get(key, defaults.get(key))
        if got != value:
            raise OnnxImportError(f"{where}: attribute {key} is {got}, the PyTorch layer has {value}")


def load_onnx_into(model: MobileFaceNet, onnx_path: str | os.PathLike) -> MobileFaceNet:
    graph = onnx.load(str(onnx_path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    uses = dict.fromkeys(inits, 0)
    inputs = [i.name for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise OnnxImportError(f"expected one input and one output, got inputs {inputs} "
                              f"and outputs {[o.name for o in graph.output]}")

    def param(where: str, name: str) -> np.ndarray:
        if name not in inits:
            raise OnnxImportError(f"{where}: input {name!r} is not an initializer")
        uses[name] += 1
        return inits[name]

    expected = _expected_ops(model)
    ops = [(n.op_type, n) for n in graph.node]
    if [op for op, _ in ops] != [op for op, _, _ in expected]:
        raise OnnxImportError(
            "op sequence differs from the PyTorch MobileFaceNet: graph has "
            f"{[op for op, _ in ops]}, expected {[op for op, _, _ in expected]}")

    current = inputs[0]  # name of the tensor the next op must read
    block_input = None
    for index, ((op, node), (_, module, starts_block)) in enumerate(zip(ops, expected)):
        where = f"node {index} ({op} {node.name or node.output[0]})"
        if starts_block:
            block_input = current
        data_inputs = [i for i in node.input if i not in inits]
        if op == "Add":
            if sorted(data_inputs) != sorted([block_input, current]):
                raise OnnxImportError(f"{where}: adds {data_inputs}, expected the residual "
                                      f"block input {block_input!r} and its output {current!r}")
        elif data_inputs != [current]:
            raise OnnxImportError(f"{where}: reads {data_inputs}, expected [{current!r}]")

        if op == "Conv":
            assert isinstance(module, nn.Conv2d)
            _check_conv(where, module, {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})
            if len(node.input) != 3:
                raise OnnxImportError(f"{where}: expected a bias (BatchNorm folded), inputs {list(node.input)}")
            weight, bias = param(where, node.input[1]), param(where, node.input[2])
            for name, tensor, target in (("weight", weight, module.weight), ("bias", bias, module.bias)):
                if tuple(tensor.shape) != tuple(target.shape):
                    raise OnnxImportError(f"{where}: {name} shape {tensor.shape}, expected {tuple(target.shape)}")
                target.data.copy_(torch.from_numpy(tensor.astype(np.float32)))
        elif op == "PRelu":
            assert isinstance(module, nn.PReLU)
            slope = param(where, node.input[1])
            # ONNX keeps slopes as [C,1,1] to broadcast over H and W; PyTorch stores [C].
            if slope.shape != (module.num_parameters, 1, 1):
                raise OnnxImportError(f"{where}: slope shape {slope.shape}, expected ({module.num_parameters}, 1, 1)")
            module.weight.data.copy_(torch.from_numpy(slope.reshape(-1).astype(np.float32)))
        elif op == "Reshape":
            shape = param(where, node.input[1]).tolist()
            # [1, -1] as published; [-1, 512] or [0, -1] after making the batch symbolic.
            if len(shape) != 2 or shape[1] not in (-1, model.embedding_size):
                raise OnnxImportError(f"{where}: reshape to {shape}, expected a flatten to [N, {model.embedding_size}]")
        current = node.output[0]

    if current != graph.output[0].name:
        raise OnnxImportError(f"last op writes {current!r}, the graph output is {graph.output[0].name!r}")
    misused = {name: count for name, count in uses.items() if count != 1}
    if misused:
        raise OnnxImportError(f"initializers not used exactly once (name: uses): {misused}")
    return model


def load_fr_feature(onnx_path: str | os.PathLike | None = None) -> MobileFaceNet:
    """The pretrained MobileFaceNet, in eval mode. Input RGB (x - 127) / 128, output unnormalised 512-d."""
    path = onnx_path if onnx_path is not None else model_dir() / SOURCE_MODEL_NAME
    return load_onnx_into(MobileFaceNet(), path).eval()
