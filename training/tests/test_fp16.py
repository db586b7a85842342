"""maskface_train.fp16: float16 conversion with float32 I/O, on a generated model and the shipped one."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import REPO_ROOT, TRAINING_DIR, lfw_faces
from maskface_train.fp16 import (DEFAULT_KEEP_FP32_OPS, PRECISION_KEY, AlreadyFp16Error, ConversionReport,
                                 convert_to_fp16, fp16_rounding_emulation)

FLOAT, FLOAT16, INT64 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64
SHIPPED = REPO_ROOT / "models" / "maskface-mbf-cal.onnx"
SHIPPED_FP16 = REPO_ROOT / "models" / "maskface-mbf-cal-fp16.onnx"
METADATA = {"maskface.name": "tiny", "maskface.version": "0", "maskface.mean": "127,127,127",
            "maskface.std": "128,128,128"}


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def tiny_model(custom_op: bool = True) -> onnx.ModelProto:
    """A small graph with what the converter must handle: Conv/PRelu, the kept ops, a float Constant,
    a float ConstantOfShape, a Cast to float from int64, the int64 Shape/Equal/Where/Expand chain of
    the MFSA frame coordinates, Resize (scales float32 by the spec), value_info, a weight beyond the
    float16 range and float32 denormals, and (custom_op) a maskface::AttentionMask whose second
    output is a graph output."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    weight[0, 0, 0, 0] = 1e5     # beyond float16: clamped
    # a float32 denormal (~1e-40), written as bits: conftest makes torch flush denormals (FTZ/DAZ),
    # which would turn an assigned 1e-40 into 0
    weight.view(np.uint32)[1, 0, 0, 0] = 0x000116C2
    weight[1, 0, 0, 1] = 1e-30   # normal float32, below float16: flushed
    inits = [
        _init("w0", weight), _init("b0", rng.normal(0, 0.1, 4).astype(np.float32)),
        _init("slope", np.full((4, 1, 1), 0.25, np.float32)),
        _init("in_scale", np.ones(8, np.float32)), _init("in_bias", np.zeros(8, np.float32)),
        _init("wc", rng.normal(0, 0.3, (3, 8, 1, 1)).astype(np.float32)),
        _init("wf", rng.normal(0, 0.3, (4, 4, 1, 1)).astype(np.float32)),
        _init("scales", np.array([1, 1, 0.5, 0.5], np.float32)),
        _init("minus_one", np.array(-1, np.int64)), _init("axis0", np.array([0], np.int64)),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("PRelu", ["c0", "slope"], ["p0"], name="prelu0"),
        helper.make_node("ReduceMean", ["p0"], ["mean"], axes=[1], keepdims=1, name="mean"),
        helper.make_node("ReduceMax", ["p0"], ["max"], axes=[1], keepdims=1, name="max"),
        # frame coordinates: int64 shape arithmetic, then a float constant expanded to it
        helper.make_node("Shape", ["p0"], ["shape"], name="shape"),
        helper.make_node("ConstantOfShape", ["rank"], ["ones"], name="ones",
                         value=numpy_helper.from_array(np.array([1], np.int64))),
        helper.make_node("Shape", ["shape"], ["rank"], name="rank"),
        helper.make_node("Mul", ["ones", "minus_one"], ["minus_ones"], name="minus_ones"),
        helper.make_node("Equal", ["shape", "minus_ones"], ["is_minus"], name="equal"),
        helper.make_node("Where", ["is_minus", "ones", "shape"], ["target"], name="where"),
        helper.make_node("Constant", [], ["coord"], name="coord",
                         value=numpy_helper.from_array(np.full((1, 2, 1, 1), -0.5, np.float32))),
        helper.make_node("Gather", ["shape", "axis0"], ["batch"], name="batch"),
        helper.make_node("Concat", ["batch", "two_h_w"], ["coord_shape"], axis=0, name="coord_shape"),
        helper.make_node("Constant", [], ["two_h_w"], name="two_h_w",
                         value=numpy_helper.from_array(np.array([2, 8, 8], np.int64))),
        helper.make_node("Expand", ["coord", "coord_shape"], ["coords"], name="expand"),
        helper.make_node("Concat", ["mean", "max", "coords", "p0"], ["desc"], axis=1, name="desc"),
        helper.make_node("InstanceNormalization", ["desc", "in_scale", "in_bias"], ["normed"], name="norm"),
        helper.make_node("Conv", ["normed", "wc"], ["logits"], name="classify"),
        # a float ConstantOfShape and a Cast from int64 to float
        helper.make_node("ConstantOfShape", ["target"], ["halves"], name="halves",
                         value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Cast", ["batch"], ["batch_f"], to=FLOAT, name="batch_f"),
        helper.make_node("Mul", ["p0", "halves"], ["p0_half"], name="half"),
        helper.make_node("Add", ["p0_half", "batch_f"], ["p1_pre"], name="add_batch"),
        helper.make_node("Constant", [], ["offset"], name="offset", value_float=0.25),
        helper.make_node("Add", ["p1_pre", "offset"], ["p1"], name="add_offset"),
        helper.make_node("Resize", ["p1", "", "scales"], ["small"], mode="nearest", name="resize"),
        helper.make_node("Conv", ["small", "wf"], ["head"], name="head"),
        helper.make_node("Flatten", ["head"], ["embedding"], axis=1, name="flatten"),
    ]
    outputs = [helper.make_tensor_value_info("embedding", FLOAT, ["N", 64])]
    if custom_op:
        nodes.append(helper.make_node("AttentionMask", ["p1", "logits"], ["gated", "regions"], domain="maskface",
                                      gating="not_mask", name="attention"))
        nodes.append(helper.make_node("Relu", ["gated"], ["gated_relu"], name="gated_relu"))
        outputs += [helper.make_tensor_value_info("regions", FLOAT, ["N", 3, 8, 8]),
                    helper.make_tensor_value_info("gated_relu", FLOAT, ["N", 4, 8, 8])]
    else:
        nodes.append(helper.make_node("Softmax", ["logits"], ["regions"], axis=1, name="softmax"))
        outputs.append(helper.make_tensor_value_info("regions", FLOAT, ["N", 3, 8, 8]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", FLOAT, ["N", 3, 8, 8])],
                              outputs, inits, value_info=[helper.make_tensor_value_info("p0", FLOAT, ["N", 4, 8, 8])])
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid("maskface", 1)] if custom_op else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="test")
    model.ir_version = 7
    onnx.helper.set_model_props(model, METADATA)
    # Nodes in topological order (the generator above lists some consumers first for readability).
    order, ready, pending = [], {"input", *(i.name for i in inits), ""}, list(model.graph.node)
    while pending:
        node = next(n for n in pending if all(i in ready for i in n.input))
        pending.remove(node)
        order.append(node)
        ready.update(node.output)
    del model.graph.node[:]
    model.graph.node.extend(order)
    onnx.checker.check_model(model)
    return model


