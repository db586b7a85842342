"""Distillation mode (DESIGN §1): teach a pretrained face network to see past masks, on a CPU.

student = MobileFaceNet initialised from fr_feature.onnx, with MFSA after its 28x28, 14x14 and
          7x7 stages (or without, for the "plain masked distillation" ablation);
teacher = fr_feature itself, frozen, on the clean face.

Each batch mixes masked faces (a synthetic mask from masks.render_mask, with probability
`mask_probability`) and clean ones, so unmasked faces keep their embeddings:

    loss = 1 - cos(student(x'), teacher(x)) + lambda * region CE(student's logits, labels)

where x' is x masked or not. Clean faces get region labels too (face inside the prior,
background outside), so the attention learns to leave bare faces alone. Teacher embeddings of
the clean crops (and of their mirror images) are computed once and cached beside the crops.

One command trains, evaluates nothing and exports the ONNX model:

    /usr/bin/python3 -m maskface_train.distill --out runs/mbf-cal
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import facedata
from .export import ModelCard, export_onnx
from .import_onnx import load_fr_feature
from .losses import distillation_loss, region_loss
from .masks import face_prior_mask, render_mask
from .mfsa import BACKGROUND, FACE, MaskFaceNet
from .runs import Progress, RunDir, seed_everything

# fr_feature's preprocessing, kept by the student so it stays a drop-in replacement.
MEAN, STD = 127.0, 128.0


@dataclass(frozen=True)
class DistillConfig:
    train_sets: tuple[str, ...] = ("utkface", "celeba")
    steps: int = 400
    batch_size: int = 32
    mask_probability: float = 0.7
    lambda_region: float = 1.0
    use_mfsa: bool = True
    gating: str = "not_mask"          # "face": F * P[face]; "not_mask": F * (1 - P[mask])
    # Only the region loss trains the region logits (the attention uses them detached). Trained
    # end to end, the distillation loss taught the 28x28 module to call the mask "background"
    # (which not_mask gating keeps): mask IoU 0.02 there against 0.76 at 14x14.
    detach_attention: bool = True
    lr_backbone: float = 5e-5
    lr_attention: float = 1e-2   # the face-logit bias starts at +7.6: slower rates barely move it in 400 steps
    weight_decay: float = 5e-4
    freeze_stem: bool = True          # the 56x56 layers: a third of the work, little to gain
    flip: bool = True
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 100
    limit_per_set: int | None = 4000  # crops per set (teacher targets are computed for each)


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N,112,112,3) uint8 RGB -> (N,3,112,112) float32, fr_feature's (x - 127) / 128."""
    return torch.from_numpy(((images.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2).copy())


@torch.no_grad()
def embed(model: torch.nn.Module, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """L2-normalised embeddings of uint8 RGB crops (the first output if the model returns a tuple)."""
    model.eval()
    out = []
    for start in range(0, len(images), batch):
        result = model(to_input(images[start:start + batch]))
        result = result[0] if isinstance(result, tuple) else result
        out.append(torch.nn.functional.normalize(result, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 512), np.float32)


def teacher_targets(teacher: torch.nn.Module, crops: np.ndarray, key: str) -> np.ndarray:
    """(N, 2, 512): the teacher's embeddings of each crop and of its mirror image, cached."""
    digest = hashlib.sha256(crops[:, ::7, ::7].tobytes()).hexdigest()[:16]
    path = facedata.cache_dir() / f"teacher-{key}-{len(crops)}-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.monotonic()
    clean = embed(teacher, crops)
    mirrored = embed(teacher, crops[:, :, ::-1])
    targets = np.stack([clean, mirrored], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, targets)
    print(f"teacher embeddings for {key}: {len(crops)} crops x 2 in {time.monotonic() - started:.0f} s")
    return targets


def prior_labels() -> np.ndarray:
    labels = np.full((112, 112), FACE, np.uint8)
    labels[~face_prior_mask(112)] = BACKGROUND
    return labels


class MaskedBatches:
    """Batches of (input, region labels, teacher target, masked flags), drawn from one RNG."""

    def __init__(self, crops: np.ndarray, landmarks5: np.ndarray, targets: np.ndarray,
                 config: DistillConfig) -> None:
        self.crops, self.landmarks5, self.targets, self.config = crops, landmarks5, targets, config
        self.clean_labels = prior_labels()

    def sample(self, rng: np.random.Generator):
        c = self.config
        index = rng.integers(len(self.crops), size=c.batch_size)
        images = np.empty((c.batch_size, 112, 112, 3), np.uint8)
        labels = np.empty((c.batch_size, 112, 112), np.int64)
        targets = np.empty((c.batch_size, self.targets.shape[-1]), np.float32)
        masked = rng.random(c.batch_size) < c.mask_probability
        flips = (rng.random(c.batch_size) < 0.5) if c.flip else np.zeros(c.batch_size, bool)
        for row, (i, is_masked, flip) in enumerate(zip(index, masked, flips)):
            image, points = self.crops[i], self.landmarks5[i]
            if flip:
                # Mirror the crop and its landmarks (left and right points swap roles).
                image = image[:, ::-1]
                points = points[[1, 0, 2, 4, 3]] * [-1, 1] + [111, 0]
            if is_masked:
                image, regions = render_mask(np.ascontiguousarray(image), rng, landmarks5=points)
            else:
                regions = self.clean_labels
            images[row], labels[row] = image, regions
            targets[row] = self.targets[i, int(flip)]
        return to_input(images), torch.from_numpy(labels), torch.from_numpy(targets), torch.from_numpy(masked)


def build_student(config: DistillConfig) -> MaskFaceNet:
    if config.use_mfsa and config.detach_attention and config.lambda_region == 0:
        raise ValueError("with detach_attention and no region loss nothing trains the attention: "
                         "pass --detach-attention false for the no-region-loss ablation")
    student = MaskFaceNet(load_fr_feature(), use_mfsa=config.use_mfsa, gating=config.gating,
                          detach_attention=config.detach_attention)
    if config.freeze_stem:
        for p in student.backbone.stem.parameters():
            p.requires_grad_(False)
    return student


def load_training_crops(config: DistillConfig) -> tuple[np.ndarray, np.ndarray]:
    crops, points = [], []
    for name in config.train_sets:
        aligned = facedata.load_set(name, limit=config.limit_per_set)
        crops.append(aligned.crops)
        points.append(aligned.landmarks5)
    return np.concatenate(crops), np.concatenate(points).astype(np.float32)


def train(config: DistillConfig, out: str | Path, name: str = "maskface-mbf-cal",
          version: str = "0.1.0", export: bool = True, stop_at: int | None = None) -> Path | None:
    """Trains (resuming from `out` if it holds this run) and exports out/model.onnx.

    stop_at: leave after that step with a checkpoint written, as an interrupted run would
    (returns None); rerunning resumes."""
    torch.set_num_threads(config.threads)
    # fr_feature holds thousands of denormal weights: flushing them makes CPU runs ~3x faster.
    torch.set_flush_denormal(True)
    run = RunDir(out, config)
    seed_everything(config.seed)
    crops, landmarks5 = load_training_crops(config)
    teacher = load_fr_feature().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    targets = teacher_targets(teacher, crops, "+".join(config.train_sets))
    batches = MaskedBatches(crops, landmarks5, targets, config)

    student = build_student(config)
    attention = [p for p in student.mfsa.parameters()]
    backbone = [p for p in student.backbone.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW([
        {"params": backbone, "lr": config.lr_backbone},
        {"params": attention, "lr": config.lr_attention},
    ], weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 20) * 0.5 * (1 + np.cos(np.pi * step / config.steps)))
    rng_holder = _RngHolder(config.seed)
    step = run.resume(student=student, optimiser=optimiser, schedule=schedule, data_rng=rng_holder)
    if step:
        print(f"resuming {run.path} at step {step}")

    progress = Progress(config.steps, start=step, label="distill", every=25)
    student.train()
    while step < config.steps:
        inputs, labels, target, masked = batches.sample(rng_holder.rng)
        embedding, logits = student(inputs)
        cos_loss = 1.0 - torch.nn.functional.cosine_similarity(embedding, target, dim=1)
        loss = cos_loss.mean()
        region = region_loss(logits, labels) if logits and config.lambda_region > 0 else torch.zeros(())
        total = loss + config.lambda_region * region
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimiser.param_groups for p in g["params"]], 5.0)
        optimiser.step()
        schedule.step()
        step += 1
        values = {
            "distill_masked": float(cos_loss[masked].mean()) if masked.any() else float("nan"),
            "distill_clean": float(cos_loss[~masked].mean()) if (~masked).any() else float("nan"),
            "region": float(region),
            "total": float(total),
        }
        run.log(step, **values, lr=schedule.get_last_lr()[0])
        progress.update(step, **values)
        if step % config.checkpoint_every == 0 or step == config.steps:
            run.save(step, student=student, optimiser=optimiser, schedule=schedule, data_rng=rng_holder)
        if stop_at is not None and step >= stop_at and step < config.steps:
            run.save(step, student=student, optimiser=optimiser, schedule=schedule, data_rng=rng_holder)
            return None

    student.eval()
    path = run.path / "model.onnx"
    if export:
        card = ModelCard(name=name, version=version, mean=(MEAN,) * 3, std=(STD,) * 3)
        export_onnx(student, path, card)
    torch.save(student.state_dict(), run.path / "student.pt")
    return path


