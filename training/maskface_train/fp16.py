"""Float16 variant of an exported maskface model, for ONNX Runtime's CUDA execution provider.

    /usr/bin/python3 -m maskface_train.fp16 in.onnx out.onnx [--sidecar]

(--sidecar also writes out.json, the bundled-model sidecar, from in.json.)

The converted model still takes and returns float32: a Cast follows the graph input, and a Cast
precedes each output computed in float16, so callers feed and read float32 as before. Inside,
float initializers, float Constant nodes, ConstantOfShape values, Cast-to-float attributes and
float value_info become float16, except around the ops kept in float32:

- the ops of `keep_fp32_ops` (default `DEFAULT_KEEP_FP32_OPS`: InstanceNormalization, Softmax,
  ReduceMean, ReduceMax, whose sums and exponentials lose most in float16);
- ops outside the ONNX domain (maskface::AttentionMask is float-only; other custom ops have no
  schema to say otherwise);
- single inputs that the ONNX schema allows in float32 only (Resize's scales, Range, ...): that
  input, not the node, stays float32;
- ops that only move data (DATA_MOVEMENT_OPS: Concat, Reshape, Expand, ...) whose outputs feed
  float32 ops only, so that their float32 inputs are not rounded to float16 on the way.

Every float value keeps one "home" type, decided by its producer (or, for constants and casts, by
what its consumers need); a consumer that needs the other type reads it through one Cast shared by
all such consumers, so no f16 -> f32 -> f16 pairs appear. Constants needed in both types are
stored twice rather than cast at run time. Integer tensors (shape arithmetic, the frame-coordinate
Where/Equal/Expand chain) are not touched.

Finite float32 values beyond float16's range are clamped to +-65504 (with a warning); non-zero
values below float16's smallest subnormal (2**-24) become 0 (counted in the report; the published
MobileFaceNet holds thousands of such float32 denormals). Metadata is kept, with
`maskface.precision` = `fp16` added. Converting a float16 model again raises AlreadyFp16Error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16

DEFAULT_KEEP_FP32_OPS = frozenset({"InstanceNormalization", "Softmax", "ReduceMean", "ReduceMax"})
PRECISION_KEY = "maskface.precision"
FP16_MAX = float(np.finfo(np.float16).max)  # 65504
ONNX_DOMAINS = ("", "ai.onnx")
# Custom ops known to compute in float32 only; their outputs are float32 even where shape
# inference cannot tell (it knows no schema for them).
FLOAT_ONLY_CUSTOM_OPS = frozenset({("maskface", "AttentionMask")})
# Ops that accept a tensor of any type and return no float: they read whatever type a value has.
ANY_TYPE_INPUT_OPS = frozenset({"Shape", "Size"})
# Ops that only move or select elements: exact in either type. One whose float outputs all go to
# float32 consumers runs in float32 itself, so its float32 inputs are not rounded to float16 first.
DATA_MOVEMENT_OPS = frozenset({
    "Concat", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Gather",
    "GatherElements", "GatherND", "Slice", "Split", "Expand", "Tile", "DepthToSpace", "SpaceToDepth", "Where",
})
# Ops whose float output type is set by an attribute (name, default when absent) rather than by
# their inputs. Their output type is chosen by what the consumers need.
ATTRIBUTE_TYPED_OPS = {
    "Constant": None,
    "ConstantOfShape": ("value", FLOAT),
    "Cast": ("to", None),
    "RandomNormal": ("dtype", FLOAT),
    "RandomUniform": ("dtype", FLOAT),
    "RandomNormalLike": ("dtype", None),
    "RandomUniformLike": ("dtype", None),
    "EyeLike": ("dtype", None),
    "Bernoulli": ("dtype", None),
}
_TYPE_NAMES = {FLOAT: "fp32", FLOAT16: "fp16"}


class AlreadyFp16Error(ValueError):
    """The model already computes in float16 (or says so in its metadata)."""


@dataclass
class ConversionReport:
    """What convert_to_fp16 changed, for logs and model cards."""

    initializers: int = 0              # float initializers stored as float16
    initializers_kept: int = 0         # float initializers left in float32 (fp32 consumers only)
    constants: int = 0                 # Constant / ConstantOfShape values stored as float16
    values: int = 0                    # float16 values converted (initializers and constants)
    clamped: int = 0                   # finite values beyond +-65504, clamped
    flushed_to_zero: int = 0           # non-zero values that became 0
    fp32_denormals: int = 0            # of those, float32 denormals (|x| < 1.18e-38)
    largest_flushed: float = 0.0       # largest |x| among them (below 2**-25)
    fp16_subnormals: int = 0           # values stored as float16 subnormals (|x| < 6.1e-5)
    casts: int = 0                     # Cast nodes added
    casts_removed: int = 0             # Cast nodes of the input model that became identities
    kept_fp32: Counter = field(default_factory=Counter)  # op type -> nodes kept in float32
    follow_fp32: Counter = field(default_factory=Counter)  # data-movement ops feeding float32 ops only
    fp32_inputs: list = field(default_factory=list)      # "op input#i": inputs float32 by the spec

    def summary(self) -> str:
        kept = ", ".join(f"{op} x{n}" for op, n in sorted(self.kept_fp32.items())) or "none"
        lines = [
            f"float16: {self.initializers} initializers, {self.constants} constants "
            f"({self.values} values); {self.initializers_kept} initializers kept in float32",
            f"kept in float32: {kept}",
            "data movement in float32 (feeds float32 ops only): "
            + (", ".join(f"{op} x{n}" for op, n in sorted(self.follow_fp32.items())) or "none"),
            f"casts added: {self.casts}; identity casts removed: {self.casts_removed}",
            f"clamped to +-{FP16_MAX:g}: {self.clamped}; flushed to 0: {self.flushed_to_zero} "
            f"(largest |x| {self.largest_flushed:.3g}; float32 denormals among them: {self.fp32_denormals}); "
            f"stored as float16 subnormals: {self.fp16_subnormals}",
        ]
        if self.fp32_inputs:
            lines.append("inputs float32 by the ONNX spec: " + ", ".join(self.fp32_inputs))
        return "\n".join(lines)


def _to_float16(array: np.ndarray, report: ConversionReport, name: str) -> np.ndarray:
    # Zero and denormal tests look at the bits: a process that flushes denormals (DAZ, as
    # torch.set_flush_denormal sets) compares float32 denormals equal to zero.
    values = np.array(array, dtype=np.float32, order="C")  # a copy, 0-d stays 0-d
    finite = np.isfinite(values)
    over = finite & (np.abs(values) > FP16_MAX)
    clamped = int(over.sum())
    if clamped:
        warnings.warn(f"{name}: {clamped} values beyond the float16 range clamped to +-{FP16_MAX:g}",
                      RuntimeWarning, stacklevel=3)
        values = np.where(over, np.sign(values) * np.float32(FP16_MAX), values).astype(np.float32)
    half = values.astype(np.float16)
    magnitude32 = values.view(np.uint32) & np.uint32(0x7FFFFFFF)
    magnitude16 = half.view(np.uint16) & np.uint16(0x7FFF)
    flushed = finite & (magnitude32 != 0) & (magnitude16 == 0)
    report.clamped += clamped
    report.flushed_to_zero += int(flushed.sum())
    if flushed.any():
        report.largest_flushed = max(report.largest_flushed, float(np.abs(values[flushed]).max()))
    report.fp32_denormals += int((flushed & (magnitude32 < 0x00800000)).sum())
    report.fp16_subnormals += int(((magnitude16 != 0) & (magnitude16 < 0x0400)).sum())
    report.values += int(values.size)
    return half


def _tensor_to_float16(tensor: TensorProto, report: ConversionReport) -> TensorProto:
    converted = numpy_helper.from_array(_to_float16(numpy_helper.to_array(tensor), report, tensor.name),
                                        tensor.name)
    if tensor.doc_string:
        converted.doc_string = tensor.doc_string
    return converted


def _opset(model: onnx.ModelProto, domain: str) -> int | None:
    for entry in model.opset_import:
        if entry.domain == domain or (domain in ONNX_DOMAINS and entry.domain in ONNX_DOMAINS):
            return entry.version
    return None


def _schema(model: onnx.ModelProto, node: onnx.NodeProto):
    version = _opset(model, node.domain)
    if version is None:
        return None
    try:
        return onnx.defs.get_schema(node.op_type, version, node.domain)
    except onnx.defs.SchemaError:
        return None


def _formal_allows_fp16(formals, index: int) -> bool:
    if not formals:
        return False
    formal = formals[min(index, len(formals) - 1)]
    return "tensor(float16)" in formal.types


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value (graph inputs, initializers, node outputs) by shape inference,
    with the outputs of float-only custom ops declared float32 so that inference continues past them."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    declared = {v.name for v in [*probe.graph.value_info, *probe.graph.output, *probe.graph.input]}
    for node in probe.graph.node:
        if (node.domain, node.op_type) in FLOAT_ONLY_CUSTOM_OPS:
            for name in node.output:
                if name and name not in declared:
                    probe.graph.value_info.append(helper.make_tensor_value_info(name, FLOAT, None))
    inferred = onnx.shape_inference.infer_shapes(probe)
    types: dict[str, int] = {}
    for init in inferred.graph.initializer:
        types[init.name] = init.data_type
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    return types


def _attribute_output_type(node: onnx.NodeProto) -> int | None:
    """For ops whose output type comes from an attribute: that type (None for other ops)."""
    if node.domain not in ONNX_DOMAINS or node.op_type not in ATTRIBUTE_TYPED_OPS:
        return None
    attributes = {a.name: a for a in node.attribute}
    if node.op_type == "Constant":
        if "value" in attributes:
            return attributes["value"].t.data_type
        if "value_float" in attributes or "value_floats" in attributes:
            return FLOAT
        return None  # sparse_value, value_int(s), value_string(s)
    name, default = ATTRIBUTE_TYPED_OPS[node.op_type]
    if name not in attributes:
        return default
    if node.op_type == "ConstantOfShape":
        return attributes[name].t.data_type
    return attributes[name].i


def _retype_attribute_node(node: onnx.NodeProto, target: int, report: ConversionReport) -> onnx.NodeProto:
    """A copy of an attribute-typed node whose float output is `target` (FLOAT or FLOAT16)."""
    out = onnx.NodeProto()
    out.CopyFrom(node)
    if target == FLOAT:
        return out
    if node.op_type == "Constant":
        attributes = {a.name: a for a in node.attribute}
        if "value" in attributes:
            tensor = _tensor_to_float16(attributes["value"].t, report)
        else:
            values = (np.float32(attributes["value_float"].f) if "value_float" in attributes
                      else np.asarray(attributes["value_floats"].floats, np.float32))
            tensor = numpy_helper.from_array(_to_float16(values, report, node.output[0]))
        del out.attribute[:]
        out.attribute.append(helper.make_attribute("value", tensor))
        report.constants += 1
    elif node.op_type == "ConstantOfShape":
        attributes = {a.name: a for a in node.attribute}
        source = attributes["value"].t if "value" in attributes else numpy_helper.from_array(np.zeros(1, np.float32))
        tensor = _tensor_to_float16(source, report)
        kept = [a for a in node.attribute if a.name != "value"]
        del out.attribute[:]
        out.attribute.extend(kept)
        out.attribute.append(helper.make_attribute("value", tensor))
        report.constants += 1
    else:
        name = ATTRIBUTE_TYPED_OPS[node.op_type][0]
        kept = [a for a in node.attribute if a.name != name]
        del out.attribute[:]
        out.attribute.extend(kept)
        out.attribute.append(helper.make_attribute(name, FLOAT16))
    return out


class _Names:
    """Fresh tensor and node names that collide with nothing in the model."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.used = {n for node in graph.node for n in [*node.input, *node.output, node.name]}
        self.used |= {v.name for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]}

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def _check_not_fp16(model: onnx.ModelProto, types: dict[str, int]) -> None:
    metadata = {p.key: p.value for p in model.metadata_props}
    if metadata.get(PRECISION_KEY) == "fp16":
        raise AlreadyFp16Error(f"the model's metadata says {PRECISION_KEY}=fp16: it was converted already; "
                               "convert its float32 original instead")
    halves = sorted(name for name, t in types.items() if t == FLOAT16)
    if halves:
        raise AlreadyFp16Error(f"the model already holds {len(halves)} float16 tensors (e.g. {halves[0]!r}); "
                               "convert its float32 original instead")