def types_of(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {t.name: t.data_type for t in inferred.graph.initializer}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        types[value.name] = value.type.tensor_type.elem_type
    return types


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in model.graph.node for name in node.output}


def convert(model: onnx.ModelProto, **kwargs) -> tuple[onnx.ModelProto, ConversionReport]:
    report = ConversionReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return convert_to_fp16(model, report=report, **kwargs), report


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


@pytest.fixture(scope="module")
def tiny16(tiny):
    return convert(tiny)


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED.is_file():
        pytest.skip(f"{SHIPPED} is missing")
    return onnx.load(str(SHIPPED))


@pytest.fixture(scope="module")
def shipped16(shipped):
    return convert(shipped)


@pytest.fixture(params=["tiny", "shipped"])
def pair(request, tiny, tiny16, shipped, shipped16):
    """(float32 model, its float16 conversion, report)."""
    return (tiny, *tiny16) if request.param == "tiny" else (shipped, *shipped16)


def test_inputs_and_outputs_stay_float32(pair):
    original, converted, _ = pair
    assert [(v.name, v.type.tensor_type.elem_type) for v in converted.graph.input] == \
        [(v.name, FLOAT) for v in original.graph.input]
    assert [(v.name, v.type.tensor_type.elem_type) for v in converted.graph.output] == \
        [(v.name, FLOAT) for v in original.graph.output]
    # the input is read once, by a Cast to float16 (the tiny model's input also feeds nothing else)
    readers = [n for n in converted.graph.node if "input" in n.input]
    assert [(n.op_type, helper.get_attribute_value(n.attribute[0])) for n in readers] == [("Cast", FLOAT16)]
    # each output comes from a Cast to float32, or from an op kept in float32
    made = producers(converted)
    for output in converted.graph.output:
        node = made[output.name]
        assert (node.op_type == "Cast" and node.attribute[0].i == FLOAT) or node.op_type in {"Softmax", "AttentionMask"}


