"""maskface_train.quantize: QDQ int8 graphs on a generated model, run by onnxruntime-node."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from maskface_train.quantize import (PRECISION_KEY, AlreadyQuantizedError, QuantizeReport, activation_tensors,
                                     input_pixel_grid, int8_weights, quantize_model, quantize_model_channels_last,
                                     quantized_tensors, select_convs, uint8_parameters)

FLOAT = TensorProto.FLOAT


def tiny_model() -> onnx.ModelProto:
    """input -> Conv -> PRelu -> depthwise Conv -> Add (residual) -> attention Conv (kept float by
    name) -> output; the first conv has a channel of tiny weights with a large bias."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    w1[2] = 1e-30   # a channel of tiny weights
    b1 = np.array([0.1, -0.2, 5.0, 0.0], np.float32)
    w2 = rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32)
    w3 = rng.normal(0, 0.3, (2, 4, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (w1, "w1"), (b1, "b1"), (np.array([0.25, 0.1, -0.3, 1.2], np.float32).reshape(4, 1, 1), "slope"),
        (w2, "w2"), (np.zeros(4, np.float32), "b2"), (w3, "w3"))]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["/stem/Conv_output_0"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["/stem/Conv_output_0", "slope"], ["/stem/PRelu_output_0"]),
        helper.make_node("Conv", ["/stem/PRelu_output_0", "w2", "b2"], ["/dw/Conv_output_0"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Add", ["/stem/PRelu_output_0", "/dw/Conv_output_0"], ["/Add_output_0"]),
        helper.make_node("Conv", ["/Add_output_0", "w3"], ["/mfsa.0/Conv_output_0"]),
        # a second residual Add, both of whose inputs are quantised: QLinearAdd in channels-last form
        helper.make_node("Conv", ["/Add_output_0", "w2", "b2"], ["/dw2/Conv_output_0"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Add", ["/Add_output_0", "/dw2/Conv_output_0"], ["/Add_1_output_0"]),
        helper.make_node("Conv", ["/Add_1_output_0", "w3"], ["/mfsa.1/Conv_output_0"]),
        helper.make_node("Add", ["/mfsa.0/Conv_output_0", "/mfsa.1/Conv_output_0"], ["/head_output_0"]),
        helper.make_node("Flatten", ["/head_output_0"], ["embedding"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("embedding", FLOAT, ["N", 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.metadata_props.extend([onnx.StringStringEntryProto(key="maskface.mean", value="127,127,127"),
                                 onnx.StringStringEntryProto(key="maskface.std", value="128,128,128")])
    return model


def ranges_of(model: onnx.ModelProto, tensors: list[str], inputs: np.ndarray) -> dict[str, tuple[float, float]]:
    from maskface_train.quantize import calibrate
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "tiny.onnx"
        onnx.save(model, str(path))
        return calibrate(path, tensors, inputs, percentile=100)


def test_uint8_parameters_keep_zero_exact():
    scale, zero_point = uint8_parameters(-1.0, 3.0)
    assert scale == pytest.approx(4 / 255)
    assert zero_point == round(1 / scale)
    assert uint8_parameters(0.0, 0.0) == (1.0, 0)   # a tensor that is always 0


def test_int8_weights_per_channel_and_raised_scales():
    weights = np.array([[1.0, -0.5], [0.005, 0.02], [0.0, 0.0]], np.float32).reshape(3, 2, 1, 1)
    q, scales, widened = int8_weights(weights, reduce_range=False)
    assert scales == pytest.approx([1 / 127, 0.02 / 127, 1.0])
    assert q[0].ravel().tolist() == [127, -64] and q[1].ravel().tolist() == [32, 127]
    assert widened == 0
    q7, scales7, _ = int8_weights(weights, reduce_range=True)
    assert np.abs(q7).max() <= 63
    _, raised, widened = int8_weights(weights, False, min_scales=np.array([0, 1.0, 0]))
    assert widened == 1 and raised[1] == 1.0 and raised[0] == pytest.approx(1 / 127)


def test_selection_keeps_attention_convs_float():
    model = tiny_model()
    chosen, kept = select_convs(model)
    assert [n.output[0] for n in chosen] == ["/stem/Conv_output_0", "/dw/Conv_output_0", "/dw2/Conv_output_0"]
    assert [n.output[0] for n in kept] == ["/mfsa.0/Conv_output_0", "/mfsa.1/Conv_output_0"]
    assert activation_tensors(chosen) == ["input", "/stem/Conv_output_0", "/stem/PRelu_output_0", "/dw/Conv_output_0",
                                          "/Add_output_0", "/dw2/Conv_output_0"]
    assert quantized_tensors(model, chosen)[-1] == "/Add_1_output_0", "a residual Add of two quantised tensors"
    assert input_pixel_grid(model) == (1 / 128, 127)


def test_quantized_graph_runs_close_to_float_in_onnx_runtime(tmp_path):
    from maskface_train.ort_node import NodeRuntimeMissing, node_environment, run_model
    try:
        node_environment()
    except NodeRuntimeMissing as error:
        pytest.skip(str(error))
    import tempfile
    from pathlib import Path
    model = tiny_model()
    chosen, _ = select_convs(model)
    inputs = np.random.default_rng(1).uniform(-1, 1, (16, 3, 8, 8)).astype(np.float32)
    report = QuantizeReport()
    quantized = quantize_model(model, ranges_of(model, activation_tensors(chosen), inputs), chosen, report=report)
    ops = [n.op_type for n in quantized.graph.node]
    assert ops.count("QuantizeLinear") == 6 and ops.count("DequantizeLinear") == 6 + 3 + 3   # activations, weights, biases
    assert report.widened_channels == 1, "the tiny channel's scale is raised for its bias of 5"
    assert {p.key: p.value for p in quantized.metadata_props}[PRECISION_KEY] == "int8"
    with tempfile.TemporaryDirectory() as work:
        float_path, int8_path = Path(work) / "f.onnx", Path(work) / "q.onnx"
        onnx.save(model, str(float_path))
        onnx.save(quantized, str(int8_path))
        reference = run_model(float_path, inputs)[0]["embedding"]
        result = run_model(int8_path, inputs)[0]["embedding"]
    cosine = (reference * result).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(result, axis=1)
    assert cosine.min() > 0.99, cosine
    assert not np.allclose(reference, result, atol=1e-6), "the int8 graph must not be the float graph"
    from maskface_train.quantize import quantize_file
    onnx.save(quantized, str(tmp_path / "int8.onnx"))
    with pytest.raises(AlreadyQuantizedError):
        quantize_file(tmp_path / "int8.onnx", tmp_path / "again.onnx", verbose=False)


def test_channels_last_form_runs_in_maskface_close_to_float(tmp_path):
    from maskface_train.quantize import maskface_outputs
    model = tiny_model()
    chosen, _ = select_convs(model)
    faces = np.random.default_rng(2).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    inputs = ((faces.astype(np.float32) - 127) / 128).transpose(0, 3, 1, 2).copy()
    report = QuantizeReport()
    quantized = quantize_model_channels_last(model, ranges_of(model, quantized_tensors(model, chosen), inputs), chosen,
                                             report=report)
    ops = [(n.domain, n.op_type) for n in quantized.graph.node]
    assert ops.count(("com.microsoft", "QLinearConv")) == 3
    assert ops.count(("maskface", "QLinearPRelu")) == 1 and report.fused_prelus == 1
    assert ops.count(("com.microsoft", "QLinearAdd")) == 2
    assert ("", "PRelu") not in ops and ("", "Conv") in ops, "attention convs stay float"
    assert all(helper.get_attribute_value(a) == 1 for n in quantized.graph.node if n.op_type == "QLinearConv"
               for a in n.attribute if a.name == "channels_last")
    float_path, int8_path = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(model, str(float_path))
    onnx.save(quantized, str(int8_path))
    try:
        reference, _ = maskface_outputs(float_path, faces)
        result, _ = maskface_outputs(int8_path, faces)
    except RuntimeError as error:
        pytest.skip(f"maskface's runtime is not built here: {error}")
    cosine = (reference * result).sum(1)
    assert cosine.min() > 0.99, cosine
    assert not np.allclose(reference, result, atol=1e-6)


def test_weights_behind_identity_nodes_are_found():
    from maskface_train.quantize import fold_constant_identities
    model = tiny_model()
    # As PyTorch writes reused weights: the conv reads an Identity of the initializer.
    model.graph.node.insert(0, helper.make_node("Identity", ["w1"], ["w1_alias"]))
    model.graph.node[1].input[1] = "w1_alias"
    assert [n.output[0] for n in select_convs(model)[0]][0] != "/stem/Conv_output_0"
    folded = fold_constant_identities(model)
    assert "Identity" not in [n.op_type for n in folded.graph.node]
    assert [n.output[0] for n in select_convs(folded)[0]][0] == "/stem/Conv_output_0"
