"""ONNX export: the DESIGN §1 contract, parity with ONNX Runtime, and loading in the Node runtime."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from conftest import REPO_ROOT, lfw_faces, preprocess
from maskface_train.backbones import get_backbone
from maskface_train.export import ModelCard, export_onnx, random_cal_model
from maskface_train.mfsa import MFSA, MaskFaceNet

FR_FEATURE_CARD = ModelCard(name="test-mbf-cal", version="0", mean=(127, 127, 127), std=(128, 128, 128))


def faces(count: int) -> np.ndarray:
    """Real faces where the data is present, else seeded noise images (uint8 RGB 112x112)."""
    real = lfw_faces(count)
    if len(real) == count:
        return real
    return np.random.default_rng(0).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def randomise_attention(model: MaskFaceNet) -> MaskFaceNet:
    """Randomises the MFSA weights (in place), so the region maps and the attention vary."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.mfsa.values():
            for conv in [module.project, module.classify, *(branch[0] for branch in module.branches)]:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.3)
            module.classify.bias.zero_()
    return model


@pytest.fixture(scope="module")
def cal_mobilefacenet(fr_feature):
    """fr_feature with MFSA inserted and its weights randomised, so the region maps vary."""
    return randomise_attention(MaskFaceNet(fr_feature, use_mfsa=True, gating="face").eval())


@pytest.fixture(scope="module")
def exported(cal_mobilefacenet, tmp_path_factory):
    return export_onnx(cal_mobilefacenet, tmp_path_factory.mktemp("export") / "mbf-cal.onnx", FR_FEATURE_CARD)