def test_checker_and_strict_shape_inference_pass(pair):
    _, converted, _ = pair
    onnx.checker.check_model(converted, full_check=True)
    onnx.shape_inference.infer_shapes(converted, check_type=True, strict_mode=True)


def test_only_the_kept_ops_read_float32_initializers(pair):
    _, converted, _ = pair
    float32 = {t.name for t in converted.graph.initializer if t.data_type == FLOAT}
    spec_fp32 = {("Resize", 2)}  # Resize's scales are tensor(float) only
    readers = {}
    for node in converted.graph.node:
        for i, name in enumerate(node.input):
            if name in float32:
                readers.setdefault(name, []).append((node.op_type, i))
    for name in float32:
        assert readers.get(name), f"unused float32 initializer {name}"
        for op, i in readers[name]:
            assert op in DEFAULT_KEEP_FP32_OPS or (op, i) in spec_fp32, f"{name} is float32 and read by {op}"
    assert {t.data_type for t in converted.graph.initializer} <= {FLOAT, FLOAT16, INT64}


def test_shipped_model_keeps_exactly_the_instance_norm_weights(shipped16):
    converted, report = shipped16
    float32 = sorted(t.name for t in converted.graph.initializer if t.data_type == FLOAT)
    assert float32 == sorted(f"model.mfsa.{k}.norm.{p}" for k in range(3) for p in ("weight", "bias"))
    assert dict(report.kept_fp32) == {"InstanceNormalization": 3, "ReduceMax": 3, "ReduceMean": 3, "Softmax": 4}
    # regions is the Softmax's own float32 output: no Cast pair around it
    assert producers(converted)["regions"].op_type == "Softmax"
    assert report.clamped == 0 and report.flushed_to_zero > 0 and report.largest_flushed < 2 ** -24


def test_no_cast_feeds_a_cast_and_casts_are_shared(pair):
    _, converted, _ = pair
    made = producers(converted)
    casts = [n for n in converted.graph.node if n.op_type == "Cast"]
    for cast in casts:
        source = made.get(cast.input[0])
        assert source is None or source.op_type != "Cast", f"{source.name} -> {cast.name}"
    pairs = [(c.input[0], c.attribute[0].i) for c in casts]
    assert len(pairs) == len(set(pairs)), "two Casts of one value to one type"


def test_types_are_consistent_along_the_frame_coordinate_chain(tiny16, shipped16):
    for converted, _ in [tiny16, shipped16]:
        types = types_of(converted)
        for node in converted.graph.node:
            if node.op_type in {"Equal", "Where", "ConstantOfShape"}:
                assert {types[n] for n in node.input if n and types[n] != TensorProto.BOOL} <= {INT64}, node.name
            if node.op_type == "Expand":
                assert types[node.input[1]] == INT64 and types[node.input[0]] == types[node.output[0]]
    # the shipped model's coordinates go on into a float16 Concat: float16 from the Constant on
    converted, _ = shipped16
    types = types_of(converted)
    expands = [n for n in converted.graph.node if n.op_type == "Expand"]
    assert len(expands) == 3 and all(types[n.output[0]] == FLOAT16 for n in expands)


