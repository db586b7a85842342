"""int8 variant of an exported maskface model, for ONNX Runtime's integer kernels on the CPU.

    /usr/bin/python3 -m maskface_train.quantize in.onnx out.onnx [--faces 1024] [--sidecar] [--measure out.json]

Static quantisation, uint8 activations (asymmetric, one scale per tensor) and int8 weights
(symmetric, one scale per output channel, int32 bias at input scale x weight scale). The
default output runs in maskface's runtime: the quantised part of the network is written in
explicit integer ops on NHWC tensors (com.microsoft QLinearConv with channels_last = 1,
com.microsoft QLinearAdd for residual connections, and maskface::QLinearPRelu, maskface's own
op, for PReLU), so that nothing between two convolutions leaves uint8 and ONNX Runtime needs no
layout conversion around each PReLU. ONNX Runtime has no integer PReLU: in the standard QDQ form
(`--standard-ops`, which any ONNX Runtime runs) every PReLU is dequantised, run in float and
quantised again, and that model is no faster than the float one.

Kept in float: the MFSA attention branches (their region maps decide maskProbability and the
gating; a small share of the work) and the head (the 7x7 expansion, the global depthwise conv
and the last linear layer, whose output is the embedding: quantising it costs the most accuracy
for the least time). `--keep-float REGEX` names further convs by their output tensor.

Activation ranges come from running the float model (onnxruntime-node, the graph as exported)
on aligned faces of the rmfrd 'train' identities, masked and bare, as the runtime aligns them:
the range of each tensor is its `--percentile` (default 99.999) and the mirror low percentile,
widened to include 0. The network input is quantised on the pixel grid (scale 1/std, zero point
the mean), which holds every normalised 8-bit pixel exactly. Weights use 7 bits with
`--reduce-range`: CPUs without VNNI multiply uint8 by int8 in 16-bit pairs that can saturate
with full 8-bit weights.

The input and outputs stay float32; metadata is kept, with `maskface.precision` = `int8`.
`--measure` compares the two models through maskface's runtime on rmfrd 'val' and the held-out
sets of maskface_train.evaluate.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PRECISION_KEY = "maskface.precision"
DEFAULT_KEEP_FLOAT = r"/mfsa\.\d+/|/head/"
ONNX_DOMAINS = ("", "ai.onnx")
INT32_MAX = float(np.iinfo(np.int32).max)
CUSTOM_DOMAIN = "maskface"


QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearAdd", "QLinearPRelu"})


class AlreadyQuantizedError(ValueError):
    """The model already holds quantised ops."""


@dataclass
class QuantizeReport:
    quantized_convs: list[str] = field(default_factory=list)
    float_convs: list[str] = field(default_factory=list)
    activation_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    widened_channels: int = 0   # weight scales widened so that the bias fits int32
    fused_prelus: int = 0       # PRelu nodes run as maskface::QLinearPRelu
    faces: int = 0

    def summary(self) -> str:
        return (f"{len(self.quantized_convs)} convs quantised, {len(self.float_convs)} kept float, "
                f"{len(self.activation_ranges)} activation ranges from {self.faces} faces"
                + (f", {self.widened_channels} channels' weight scales widened for their bias" if self.widened_channels else "")
                + (f", {self.fused_prelus} PRelu as maskface::QLinearPRelu" if self.fused_prelus else ""))


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def fold_constant_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without Identity nodes whose input is an initializer (PyTorch's exporter writes them
    for weights it reuses), their consumers reading the initializer itself: the quantiser looks for
    constant weights by initializer name."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = _initializers(out)
    graph_outputs = {o.name for o in out.graph.output}
    alias = {n.output[0]: n.input[0] for n in out.graph.node
             if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in graph_outputs}
    kept = [n for n in out.graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
    del out.graph.node[:]
    out.graph.node.extend(kept)
    return out


def select_convs(model: onnx.ModelProto, keep_float: str = DEFAULT_KEEP_FLOAT) -> tuple[list, list]:
    """(convs to quantise, convs kept float): standard-domain Conv nodes with initializer weights
    (and bias), split by `keep_float` matched against the conv's output name."""
    inits = _initializers(model)
    pattern = re.compile(keep_float) if keep_float else None
    chosen, kept = [], []
    for node in model.graph.node:
        if node.op_type != "Conv" or node.domain not in ONNX_DOMAINS:
            continue
        constant = node.input[1] in inits and (len(node.input) < 3 or not node.input[2] or node.input[2] in inits)
        if constant and not (pattern and pattern.search(node.output[0])):
            chosen.append(node)
        else:
            kept.append(node)
    return chosen, kept


