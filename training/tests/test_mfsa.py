import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import lfw_faces, preprocess
from maskface_train.backbones import MobileFaceNet, get_backbone
from maskface_train.losses import region_loss
from maskface_train.mfsa import MASK, MFSA, MaskFaceNet


@pytest.mark.parametrize("gating", ["face", "not_mask"])
def test_initial_attention_is_near_one(gating):
    module = MFSA(64, gating=gating).eval()
    for scale in (0.1, 1.0, 30.0):  # stage outputs differ widely in magnitude
        features = scale * torch.randn(2, 64, 28, 28)
        with torch.no_grad():
            gated, logits = module(features)
            attention = module.attention(logits)
        assert logits.shape == (2, 3, 28, 28)
        assert attention.min().item() > 0.998
        assert torch.allclose(gated, features * attention)


def test_unknown_gating_is_refused():
    with pytest.raises(ValueError, match="gating"):
        MFSA(8, gating="mask")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=1)


@pytest.mark.parametrize("gating", ["face", "not_mask"])
def test_wrapped_iresnet_at_init_matches_backbone(gating):
    backbone = get_backbone("r18").eval()
    model = MaskFaceNet(backbone, gating=gating).eval()
    inputs = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        plain = backbone(inputs)
        embedding, logits = model(inputs)
    assert [tuple(l.shape) for l in logits] == [(2, 3, 28, 28), (2, 3, 14, 14), (2, 3, 7, 7)]
    assert _cosine(embedding, plain).min().item() > 0.9999


def test_mfsa_off_is_the_plain_backbone():
    backbone = MobileFaceNet().eval()
    model = MaskFaceNet(backbone, use_mfsa=False).eval()
    inputs = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        embedding, logits = model(inputs)
        assert torch.equal(embedding, backbone(inputs))
    assert logits == [] and len(list(model.mfsa.parameters())) == 0


@pytest.mark.parametrize("gating", ["face", "not_mask"])
def test_pretrained_mobilefacenet_with_mfsa_at_init(fr_feature, gating):
    rng = np.random.default_rng(1)
    images = np.concatenate([lfw_faces(6), rng.integers(0, 256, size=(2, 112, 112, 3), dtype=np.uint8)])
    inputs = torch.from_numpy(preprocess(images))
    model = MaskFaceNet(fr_feature, gating=gating).eval()
    with torch.no_grad():
        cos = _cosine(model(inputs)[0], fr_feature(inputs))
    print(f"fr_feature with MFSA at init ({gating}): min cosine {cos.min().item():.6f}")
    assert cos.min().item() >= 0.999


def _masked_set(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise 'faces' with a flat light-blue rectangle (the mask) over the lower middle; labels:
    1 inside the rectangle, 2 outside a centred ellipse, 0 elsewhere."""
    images = torch.randint(0, 256, (count, 112, 112, 3), dtype=torch.uint8).numpy()
    images[:, 64:100, 24:88] = (170, 200, 230)
    yy, xx = np.mgrid[:112, :112]
    labels = np.where(((xx - 56) / 46) ** 2 + ((yy - 56) / 54) ** 2 > 1, 2, 0)
    labels[64:100, 24:88] = MASK
    labels = np.broadcast_to(labels, (count, 112, 112)).copy()
    return torch.from_numpy(preprocess(images)), torch.from_numpy(labels).long()


def test_region_loss_decreases_training_only_mfsa():
    backbone = MobileFaceNet().eval()
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    model = MaskFaceNet(backbone)
    model.mfsa.train()
    inputs, labels = _masked_set(8)
    optimiser = torch.optim.Adam(model.mfsa.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = region_loss(model(inputs)[1], labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        finest = model(inputs)[1][0].argmax(1)
    mask_recall = (finest[:, 17:24, 7:21] == MASK).float().mean().item()  # rectangle interior at 28x28
    print(f"region loss {losses[0]:.3f} -> {losses[-1]:.3f}; 28x28 mask recall {mask_recall:.3f}")
    assert losses[-1] < 0.3 * losses[0], losses
    assert mask_recall > 0.9


def test_frame_coordinates_span_the_frame_at_cell_centres():
    from maskface_train.mfsa import frame_coordinates

    grid = frame_coordinates(torch.zeros(3, 8, 4, 2))
    assert grid.shape == (3, 2, 4, 2)
    torch.testing.assert_close(grid[0, 0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))  # y down the rows
    torch.testing.assert_close(grid[0, 1, 0, :], torch.tensor([-0.5, 0.5]))                # x along a row
    assert torch.equal(grid[0], grid[2])


def test_detached_attention_leaves_the_logits_to_the_region_loss():
    torch.manual_seed(0)
    features = torch.randn(2, 16, 14, 14, requires_grad=True)
    for detach in (False, True):
        module = MFSA(16, gating="not_mask", initial_attention=0.9, detach_attention=detach)
        gated, logits = module(features)
        gated.sum().backward()   # an embedding-side loss only
        grad = module.classify.weight.grad
        assert (grad is None or float(grad.abs().sum()) == 0.0) == detach
