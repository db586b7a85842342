import pytest
import torch

from maskface_train.backbones import get_backbone

EXPECTED_CHANNELS = {
    "mobilefacenet": (64, 128, 128),
    "r18": (128, 256, 512),
    "r34": (128, 256, 512),
    "r50": (128, 256, 512),
    "r100": (128, 256, 512),
}


@pytest.mark.parametrize("name", list(EXPECTED_CHANNELS))
def test_shapes_at_112(name):
    model = get_backbone(name).eval()
    # Batch 1 under no_grad: IResNet-100 is ~24 GFLOPs a face on these 2 cores.
    with torch.no_grad():
        embedding, maps = model(torch.randn(1, 3, 112, 112), return_maps=True)
    assert embedding.shape == (1, 512)
    assert torch.isfinite(embedding).all()
    channels = EXPECTED_CHANNELS[name]
    assert model.hook_channels == channels
    assert [tuple(m.shape) for m in maps] == [(1, c, s, s) for c, s in zip(channels, (28, 14, 7))]


def test_iresnet_trains_in_batch_mode():
    model = get_backbone("r18").train()
    embedding = model(torch.randn(2, 3, 112, 112))
    embedding.pow(2).mean().backward()
    assert embedding.shape == (2, 512)
    assert model.stem[0].weight.grad is not None
    # The head's feature BN scale is fixed, as in arcface_torch.
    assert model.head.features.weight.grad is None


def test_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        get_backbone("resnet50")
    with pytest.raises(ValueError, match="depth must be one of"):
        get_backbone("r20")


def test_narrow_iresnet_for_small_experiments():
    model = get_backbone("r18", widths=(8, 16, 32, 64), embedding_size=32).eval()
    with torch.no_grad():
        embedding, maps = model(torch.randn(1, 3, 112, 112), return_maps=True)
    assert embedding.shape == (1, 32)
    assert model.hook_channels == (16, 32, 64)
    assert [tuple(m.shape) for m in maps] == [(1, 16, 28, 28), (1, 32, 14, 14), (1, 64, 7, 7)]
    with pytest.raises(ValueError, match="4 stage widths"):
        get_backbone("r18", widths=(8, 16, 32))