def activation_tensors(convs: list) -> list[str]:
    """The tensors that get a QuantizeLinear/DequantizeLinear pair: inputs and outputs of the
    quantised convs, in graph order, each once."""
    names: list[str] = []
    for node in convs:
        for name in (node.input[0], node.output[0]):
            if name not in names:
                names.append(name)
    return names


def calibration_faces(count: int, seed: int = 0) -> np.ndarray:
    """`count` aligned faces (uint8 RGB, 112x112) of the rmfrd 'train' identities, half masked
    (aligned on the eyes and nose, as the runtime aligns masked faces) and half bare (five points)."""
    from .realmasks import load_rmfrd
    data = load_rmfrd("train")
    rng = np.random.default_rng(seed)
    masked = rng.permutation(np.flatnonzero(data.masked))[: count // 2]
    bare = rng.permutation(np.flatnonzero(~data.masked))[: count - len(masked)]
    return np.concatenate([data.eyes_nose[masked], data.five_point[bare]])


def model_input(model: onnx.ModelProto, faces: np.ndarray) -> np.ndarray:
    """NCHW float32 input of `faces` (N,H,W,3 uint8 RGB) by the model's own metadata, as the runtime
    preprocesses them."""
    meta = {p.key: p.value for p in model.metadata_props}
    mean = np.array([float(v) for v in meta.get("maskface.mean", "127.5,127.5,127.5").split(",")], np.float32)
    std = np.array([float(v) for v in meta.get("maskface.std", "128,128,128").split(",")], np.float32)
    pixels = faces.astype(np.float32)
    if meta.get("maskface.color", "rgb") == "bgr":
        pixels = pixels[..., ::-1]
    return np.ascontiguousarray(((pixels - mean) / std).transpose(0, 3, 1, 2))


def calibrate(model_path: str | Path, tensors: list[str], inputs: np.ndarray, *, percentile: float = 99.999,
              chunk: int = 16, sample: int = 2_000_000, seed: int = 0,
              progress=lambda done, total: None) -> dict[str, tuple[float, float]]:
    """The range (low, high) of each tensor over `inputs`, from the float model run by
    onnxruntime-node with `tensors` made graph outputs (graph optimisations off, so that each
    tensor is the exported one)."""
    import tempfile
    from .ort_node import run_model
    model = onnx.load(str(model_path))
    present = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in present:
            model.graph.output.append(helper.make_empty_tensor_value_info(name))
    rng = np.random.default_rng(seed)
    low = {t: np.inf for t in tensors}
    high = {t: -np.inf for t in tensors}
    samples: dict[str, list[np.ndarray]] = {t: [] for t in tensors}
    with tempfile.TemporaryDirectory(prefix="calibrate-") as work:
        probe = Path(work) / "probe.onnx"
        onnx.save(model, str(probe))
        for start in range(0, len(inputs), chunk):
            outputs, _ = run_model(probe, inputs[start:start + chunk], optimisation="disabled")
            for name in tensors:
                values = outputs[name].ravel()
                low[name] = min(low[name], float(values.min()))
                high[name] = max(high[name], float(values.max()))
                take = min(len(values), sample // max(1, len(inputs) // chunk))
                samples[name].append(rng.choice(values, take, replace=False))
            progress(min(start + chunk, len(inputs)), len(inputs))
    ranges = {}
    for name in tensors:
        if percentile >= 100:
            lo, hi = low[name], high[name]
        else:
            lo, hi = np.percentile(np.concatenate(samples[name]), [100 - percentile, percentile])
        ranges[name] = (min(0.0, float(lo)), max(0.0, float(hi)))
    return ranges


def uint8_parameters(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point of an asymmetric uint8 quantisation of [low, high] (0 exactly representable)."""
    scale = (high - low) / 255.0
    if scale <= 0:
        return 1.0, 0
    zero_point = int(np.clip(round(-low / scale), 0, 255))
    return float(scale), zero_point


def int8_weights(weights: np.ndarray, reduce_range: bool,
                 min_scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Symmetric per-output-channel int8 weights, their scales, and how many channels' scales
    were raised to `min_scales`."""
    bound = 63.0 if reduce_range else 127.0
    flat = weights.reshape(weights.shape[0], -1)
    peak = np.abs(flat).max(axis=1)
    scales = np.where(peak > 0, peak / bound, 1.0)
    widened = 0
    if min_scales is not None:
        widened = int((min_scales > scales).sum())
        scales = np.maximum(scales, min_scales)
    # float32 scales: never 0, even for a channel of denormals
    scales = np.maximum(scales, np.finfo(np.float32).tiny).astype(np.float32)
    quantized = np.clip(np.round(flat / scales[:, None]), -bound, bound)
    return quantized.astype(np.int8).reshape(weights.shape), scales, widened


def input_pixel_grid(model: onnx.ModelProto) -> tuple[float, int] | None:
    """(scale, zero point) that quantise the network input without loss: its values are 8-bit pixels
    normalised as (pixel - mean) / std, so scale 1/std and zero point mean hold every one exactly,
    when mean and std are the same for the three channels and the mean is a whole number 0..255."""
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        mean = {float(v) for v in meta["maskface.mean"].split(",")}
        std = {float(v) for v in meta["maskface.std"].split(",")}
    except (KeyError, ValueError):
        return None
    if len(mean) != 1 or len(std) != 1:
        return None
    (m,), (d,) = mean, std
    return (1.0 / d, int(m)) if m.is_integer() and 0 <= m <= 255 and d > 0 else None


def activation_parameters(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]]):
    """name -> (scale, zero point) of a uint8 activation: the network input on its pixel grid where
    the metadata allows, every other tensor from its calibrated range."""
    grid = input_pixel_grid(model)
    inputs = {i.name for i in model.graph.input}
    return lambda name: grid if grid is not None and name in inputs else uint8_parameters(*ranges[name])


def conv_parameters(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto], input_scale: float,
                    reduce_range: bool, report: QuantizeReport) -> tuple[list[onnx.TensorProto], str, np.ndarray | None]:
    """A quantised conv's int8 weights (`<output>_weight_quantized`, `_scale`, `_zero_point`: one scale
    per output channel) and int32 bias (`<output>_bias_quantized`, at input scale x weight scale), as
    initializers named after the conv's output (convs may share a float weight, not its
    quantisation): (initializers, weight base name, the bias scales or None without a bias)."""
    weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    has_bias = len(node.input) > 2 and bool(node.input[2])
    bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64) if has_bias else None
    # A channel whose weights are all tiny (the published backbone has channels of denormals)
    # gets a tiny weight scale, and its bias would overflow int32 at input scale x weight scale:
    # such a channel's weight scale is raised until its bias fits.
    min_scales = None if bias is None else np.abs(bias) / (input_scale * (INT32_MAX - 1))
    q_weight, w_scales, widened = int8_weights(weight, reduce_range, min_scales)
    report.widened_channels += widened
    base = f"{node.output[0]}_weight"
    initializers = [numpy_helper.from_array(q_weight, f"{base}_quantized"),
                    numpy_helper.from_array(w_scales, f"{base}_scale"),
                    numpy_helper.from_array(np.zeros(len(w_scales), np.int8), f"{base}_zero_point")]
    if bias is None:
        return initializers, base, None
    bias_scales = input_scale * w_scales.astype(np.float64)
    q_bias = np.clip(np.round(bias / bias_scales), -INT32_MAX, INT32_MAX).astype(np.int32)
    initializers.append(numpy_helper.from_array(q_bias, f"{node.output[0]}_bias_quantized"))
    return initializers, base, bias_scales


