import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from conftest import lfw_faces, preprocess
from maskface_train.import_onnx import OnnxImportError, load_onnx_into
from maskface_train.backbones import MobileFaceNet


def test_parity_with_onnxruntime_node(fr_feature, fr_feature_path, ort_reference):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(4, 112, 112, 3), dtype=np.uint8)
    faces = lfw_faces(6)
    inputs = preprocess(np.concatenate([noise, faces]))
    expected = ort_reference(fr_feature_path, inputs)
    with torch.no_grad():
        got = fr_feature(torch.from_numpy(inputs)).numpy()
    assert got.shape == expected.shape == (len(inputs), 512)
    diff = np.abs(got - expected).max()
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    print(f"parity over {len(noise)} noise + {len(faces)} LFW inputs: max abs diff {diff:.3g}, "
          f"min cosine {cos.min():.9f}, max |output| {np.abs(expected).max():.3g}")
    assert diff <= 1e-4
    assert cos.min() > 1 - 1e-6


def _tampered(path, tmp_path, change) -> str:
    model = onnx.load(str(path))
    change(model.graph)
    out = tmp_path / "tampered.onnx"
    onnx.save(model, str(out))
    return str(out)


def test_unused_initializer_is_reported(fr_feature_path, tmp_path):
    extra = numpy_helper.from_array(np.zeros(3, np.float32), "stray")
    path = _tampered(fr_feature_path, tmp_path, lambda g: g.initializer.append(extra))
    with pytest.raises(OnnxImportError, match="not used exactly once.*stray"):
        load_onnx_into(MobileFaceNet(), path)


def test_wrong_stride_is_reported(fr_feature_path, tmp_path):
    def change(graph):
        conv = graph.node[0]
        for attribute in conv.attribute:
            if attribute.name == "strides":
                attribute.CopyFrom(helper.make_attribute("strides", [1, 1]))

    with pytest.raises(OnnxImportError, match="node 0 .*strides"):
        load_onnx_into(MobileFaceNet(), _tampered(fr_feature_path, tmp_path, change))


def test_missing_residual_add_is_reported(fr_feature_path, tmp_path):
    def change(graph):
        add = next(i for i, n in enumerate(graph.node) if n.op_type == "Add")
        graph.node[add].op_type = "Sub"

    with pytest.raises(OnnxImportError, match="op sequence differs"):
        load_onnx_into(MobileFaceNet(), _tampered(fr_feature_path, tmp_path, change))
