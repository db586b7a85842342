import math

import pytest
import torch

from maskface_train.losses import ArcFace, distillation_loss, region_loss, resize_labels


def test_arcface_decreases_on_separable_problem():
    centres = torch.randn(4, 16) * 3
    labels = torch.arange(4).repeat_interleave(8)
    inputs = centres[labels] + 0.3 * torch.randn(len(labels), 16)
    embed = torch.nn.Linear(16, 32)
    head = ArcFace(32, 4)
    optimiser = torch.optim.SGD([*embed.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = head(embed(inputs), labels)
        assert torch.isfinite(loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses


def test_arcface_margin_and_extremes():
    head = ArcFace(4, 3, s=64.0, m=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3, 4))
    # Embedding on class 0's weight (cos = 1), on the opposite side (cos = -1), and orthogonal.
    embeddings = torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 0])
    logits = head.logits(embeddings, labels)
    assert logits[0, 0].item() == pytest.approx(64 * math.cos(0.5), rel=1e-5)
    assert logits[2, 0].item() == pytest.approx(64 * math.cos(math.pi / 2 + 0.5), rel=1e-4)
    # Beyond pi - m the target logit continues linearly instead of turning back up.
    assert logits[1, 0].item() == pytest.approx(64 * (-1 - 0.5 * math.sin(0.5)), rel=1e-5)
    head(embeddings, labels).backward()
    assert torch.isfinite(embeddings.grad).all()
    # Half-precision embeddings are computed in float32.
    assert torch.isfinite(head(embeddings.detach().half(), labels))


def test_region_loss_resizes_labels_per_module():
    labels = torch.zeros(2, 112, 112, dtype=torch.long)
    labels[:, 64:, :] = 1
    labels[:, :, :16] = 2
    perfect = [20.0 * torch.nn.functional.one_hot(resize_labels(labels, (s, s)), 3).permute(0, 3, 1, 2).float()
               for s in (28, 14, 7)]
    assert region_loss(perfect, labels).item() < 1e-6
    assert resize_labels(labels, (7, 7))[0, 4:, 1:].eq(1).all()
    uniform = [torch.zeros(2, 3, s, s) for s in (28, 14, 7)]
    assert region_loss(uniform, labels).item() == pytest.approx(math.log(3), rel=1e-6)
    with pytest.raises(ValueError):
        region_loss([], labels)


def test_distillation_loss():
    teacher = torch.randn(3, 512, requires_grad=True)
    student = (2.5 * teacher).detach().requires_grad_()
    assert distillation_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(-student, teacher).item() == pytest.approx(2.0, abs=1e-6)
    distillation_loss(torch.randn(3, 512, requires_grad=True), teacher).backward()
    assert teacher.grad is None