def quantize_model(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], convs: list, *,
                   reduce_range: bool = False, report: QuantizeReport | None = None) -> onnx.ModelProto:
    """A copy of `model` with QDQ around `convs` (nodes of `model`), given activation ranges: standard
    ONNX that any ONNX Runtime runs (PRelu stays float between DequantizeLinear and QuantizeLinear)."""
    report = report if report is not None else QuantizeReport()
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = _initializers(out)
    conv_ids = {id(n) for n in convs}
    convs_here = [n for n, original in zip(graph.node, model.graph.node) if id(original) in conv_ids]
    graph_outputs = {o.name for o in graph.output}
    conv_input = {id(node): node.input[0] for node in convs_here}   # before inputs are rewired

    new_inits: list[onnx.TensorProto] = []
    quant_nodes: dict[str, list[onnx.NodeProto]] = {}   # inserted right after the tensor's producer
    dequantized: dict[str, str] = {}
    scales: dict[str, float] = {}
    activation = activation_parameters(model, ranges)
    for name in activation_tensors(convs_here):
        scale, zero_point = activation(name)
        scales[name] = scale
        if name in graph_outputs:
            raise ValueError(f"{name} is a graph output; keep its conv float (--keep-float)")
        q, dq = f"{name}_quantized", f"{name}_dequantized"
        new_inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                      numpy_helper.from_array(np.array(zero_point, np.uint8), f"{name}_zero_point")]
        quant_nodes[name] = [
            helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [q], name=f"{name}_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [q, f"{name}_scale", f"{name}_zero_point"], [dq], name=f"{name}_DequantizeLinear"),
        ]
        dequantized[name] = dq

    # Every consumer reads a quantised tensor dequantised: ONNX Runtime folds a conv into
    # QLinearConv only when a QuantizeLinear is its one consumer, and an Add between two
    # dequantised tensors followed by a QuantizeLinear into QLinearAdd.
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in dequantized:
                node.input[i] = dequantized[name]

    for node in convs_here:
        report.quantized_convs.append(node.output[0])
        initializers, base, bias_scales = conv_parameters(node, inits, scales[conv_input[id(node)]], reduce_range, report)
        new_inits += initializers
        steps = quant_nodes.setdefault(f"weights:{node.output[0]}", [])
        steps.append(helper.make_node("DequantizeLinear", [f"{base}_quantized", f"{base}_scale", f"{base}_zero_point"],
                                      [f"{base}_dequantized"], name=f"{base}_DequantizeLinear", axis=0))
        node.input[1] = f"{base}_dequantized"
        if bias_scales is not None:
            bias = f"{node.output[0]}_bias"
            new_inits += [numpy_helper.from_array(bias_scales.astype(np.float32), f"{bias}_scale"),
                          numpy_helper.from_array(np.zeros(len(bias_scales), np.int32), f"{bias}_zero_point")]
            steps.append(helper.make_node("DequantizeLinear", [f"{bias}_quantized", f"{bias}_scale", f"{bias}_zero_point"],
                                          [f"{bias}_dequantized"], name=f"{bias}_DequantizeLinear", axis=0))
            node.input[2] = f"{bias}_dequantized"

    # Rebuild the node list in a valid order: each tensor's QDQ pair right after its producer (or
    # first, for the graph input), each conv's weight/bias DequantizeLinear right before it.
    ordered: list[onnx.NodeProto] = []
    for name in dequantized:
        if name in {i.name for i in graph.input}:
            ordered += quant_nodes[name]
    for node in graph.node:
        ordered += quant_nodes.get(f"weights:{node.output[0]}", []) if node.op_type == "Conv" else []
        ordered.append(node)
        for name in node.output:
            ordered += quant_nodes.get(name, [])
    del graph.node[:]
    graph.node.extend(ordered)

    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    report.activation_ranges = {name: ranges[name] for name in dequantized}
    report.float_convs = [n.output[0] for n in graph.node if n.op_type == "Conv" and n.output[0] not in report.quantized_convs]

    meta = {p.key: p for p in out.metadata_props}
    if PRECISION_KEY in meta:
        meta[PRECISION_KEY].value = "int8"
    else:
        out.metadata_props.append(onnx.StringStringEntryProto(key=PRECISION_KEY, value="int8"))
    onnx.checker.check_model(out)
    return out