def torch_outputs(model: MaskFaceNet, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        embedding, logits = model(torch.from_numpy(inputs))
        return embedding.numpy(), torch.softmax(logits[0], dim=1).numpy()


def test_contract_inputs_outputs_and_metadata(exported):
    model = onnx.load(str(exported))
    graph = model.graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["embedding", "regions"]
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert dims(graph.input[0]) == ["N", 3, 112, 112]
    assert dims(graph.output[1]) == ["N", 3, 28, 28]
    assert min(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["maskface.mean"] == "127,127,127" and metadata["maskface.std"] == "128,128,128"
    assert metadata["maskface.dim"] == "512" and metadata["maskface.color"] == "rgb"
    assert metadata["maskface.regions"] == "face,mask,background" and metadata["maskface.gating"] == "face"


def test_parity_with_onnx_runtime(exported, cal_mobilefacenet, ort_reference):
    inputs = preprocess(faces(4))
    embedding, regions = torch_outputs(cal_mobilefacenet, inputs)
    ort_embedding = ort_reference(exported, inputs, "embedding")
    ort_regions = ort_reference(exported, inputs, "regions").reshape(regions.shape)
    assert np.abs(ort_embedding - embedding).max() <= 1e-4
    assert np.abs(ort_regions - regions).max() <= 1e-4
    assert regions[:, 1].std() > 1e-3, "the perturbed classifier should make the mask map vary"


def node_runtime_outputs(model: Path, pixels: np.ndarray, tmp_path: Path) -> dict:
    """Embeds uint8 RGB faces (N,112,112,3) with maskface's Node runtime (FaceRecognizer.embedBatch)."""
    node = shutil.which("node")
    entry = REPO_ROOT / "dist" / "esm" / "index.js"
    if node is None or not entry.is_file():
        pytest.skip(f"the Node runtime is not built ({entry}): run `npm install` in {REPO_ROOT}")
    pixels.tofile(tmp_path / "faces.u8")
    script = f"""
      import({json.dumps(str(entry))}).then(async (m) => {{
        const rec = await m.FaceRecognizer.load({json.dumps(str(model))}, {{ cpu: {{ intraOpThreads: 1 }} }});
        const data = require('fs').readFileSync({json.dumps(str(tmp_path / 'faces.u8'))});
        const faces = Array.from({{ length: {len(pixels)} }}, (_, i) => ({{ data: data.subarray(i * 37632, (i + 1) * 37632), width: 112, height: 112 }}));
        const batch = await rec.embedBatch(faces);
        console.log(JSON.stringify({{ info: rec.info, name: rec.model.name, embeddings: Array.from(batch.data),
          regions: Array.from(batch.regions), size: batch.regionSize }}));
        await rec.dispose();
      }});"""
    result = subprocess.run([node, "-e", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_loads_in_the_node_runtime_with_its_regions(exported, cal_mobilefacenet, tmp_path):
    pixels = faces(3)
    out = node_runtime_outputs(exported, pixels, tmp_path)
    assert out["info"]["regionsOutput"] == "regions" and out["name"] == "test-mbf-cal"
    assert out["size"] == {"width": 28, "height": 28}
    embedding, regions = torch_outputs(cal_mobilefacenet, preprocess(pixels))
    expected = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    got = np.array(out["embeddings"], dtype=np.float32).reshape(expected.shape)
    assert (got * expected).sum(axis=1).min() >= 0.9999
    assert np.abs(np.array(out["regions"], dtype=np.float32).reshape(regions.shape) - regions).max() <= 1e-4


def attention_mask_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if node.op_type == "AttentionMask"]


@pytest.mark.parametrize("gating", ["face", "not_mask"])
def test_fused_export_has_one_attention_mask_node_per_mfsa_module(tmp_path, gating):
    model = random_cal_model("mobilefacenet", gating)
    card = ModelCard(name="fused", version="0")
    fused = onnx.load(str(export_onnx(model, tmp_path / "fused.onnx", card, fused_attention=True)))
    plain = onnx.load(str(export_onnx(model, tmp_path / "plain.onnx", card)))
    for exported in (fused, plain):
        onnx.checker.check_model(exported)

    nodes = attention_mask_nodes(fused)
    assert len(nodes) == len(model.mfsa) == 3
    for node in nodes:
        assert node.domain == "maskface" and len(node.input) == 2 and len(node.output) == 2
        assert [(a.name, a.type, a.s) for a in node.attribute] == [("gating", onnx.AttributeProto.STRING,
                                                                     gating.encode())]
    assert {(o.domain, o.version) for o in fused.opset_import if o.domain == "maskface"} == {("maskface", 1)}
    # `regions` is the probabilities output of the finest (first) module's op, not another Softmax.
    assert nodes[0].output[1] == "regions" and not any(n.op_type == "Softmax" for n in fused.graph.node)
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert [dims(o) for o in fused.graph.output] == [["N", 512], ["N", 3, 28, 28]]

    assert not attention_mask_nodes(plain) and not any(n.domain == "maskface" for n in plain.graph.node)
    assert "maskface" not in {o.domain for o in plain.opset_import}
    assert all(type(module) is MFSA for module in model.mfsa.values()), "export must not change the model"


@pytest.mark.parametrize("gating", ["face", "not_mask"])
def test_fused_export_runs_in_the_node_runtime_like_eager(tmp_path, gating):
    """maskface's runtime registers maskface::AttentionMask: the fused model gives eager's outputs."""
    model = randomise_attention(random_cal_model("mobilefacenet", gating))
    path = export_onnx(model, tmp_path / "fused.onnx", FR_FEATURE_CARD, fused_attention=True)
    pixels = faces(3)
    out = node_runtime_outputs(path, pixels, tmp_path)
    embedding, regions = torch_outputs(model, preprocess(pixels))
    expected = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    got = np.array(out["embeddings"], dtype=np.float32).reshape(expected.shape)
    assert (got * expected).sum(axis=1).min() >= 0.9999
    assert np.abs(np.array(out["regions"], dtype=np.float32).reshape(regions.shape) - regions).max() <= 1e-4
    assert regions[:, 1].std() > 1e-3, "the randomised attention should make the mask map vary"


def test_random_cal_export_runs_with_a_symbolic_batch(tmp_path, ort_reference):
    torch.manual_seed(0)
    model = random_cal_model("r18")
    path = export_onnx(model, tmp_path / "r18-cal.onnx", ModelCard(name="random-r18-cal", version="0"))
    inputs = np.random.default_rng(3).standard_normal((2, 3, 112, 112)).astype(np.float32)
    embedding, _ = torch_outputs(model, inputs)
    assert np.abs(ort_reference(path, inputs, "embedding") - embedding).max() <= 1e-4


def test_plain_model_exports_without_regions(tmp_path):
    model = MaskFaceNet(get_backbone("mobilefacenet"), use_mfsa=False).eval()
    path = export_onnx(model, tmp_path / "plain.onnx", ModelCard(name="plain", version="0"))
    loaded = onnx.load(str(path))
    assert [o.name for o in loaded.graph.output] == ["embedding"]
    assert "maskface.regions" not in {p.key for p in loaded.metadata_props}