def _check_supported(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise NotImplementedError(f"{node.op_type} node {node.name!r} has a subgraph: "
                                          "control flow is not supported by this converter")
        if node.op_type == "Constant" and any(a.name == "sparse_value" for a in node.attribute):
            raise NotImplementedError(f"Constant {node.name!r} holds a sparse tensor: not supported")


def convert_to_fp16(model: onnx.ModelProto, keep_fp32_ops: Iterable[str] = DEFAULT_KEEP_FP32_OPS, *,
                    keep_fp32_nodes: Iterable[str] = (), report: ConversionReport | None = None) -> onnx.ModelProto:
    """A float16 copy of `model` with float32 inputs and outputs (see the module docstring).

    keep_fp32_ops: ONNX op types that compute in float32, with Casts around them.
    keep_fp32_nodes: names of single nodes (or name prefixes ending in "/") kept in float32 too.
    report: filled with what was converted, clamped, flushed and kept, if given.
    The input model is not modified."""
    report = report if report is not None else ConversionReport()
    keep = frozenset(keep_fp32_ops)
    keep_nodes = tuple(keep_fp32_nodes)

    def kept_node(node: onnx.NodeProto) -> bool:
        return any(node.name == k or (k.endswith("/") and node.name.startswith(k)) for k in keep_nodes)

    graph = model.graph
    _check_supported(graph)
    types = _elem_types(model)
    _check_not_fp16(model, types)

    def is_float(name: str) -> bool:
        return bool(name) and types.get(name) == FLOAT

    def unknown(name: str) -> bool:
        return bool(name) and name not in types

    graph_inputs = {v.name for v in graph.input}
    graph_outputs = [v.name for v in graph.output]
    initializers = {t.name: t for t in graph.initializer}

    # 1. Per node: the type each float input must arrive in (None: any) and each float output's
    #    type when the node decides it (attribute-typed ops decide later, by their consumers).
    #    Walked backwards, so that an op that only moves data (Concat, Reshape, ...) and feeds
    #    float32 consumers only runs in float32 too, instead of rounding its input to float16.
    consumers: dict[str, list[tuple[int, int]]] = {}
    for index, node in enumerate(graph.node):
        for name in [*node.input, *node.output]:
            if unknown(name):
                raise ValueError(f"cannot tell the element type of {name!r} ({node.op_type} node {node.name!r}): "
                                 "add value_info for it, or list the custom op in FLOAT_ONLY_CUSTOM_OPS")
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((index, i))
    demands: list[list[int | None]] = [[] for _ in graph.node]
    produced: dict[str, int] = {}
    attribute_typed: dict[str, int] = {}  # output name -> node index

    def only_fp32_consumers(name: str) -> bool:
        """Read by float32 ops only (a graph output alone does not count: its Cast stays last)."""
        wanted = {demands[k][i] for k, i in consumers.get(name, [])} - {None}
        if name in graph_outputs and wanted:
            wanted.add(FLOAT)
        return wanted == {FLOAT}

    for index in reversed(range(len(graph.node))):
        node = graph.node[index]
        label = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        schema = _schema(model, node) if node.domain in ONNX_DOMAINS else None
        fp32 = node.domain not in ONNX_DOMAINS or schema is None or node.op_type in keep or kept_node(node)
        has_float = any(is_float(n) for n in [*node.input, *node.output])
        if fp32 and has_float:
            report.kept_fp32[label] += 1
        float_outputs = [n for n in node.output if is_float(n)]
        if (not fp32 and node.op_type in DATA_MOVEMENT_OPS and float_outputs
                and all(only_fp32_consumers(n) for n in float_outputs)):
            fp32 = True
            report.follow_fp32[label] += 1
        node_demands: list[int | None] = []
        for i, name in enumerate(node.input):
            if not is_float(name):
                node_demands.append(None)
            elif fp32:
                node_demands.append(FLOAT)
            elif node.op_type in ANY_TYPE_INPUT_OPS or (node.op_type == "Cast" and i == 0):
                node_demands.append(None)
            elif _formal_allows_fp16(schema.inputs, i):
                node_demands.append(FLOAT16)
            else:
                node_demands.append(FLOAT)
                report.fp32_inputs.append(f"{node.op_type} {node.name or index} input {i}")
        demands[index] = node_demands
        attribute_type = None if fp32 else _attribute_output_type(node)
        for j, name in enumerate(node.output):
            if not is_float(name):
                continue
            if attribute_type == FLOAT:
                attribute_typed[name] = index
            elif fp32:
                produced[name] = FLOAT
            else:
                produced[name] = FLOAT16 if _formal_allows_fp16(schema.outputs, j) else FLOAT
    report.fp32_inputs.reverse()

    # 2. What every float value's consumers need (graph outputs need float32).
    needed: dict[str, set[int]] = {}
    for node, node_demands in zip(graph.node, demands):
        for name, demand in zip(node.input, node_demands):
            if demand is not None:
                needed.setdefault(name, set()).add(demand)
    for name in graph_outputs:
        if is_float(name):
            needed.setdefault(name, set()).add(FLOAT)

    def source_type(name: str) -> tuple[int, bool]:
        """(home type, store a float16 copy too) of a constant-like value, by its consumers."""
        wants = needed.get(name, set())
        if wants == {FLOAT}:
            return FLOAT, False
        if FLOAT in wants:
            return FLOAT, True
        return FLOAT16, False

    # 3. Home type (and name) of every float value.
    home: dict[str, int] = {}
    home_name: dict[str, str] = {}
    names = _Names(graph)
    new_initializers: list[TensorProto] = []
    duplicated: set[str] = set()
    for name in graph_inputs:
        if is_float(name):
            home[name] = FLOAT
    for tensor in graph.initializer:
        if tensor.name in graph_inputs or tensor.data_type != FLOAT:
            new_initializers.append(tensor)
            continue
        target, copy = source_type(tensor.name)
        home[tensor.name] = target
        if target == FLOAT16:
            new_initializers.append(_tensor_to_float16(tensor, report))
            report.initializers += 1
        else:
            new_initializers.append(tensor)
            if copy:
                duplicated.add(tensor.name)
            else:
                report.initializers_kept += 1
    for name, target in produced.items():
        home[name] = target
    for name in attribute_typed:
        target, copy = source_type(name)
        home[name] = target
        node = graph.node[attribute_typed[name]]
        if copy and node.op_type == "Constant":
            duplicated.add(name)
    for name in graph_outputs:
        if is_float(name) and home.get(name) == FLOAT16:
            home_name[name] = names.fresh(f"{name}/fp16")

    # 4. Rebuild the node list: casts sit right after the producer (or at the top for graph inputs
    #    and initializers), one per value and type, shared by all consumers of that type.
    variants: dict[tuple[str, int], str] = {}
    nodes: list[onnx.NodeProto] = []
    alias: dict[str, str] = {}  # outputs of dropped identity Casts -> their input

    def name_of(value: str) -> str:
        return name_of(alias[value]) if value in alias else home_name.get(value, value)

    def emit_variants(value: str) -> None:
        for target in sorted(needed.get(value, set()) - {home[value]}):
            if value in graph_outputs and target == FLOAT:
                variant = value
            else:
                variant = names.fresh(f"{value}/{_TYPE_NAMES[target]}")
            variants[(value, target)] = variant
            if value in duplicated:
                if value in initializers:
                    new_initializers.append(_tensor_to_float16(initializers[value], report))
                    new_initializers[-1].name = variant
                    report.initializers += 1
                else:
                    constant = _retype_attribute_node(graph.node[attribute_typed[value]], FLOAT16, report)
                    constant.output[0] = variant
                    constant.name = names.fresh(f"{constant.name or value}/fp16")
                    nodes.append(constant)
                continue
            source = name_of(value)
            nodes.append(helper.make_node("Cast", [source], [variant], to=target,
                                          name=names.fresh(f"{source}/Cast_to_{_TYPE_NAMES[target]}")))
            report.casts += 1

    for name in sorted(home):
        if name in graph_inputs or name in initializers:
            emit_variants(name)

    for node, node_demands in zip(graph.node, demands):
        if node.output and node.output[0] in attribute_typed:
            new = _retype_attribute_node(node, home[node.output[0]], report)
        else:
            new = onnx.NodeProto()
            new.CopyFrom(node)
        for i, (name, demand) in enumerate(zip(node.input, node_demands)):
            if not is_float(name):
                continue
            if demand is None or demand == home[name]:
                new.input[i] = name_of(name)
            else:
                new.input[i] = variants[(name, demand)]
        for j, name in enumerate(node.output):
            if name in home_name:
                new.output[j] = home_name[name]
        # A Cast of the input model that now casts to its input's type is dropped.
        if (new.op_type == "Cast" and new.domain in ONNX_DOMAINS and is_float(node.input[0])
                and is_float(node.output[0]) and home[node.input[0]] == home[node.output[0]]
                and node.output[0] not in graph_outputs):
            alias[node.output[0]] = node.input[0]
            report.casts_removed += 1
            emit_variants(node.output[0])
            continue
        nodes.append(new)
        for name in node.output:
            if is_float(name):
                emit_variants(name)

    # 5. Assemble the model.
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    del out.graph.initializer[:]
    out.graph.initializer.extend(new_initializers)
    for value in out.graph.value_info:
        if is_float(value.name) and value.name in home and home[value.name] == FLOAT16:
            value.type.tensor_type.elem_type = FLOAT16
            value.name = home_name.get(value.name, value.name)
    dropped = set(alias)
    kept_info = [v for v in out.graph.value_info if v.name not in dropped]
    del out.graph.value_info[:]
    out.graph.value_info.extend(kept_info)
    # Declare the float32 outputs of float-only custom ops, so that shape inference (and its type
    # checks) go on past them.
    declared = {v.name for v in [*out.graph.value_info, *out.graph.output]}
    for node in out.graph.node:
        if (node.domain, node.op_type) in FLOAT_ONLY_CUSTOM_OPS:
            for name in node.output:
                if name and name not in declared:
                    out.graph.value_info.append(helper.make_tensor_value_info(name, FLOAT, None))
    metadata = [(p.key, p.value) for p in model.metadata_props if p.key != PRECISION_KEY]
    del out.metadata_props[:]
    for key, value in [*metadata, (PRECISION_KEY, "fp16")]:
        out.metadata_props.add(key=key, value=value)
    return out


def fp16_rounding_emulation(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float32 model that rounds like the float16 `model` (a convert_to_fp16 output) on a GPU.

    ONNX Runtime's CPU provider has no float16 kernels for most arithmetic ops (Conv, PRelu, Add,
    Mul, Sub, Relu in 1.30): it casts them to float32 and keeps their results in float32, so
    running the float16 model on a CPU shows the effect of the float16 weights but hardly that of
    float16 activations. This copy has the float16 weights and constants (exactly, as float32), and
    rounds every value that the float16 model holds in float16 through a Cast to float16 and back,
    right where it is produced: float32 arithmetic inside each op, float16 at each op's output, as
    a float16 kernel that accumulates in float32 computes it. Run it with graph optimisations off,
    so that the rounding Casts stay where they are."""
    types = _elem_types(model)
    graph = model.graph
    names = _Names(graph)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.initializer[:]
    for tensor in graph.initializer:
        if tensor.data_type == FLOAT16:
            widened = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)
            out.graph.initializer.append(widened)
        else:
            out.graph.initializer.append(tensor)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        for attribute in new.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == FLOAT16:
                attribute.t.CopyFrom(numpy_helper.from_array(
                    numpy_helper.to_array(attribute.t).astype(np.float32), attribute.t.name))
            if new.op_type == "Cast" and attribute.name == "to" and attribute.i == FLOAT16:
                attribute.i = FLOAT
        rounded = []
        for j, name in enumerate(new.output):
            if types.get(name) == FLOAT16:
                raw = names.fresh(f"{name}/unrounded")
                new.output[j] = raw
                rounded.append((raw, name))
        nodes.append(new)
        for raw, name in rounded:
            half = names.fresh(f"{name}/half")
            nodes.append(helper.make_node("Cast", [raw], [half], to=FLOAT16, name=names.fresh(f"{name}/round")))
            nodes.append(helper.make_node("Cast", [half], [name], to=FLOAT, name=names.fresh(f"{name}/widen")))
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    for value in out.graph.value_info:
        if value.type.tensor_type.elem_type == FLOAT16:
            value.type.tensor_type.elem_type = FLOAT
    for entry in out.metadata_props:
        if entry.key == PRECISION_KEY:
            entry.value = "fp16-emulated"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert a float32 ONNX model to float16 with float32 inputs "
                                     "and outputs (for ONNX Runtime's CUDA execution provider).")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--keep-fp32-ops", default=",".join(sorted(DEFAULT_KEEP_FP32_OPS)),
                        help="comma-separated ONNX op types computed in float32 (default: %(default)s)")
    parser.add_argument("--sidecar", action="store_true",
                        help="also write out.json (the bundled-model sidecar that lib/models.ts checks: name, "
                        "version, sha256, bytes, licence, description) from in.json beside the input")
    parser.add_argument("--keep-fp32-nodes", default="",
                        help="comma-separated node names (or prefixes ending in /) also kept in float32")
    args = parser.parse_args(argv)
    keep = [op for op in args.keep_fp32_ops.split(",") if op]
    keep_nodes = [name for name in args.keep_fp32_nodes.split(",") if name]
    report = ConversionReport()
    try:
        converted = convert_to_fp16(onnx.load(str(args.input)), keep, keep_fp32_nodes=keep_nodes, report=report)
    except AlreadyFp16Error as error:
        sys.exit(f"{args.input}: {error}")
    onnx.checker.check_model(converted)
    onnx.shape_inference.infer_shapes(converted, check_type=True, strict_mode=True)
    onnx.save(converted, str(args.output))
    print(report.summary())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    if args.sidecar:
        path = write_sidecar(args.input, args.output, keep)
        print(f"wrote {path}")


def write_sidecar(source: Path, converted: Path, keep_fp32_ops: Iterable[str] = DEFAULT_KEEP_FP32_OPS) -> Path:
    """converted.json beside `converted`, from source.json beside `source`: the source's version and
    licence, the converted file's name, sha256 and size, and a description that says what it is."""
    original = json.loads(source.with_suffix(".json").read_text())
    data = converted.read_bytes()
    sidecar = {
        "name": converted.stem,
        "version": original["version"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "licence": original["licence"],
        "description": f"{original['name']} {original['version']} in float16 for ONNX Runtime's CUDA provider, "
                       f"made by maskface_train.fp16 from {source.name} (sha256 {original['sha256'][:16]}...); "
                       f"float32 input and outputs, {', '.join(sorted(keep_fp32_ops))} in float32. "
                       f"{original['description']}",
    }
    path = converted.with_suffix(".json")
    path.write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


if __name__ == "__main__":
    main()