def quantized_tensors(model: onnx.ModelProto, convs: list) -> list[str]:
    """The tensors held in uint8 by quantize_model_channels_last: the inputs and outputs of the
    quantised convs, and the outputs of Adds whose inputs both are (residual connections)."""
    names = activation_tensors(convs)
    for node in model.graph.node:
        if node.op_type == "Add" and node.domain in ONNX_DOMAINS and all(i in names for i in node.input):
            names.append(node.output[0])
    return names


def quantize_model_channels_last(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], convs: list, *,
                                 reduce_range: bool = False, quantize_adds: bool = True,
                                 report: QuantizeReport | None = None) -> onnx.ModelProto:
    """A copy of `model` in which the quantised part runs on uint8 tensors in NHWC order, in
    explicit integer ops: com.microsoft QLinearConv (channels_last = 1, uint8 x int8 weights per
    output channel, int32 bias), com.microsoft QLinearAdd for residual Adds, and
    maskface::QLinearPRelu for PRelu. Tensors enter the uint8 part through QuantizeLinear and a
    Transpose to NHWC, and leave it (to the float ops: the attention, the last linear layer)
    through DequantizeLinear and a Transpose back, under their own names. It runs only in
    maskface's runtime (QLinearPRelu), where ONNX Runtime's integer convolutions work in NHWC
    without layout conversions around every PRelu."""
    report = report if report is not None else QuantizeReport()
    inits = _initializers(model)
    conv_ids = {id(n) for n in convs}
    quantizable = set(quantized_tensors(model, convs))
    graph_inputs = {i.name for i in model.graph.input}
    activation = activation_parameters(model, ranges)
    nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    uint8: dict[str, tuple[str, str, str]] = {}   # tensor -> (uint8 NHWC name, scale, zero point)
    float_ready: set[str] = set(graph_inputs) | set(inits)
    scales: dict[str, float] = {}

    def parameters(name: str) -> tuple[str, str]:
        if name not in scales:
            scale, zero_point = activation(name)
            scales[name] = scale
            new_inits.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                              numpy_helper.from_array(np.array(zero_point, np.uint8), f"{name}_zero_point")])
        return f"{name}_scale", f"{name}_zero_point"

    def as_uint8(name: str) -> tuple[str, str, str]:
        """The uint8 NHWC form of a tensor, made from its float form when it has none yet."""
        if name not in uint8:
            scale, zero = parameters(name)
            nodes.append(helper.make_node("QuantizeLinear", [name, scale, zero], [f"{name}_quantized_nchw"],
                                          name=f"{name}_QuantizeLinear"))
            nodes.append(helper.make_node("Transpose", [f"{name}_quantized_nchw"], [f"{name}_quantized"],
                                          name=f"{name}_ToNHWC", perm=[0, 2, 3, 1]))
            uint8[name] = (f"{name}_quantized", scale, zero)
        return uint8[name]

    def as_float(name: str) -> str:
        """The float NCHW form of a tensor under its own name, made from its uint8 form if need be."""
        if name not in float_ready:
            q, scale, zero = uint8[name]
            nodes.append(helper.make_node("DequantizeLinear", [q, scale, zero], [f"{name}_dequantized_nhwc"],
                                          name=f"{name}_DequantizeLinear"))
            nodes.append(helper.make_node("Transpose", [f"{name}_dequantized_nhwc"], [name], name=f"{name}_ToNCHW",
                                          perm=[0, 3, 1, 2]))
            float_ready.add(name)
        return name

    for node in model.graph.node:
        if id(node) in conv_ids:
            x, x_scale, x_zero = as_uint8(node.input[0])
            y = node.output[0]
            y_scale, y_zero = parameters(y)
            initializers, base, bias_scales = conv_parameters(node, inits, scales[node.input[0]], reduce_range, report)
            new_inits += initializers
            inputs = [x, x_scale, x_zero, f"{base}_quantized", f"{base}_scale", f"{base}_zero_point", y_scale, y_zero]
            if bias_scales is not None:
                inputs.append(f"{y}_bias_quantized")
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            nodes.append(helper.make_node("QLinearConv", inputs, [f"{y}_quantized"], name=f"{node.name or y}_QLinearConv",
                                          domain="com.microsoft", channels_last=1, **attributes))
            uint8[y] = (f"{y}_quantized", y_scale, y_zero)
            report.quantized_convs.append(y)
        elif (node.op_type == "PRelu" and node.domain in ONNX_DOMAINS and node.input[0] in uint8
              and node.output[0] in quantizable and node.input[1] in inits):
            x, x_scale, x_zero = uint8[node.input[0]]
            z = node.output[0]
            z_scale, z_zero = parameters(z)
            slope = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32).ravel()
            new_inits.append(numpy_helper.from_array(slope, f"{node.input[1]}_per_channel"))
            nodes.append(helper.make_node("QLinearPRelu", [x, x_scale, x_zero, f"{node.input[1]}_per_channel", z_scale, z_zero],
                                          [f"{z}_quantized"], name=f"{node.name or z}_QLinearPRelu", domain=CUSTOM_DOMAIN,
                                          channels_last=1))
            uint8[z] = (f"{z}_quantized", z_scale, z_zero)
            report.fused_prelus += 1
        elif (quantize_adds and node.op_type == "Add" and node.domain in ONNX_DOMAINS and all(i in uint8 for i in node.input)
              and node.output[0] in quantizable):
            (a, a_scale, a_zero), (b, b_scale, b_zero) = uint8[node.input[0]], uint8[node.input[1]]
            c = node.output[0]
            c_scale, c_zero = parameters(c)
            nodes.append(helper.make_node("QLinearAdd", [a, a_scale, a_zero, b, b_scale, b_zero, c_scale, c_zero],
                                          [f"{c}_quantized"], name=f"{node.name or c}_QLinearAdd", domain="com.microsoft"))
            uint8[c] = (f"{c}_quantized", c_scale, c_zero)
        else:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            for i, name in enumerate(copy.input):
                if name and name in uint8:
                    copy.input[i] = as_float(name)
            nodes.append(copy)
            float_ready.update(copy.output)
    for output in model.graph.output:
        if output.name in uint8:
            as_float(output.name)

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + [t for t in new_inits if t.name in used])
    del graph.value_info[:]   # shapes of the rewritten tensors changed (NHWC): let the runtime infer them
    for domain in ("com.microsoft", CUSTOM_DOMAIN):
        if not any(o.domain == domain for o in out.opset_import):
            out.opset_import.append(helper.make_opsetid(domain, 1))
    report.activation_ranges = {name: ranges[name] for name in scales}
    report.float_convs = [n.output[0] for n in nodes if n.op_type == "Conv"]
    meta = {p.key: p for p in out.metadata_props}
    if PRECISION_KEY in meta:
        meta[PRECISION_KEY].value = "int8"
    else:
        out.metadata_props.append(onnx.StringStringEntryProto(key=PRECISION_KEY, value="int8"))
    return out