class _RngHolder:
    """The data RNG as something RunDir can checkpoint (a state_dict round trip)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def state_dict(self) -> dict:
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def load_student(run: str | Path) -> MaskFaceNet:
    """The trained student of a finished run folder, in eval mode."""
    run = Path(run)
    config = DistillConfig(**_tuples(json.loads((run / "config.json").read_text())))
    student = MaskFaceNet(load_fr_feature(), use_mfsa=config.use_mfsa, gating=config.gating,
                          detach_attention=config.detach_attention)
    student.load_state_dict(torch.load(run / "student.pt", map_location="cpu"))
    return student.eval()


def _tuples(values: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = DistillConfig()
    parser.add_argument("--out", required=True, help="run folder (rerun the same command to resume)")
    parser.add_argument("--name", default="maskface-mbf-cal")
    parser.add_argument("--version", default="0.1.0")
    for field in dataclasses.fields(DistillConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        if isinstance(default, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=default,
                                metavar="true|false")
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=lambda s: tuple(s.split(",")), default=default)
        elif field.name == "limit_per_set":
            parser.add_argument(flag, type=lambda s: None if s == "all" else int(s), default=default,
                                metavar="N|all")
        else:
            parser.add_argument(flag, type=type(default), default=default)
    args = vars(parser.parse_args())
    out, name, version = args.pop("out"), args.pop("name"), args.pop("version")
    config = DistillConfig(**args)
    print(train(config, out, name=name, version=version))


if __name__ == "__main__":
    main()