def test_tiny_model_constants_casts_custom_op_and_value_info(tiny16):
    converted, report = tiny16
    types = types_of(converted)
    nodes = {n.name: n for n in converted.graph.node}
    assert nodes["offset"].attribute[0].t.data_type == FLOAT16      # value_float -> float16 tensor
    # the coordinates only feed InstanceNormalization (through Expand and Concat): all float32
    assert nodes["coord"].attribute[0].t.data_type == FLOAT
    assert nodes["halves"].attribute[0].t.data_type == FLOAT16       # ConstantOfShape float value
    assert nodes["batch_f"].attribute[0].i == FLOAT16                # Cast to float -> to float16
    assert types["p0"] == FLOAT16 and {v.name: v.type.tensor_type.elem_type
                                       for v in converted.graph.value_info}["p0"] == FLOAT16
    # the custom op reads and writes float32, its first output goes on in float16 through one Cast
    attention = nodes["attention"]
    assert [types[n] for n in attention.input] == [FLOAT, FLOAT]
    assert [types[n] for n in attention.output] == [FLOAT, FLOAT]
    assert types[nodes["gated_relu"].input[0]] == FLOAT16
    assert types[nodes["resize"].input[2]] == FLOAT and types[nodes["resize"].input[0]] == FLOAT16
    # the kept ops run in float32
    for name in ["mean", "max", "norm"]:
        assert {types[n] for n in [*nodes[name].input, *nodes[name].output] if types[n] != INT64} == {FLOAT}
    # the Concat feeding InstanceNormalization only moves data: it stays float32 rather than round
    assert types[nodes["desc"].output[0]] == FLOAT and dict(report.follow_fp32) == {"Concat": 1, "Expand": 1}
    assert report.clamped == 1 and report.flushed_to_zero == 2 and report.fp32_denormals == 1
    assert dict(report.kept_fp32) == {"ReduceMean": 1, "ReduceMax": 1, "InstanceNormalization": 1,
                                      "maskface::AttentionMask": 1}
    assert report.fp32_inputs == ["Resize resize input 2"]


def test_out_of_range_values_are_clamped_with_a_warning(tiny):
    with pytest.warns(RuntimeWarning, match="1 values beyond the float16 range"):
        converted = convert_to_fp16(tiny)
    weight = numpy_helper.to_array(next(t for t in converted.graph.initializer if t.name == "w0"))
    assert weight.dtype == np.float16 and weight[0, 0, 0, 0] == np.float16(65504)
    assert weight[1, 0, 0, 0] == 0 and weight[1, 0, 0, 1] == 0


def test_metadata_is_kept_with_the_precision(pair):
    original, converted, _ = pair
    before = {p.key: p.value for p in original.metadata_props}
    after = [(p.key, p.value) for p in converted.metadata_props]
    assert after == [*before.items(), (PRECISION_KEY, "fp16")]
    assert converted.opset_import == original.opset_import and converted.ir_version == original.ir_version


def test_input_model_is_not_modified(tiny):
    before = tiny.SerializeToString()
    convert(tiny)
    assert tiny.SerializeToString() == before


def test_converting_again_is_a_clear_error(pair):
    converted = onnx.ModelProto()
    converted.CopyFrom(pair[1])
    with pytest.raises(AlreadyFp16Error, match="maskface.precision=fp16"):
        convert_to_fp16(converted)
    # without the metadata entry, the float16 tensors give it away
    del converted.metadata_props[:]
    with pytest.raises(AlreadyFp16Error, match="float16 tensors"):
        convert_to_fp16(converted)


def test_cli_writes_a_checked_model_and_refuses_an_fp16_one(tiny, tmp_path):
    source, target, again = tmp_path / "tiny.onnx", tmp_path / "tiny-fp16.onnx", tmp_path / "again.onnx"
    onnx.save(tiny, str(source))
    run = lambda *args: subprocess.run([sys.executable, "-m", "maskface_train.fp16", *map(str, args)],  # noqa: E731
                                       cwd=TRAINING_DIR, capture_output=True, text=True)
    source.with_suffix(".json").write_text(json.dumps({
        "name": "tiny", "version": "0", "sha256": "0" * 64, "bytes": 1, "licence": "test", "description": "tiny"}))
    first = run(source, target, "--sidecar")
    assert first.returncode == 0, first.stderr
    assert "clamped to +-65504: 1" in first.stdout and "kept in float32:" in first.stdout
    data = target.read_bytes()
    assert data == convert(tiny)[0].SerializeToString()
    sidecar = json.loads(target.with_suffix(".json").read_text())
    assert {k: sidecar[k] for k in ["name", "version", "sha256", "bytes", "licence"]} == {
        "name": "tiny-fp16", "version": "0", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "licence": "test"}
    assert sidecar["description"].startswith("tiny 0 in float16")
    second = run(target, again)
    assert second.returncode != 0 and "converted already" in second.stderr and not again.exists()