def quantize_file(source: str | Path, target: str | Path, *, faces: int = 1024, percentile: float = 99.999,
                  keep_float: str = DEFAULT_KEEP_FLOAT, reduce_range: bool = False, standard_ops: bool = False,
                  seed: int = 0, verbose: bool = True) -> QuantizeReport:
    model = fold_constant_identities(onnx.load(str(source)))
    if any(n.op_type in QUANTIZED_OPS for n in model.graph.node):
        raise AlreadyQuantizedError(f"{source} is already quantised (it has quantised ops)")
    convs, _ = select_convs(model, keep_float)
    if not convs:
        raise ValueError(f"{source}: no Conv with constant weights to quantise")
    tensors = activation_tensors(convs) if standard_ops else quantized_tensors(model, convs)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if verbose:
            print(f"\rcalibrating: {done}/{total} faces, {time.monotonic() - started:.0f} s", end="", file=sys.stderr, flush=True)

    inputs = model_input(model, calibration_faces(faces, seed))
    ranges = calibrate(source, tensors, inputs, percentile=percentile, seed=seed, progress=progress)
    if verbose:
        print(file=sys.stderr)
    report = QuantizeReport(faces=len(inputs))
    if standard_ops:
        quantized = quantize_model(model, ranges, convs, reduce_range=reduce_range, report=report)
    else:
        quantized = quantize_model_channels_last(model, ranges, convs, reduce_range=reduce_range, report=report)
    onnx.save(quantized, str(target))
    return report


def write_sidecar(source: Path, target: Path, *, reduce_range: bool, percentile: float, faces: int) -> None:
    """models/<name>-int8.json from the float model's sidecar."""
    float_sidecar = json.loads(source.with_suffix(".json").read_text())
    data = target.read_bytes()
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    sidecar = {
        "name": f"{float_sidecar['name']}-int8",
        "version": float_sidecar["version"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "licence": float_sidecar["licence"],
        "description": (f"{float_sidecar['name']} {float_sidecar['version']} quantised to int8 for the CPU by "
                        f"maskface_train.quantize from {source.name} (sha256 {source_sha[:16]}...): uint8 activations "
                        f"calibrated on {faces} aligned rmfrd 'train' faces (percentile {percentile}), int8 weights per "
                        f"output channel ({'7' if reduce_range else '8'} bits), NHWC integer convolutions "
                        f"(com.microsoft QLinearConv) and maskface::QLinearPRelu, so it runs in maskface's runtime only; "
                        f"MFSA attention and the head in float32; float32 input and outputs"),
    }
    target.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def maskface_outputs(path: str | Path, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(unit embeddings, region probabilities (N,3,H,W) or None) of a model file on aligned square
    crops (N,S,S,3 uint8 RGB, S the model's input side), run by maskface's own runtime (the addon of this checkout, through
    scripts/maskface_embed.mjs): what users get, custom ops included."""
    import shutil
    import subprocess
    import tempfile
    from .import_onnx import REPO_ROOT
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH")
    with tempfile.TemporaryDirectory(prefix="maskface-embed-") as work:
        crops = Path(work) / "crops.u8"
        np.ascontiguousarray(faces, np.uint8).tofile(crops)
        result = subprocess.run([node, str(REPO_ROOT / "training" / "scripts" / "maskface_embed.mjs"), str(path), str(crops),
                                 str(len(faces)), work, str(faces.shape[1])], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"maskface could not run {path}: {result.stderr.strip()}")
        info = json.loads(result.stdout.strip().splitlines()[-1])
        embeddings = np.fromfile(Path(work) / "embedding.f32", np.float32).reshape(len(faces), info["dim"])
        regions = None
        if info["regions"]:
            regions = np.fromfile(Path(work) / "regions.f32", np.float32).reshape(len(faces), *info["regions"])
    return embeddings, regions


def measure_models(paths: list[str | Path]) -> dict:
    """Recognition of each model file on rmfrd 'val' (as realmasks.measure) and on the held-out
    sets of evaluate (LFW-100 and the others: bare pairs, and synthetic masked probes), and how
    closely each later model agrees with the first: embedding cosine, maskProbability, the
    28x28 region argmax."""
    from .evaluate import EVAL_SETS, load_eval_data, mask_probability, verification
    from .realmasks import load_rmfrd, measure
    val = load_rmfrd("val")
    held = load_eval_data()
    faces = np.concatenate([val.five_point, val.eyes_nose, held.clean, held.masked])
    n, m = len(val.five_point), len(held.clean)
    results = {}
    reference = None
    for path in paths:
        embeddings, regions = maskface_outputs(path, faces)
        five, eyes_nose = embeddings[:n], embeddings[n:2 * n]
        clean, masked = embeddings[2 * n:2 * n + m], embeddings[2 * n + m:]
        row = {"rmfrd_val": measure(val, _lookup(np.concatenate([val.five_point, val.eyes_nose]),
                                                 np.concatenate([five, eyes_nose])))}
        row["held_out_bare"] = verification(clean, clean, held, held.labels)
        row["held_out_masked"] = verification(masked, clean, held, held.labels)
        row["lfw100_bare_auc"] = row["held_out_bare"][f"auc_{EVAL_SETS[0]}"]
        if regions is not None:
            row["mask_probability"] = mask_probability(regions).tolist()
        if reference is None:
            reference = (embeddings, regions)
        else:
            cos = (embeddings * reference[0]).sum(1)
            row["agreement"] = {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                                "cosine_p01": float(np.percentile(cos, 1))}
            if regions is not None and reference[1] is not None:
                p, q = mask_probability(regions), mask_probability(reference[1])
                row["agreement"].update({
                    "mask_probability_abs_diff_mean": float(np.abs(p - q).mean()),
                    "mask_probability_abs_diff_max": float(np.abs(p - q).max()),
                    "mask_decision_agreement": float(((p >= 0.5) == (q >= 0.5)).mean()),
                    "region_argmax_agreement": float((regions.argmax(1) == reference[1].argmax(1)).mean()),
                })
        row.pop("mask_probability", None)
        results[str(path)] = row
    return results


def _lookup(crops: np.ndarray, embeddings: np.ndarray):
    """An embed function over crops already embedded: images -> their embeddings, by content."""
    index = {hashlib.sha1(c.tobytes()).digest(): e for c, e in zip(crops, embeddings)}
    return lambda images: np.stack([index[hashlib.sha1(image.tobytes()).digest()] for image in images])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--faces", type=int, default=1024, help="calibration faces (rmfrd 'train', half masked)")
    parser.add_argument("--percentile", type=float, default=99.999, help="range percentile; 100 = min/max")
    parser.add_argument("--keep-float", default=DEFAULT_KEEP_FLOAT, help="regex on conv output names kept float")
    parser.add_argument("--reduce-range", action="store_true", help="7-bit weights (no saturation without VNNI)")
    parser.add_argument("--standard-ops", action="store_true",
                        help="QDQ form in standard ONNX (runs in any ONNX Runtime; PRelu stays float, and it is slower)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sidecar", action="store_true", help="also write target.json from source.json")
    parser.add_argument("--measure", metavar="JSON", help="then measure both models and write the comparison here")
    args = parser.parse_args()
    report = quantize_file(args.source, args.target, faces=args.faces, percentile=args.percentile,
                           keep_float=args.keep_float, reduce_range=args.reduce_range,
                           standard_ops=args.standard_ops, seed=args.seed)
    print(report.summary())
    if args.sidecar:
        write_sidecar(Path(args.source), Path(args.target), reduce_range=args.reduce_range,
                      percentile=args.percentile, faces=report.faces)
    if args.measure:
        results = measure_models([args.source, args.target])
        Path(args.measure).write_text(json.dumps(results, indent=1) + "\n")
        for path, row in results.items():
            m, b = row["rmfrd_val"]["masked_vs_bare"], row["rmfrd_val"]["bare_vs_bare"]
            print(f"{Path(path).name}: rmfrd val masked AUC {m['auc']:.4f} TAR@1e-2 {m['tar@1e-2']:.4f} "
                  f"rank-1 {m['rank1']:.4f} | bare AUC {b['auc']:.4f} TAR@1e-2 {b['tar@1e-2']:.4f} rank-1 {b['rank1']:.4f} "
                  f"| LFW-100 AUC {row['lfw100_bare_auc']:.4f} | {row.get('agreement', '')}")


if __name__ == "__main__":
    main()