def test_keep_list_is_honoured():
    converted, report = convert(tiny_model(custom_op=False), keep_fp32_ops=["Softmax"])
    types = types_of(converted)
    nodes = {n.name: n for n in converted.graph.node}
    assert types[nodes["mean"].output[0]] == FLOAT16 and types[nodes["softmax"].input[0]] == FLOAT
    assert dict(report.kept_fp32) == {"Softmax": 1}
    converted, report = convert(tiny_model(custom_op=False), keep_fp32_nodes=["classify"])
    assert types_of(converted)[nodes["classify"].output[0]] == FLOAT


def test_shipped_fp16_file_is_the_converters_output_and_matches_its_sidecar(shipped16):
    if not SHIPPED_FP16.is_file():
        pytest.skip(f"{SHIPPED_FP16} is missing")
    data = SHIPPED_FP16.read_bytes()
    assert data == shipped16[0].SerializeToString(), \
        "models/maskface-mbf-cal-fp16.onnx is not what the converter makes from models/maskface-mbf-cal.onnx"
    sidecar = json.loads(SHIPPED_FP16.with_suffix(".json").read_text())
    assert sidecar["name"] == SHIPPED_FP16.stem
    assert sidecar["bytes"] == len(data) and sidecar["sha256"] == hashlib.sha256(data).hexdigest()


def test_emulation_model_is_float32_with_rounding_casts(shipped16):
    emulated = fp16_rounding_emulation(shipped16[0])
    onnx.checker.check_model(emulated)
    onnx.shape_inference.infer_shapes(emulated, check_type=True, strict_mode=True)
    assert all(t.data_type != FLOAT16 for t in emulated.graph.initializer)
    assert {v for v in types_of(emulated).values()} <= {FLOAT, FLOAT16, INT64, TensorProto.BOOL}


def test_fp16_agrees_with_fp32_in_onnxruntime(shipped16, tmp_path):
    """Real (loosely aligned) LFW faces through onnxruntime-node's CPU provider: the float16 model as
    ORT CPU runs it, and with float16 rounding emulated at every op (as on a GPU)."""
    from maskface_train.ort_node import NodeRuntimeMissing, node_environment, run_model
    try:
        node_environment()
    except NodeRuntimeMissing as error:
        pytest.skip(str(error))
    crops = lfw_faces(8)
    if len(crops) < 8:
        pytest.skip("LFW faces are missing (../shared/data/lfw_aligned_100pair)")
    converted, _ = shipped16
    fp16_path, emulated_path = tmp_path / "fp16.onnx", tmp_path / "emulated.onnx"
    onnx.save(converted, str(fp16_path))
    onnx.save(fp16_rounding_emulation(converted), str(emulated_path))
    metadata = {p.key: p.value for p in converted.metadata_props}
    mean = np.array(metadata["maskface.mean"].split(","), np.float32)
    std = np.array(metadata["maskface.std"].split(","), np.float32)
    inputs = ((crops.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
    reference, _ = run_model(SHIPPED, inputs)
    for path, level in [(fp16_path, "all"), (emulated_path, "disabled")]:
        outputs, _ = run_model(path, inputs, optimisation=level)
        a, b = reference["embedding"].astype(np.float64), outputs["embedding"].astype(np.float64)
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() > 0.999, (path.name, cosine)
        assert np.abs(reference["regions"] - outputs["regions"]).max() < 1e-2, path.name
