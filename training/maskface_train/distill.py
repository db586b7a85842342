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

from . import facedata, realmasks
from .export import ModelCard, export_onnx
from .augment import web_augment
from .import_onnx import load_fr_feature
from .losses import distillation_loss, region_loss
from .maskbank import MaskBank, build_mask_bank, paste_real_mask
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
    detach_region_features: bool = False  # the region head reads detached features (see mfsa.MFSA)
    augment: float = 0.0              # share of synthetic-set faces given web_augment (photometric only)
    # Real masked photos with identities (rmfrd_real_masks 'train' identities only): this many
    # per batch on top of batch_size, masked ones at real_masked_share.
    real_per_batch: int = 0
    real_masked_share: float = 0.75
    eyes_nose_share: float = 0.8      # masked real photos aligned on the eyes and nose, as embedFaces does
    real_augment: float = 0.8         # share of real photos given web_augment (with geometry)
    # Identity loss on masked faces: CosFace over fixed prototypes in the teacher's space, the mean
    # teacher embedding of each train identity's bare photos plus (identity_negatives) the teacher
    # embedding of every synthetic-set face as a class of its own. It pulls a masked face toward
    # its person's bare faces and away from everyone else's, which is what a masked probe against
    # a bare gallery needs; the synthetic masked faces' class is their own clean face.
    lambda_identity: float = 0.0
    identity_scale: float = 30.0
    identity_margin: float = 0.2
    identity_negatives: bool = True
    lambda_pull: float = 0.0          # 1 - cos(real masked face, its person's prototype)
    # Weight of the distillation of unmasked faces (synthetic-set clean faces, real bare photos)
    # against 1 for the synthetically masked ones: what keeps bare faces where the teacher had them.
    lambda_clean: float = 1.0
    # Share of the synthetically masked faces that get a real mask cut from an rmfrd 'train' photo
    # (maskbank.py) instead of a painted one.
    real_mask_paste: float = 0.0
    # Share of the painted masks lit by the face's own light, with soft edges (masks.render_mask).
    mask_lighting: float = 0.0


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
                 config: DistillConfig, mask_bank: MaskBank | None = None) -> None:
        if config.real_mask_paste > 0 and not mask_bank:
            raise ValueError("real_mask_paste needs a mask bank with cut-outs")
        self.crops, self.landmarks5, self.targets, self.config = crops, landmarks5, targets, config
        self.mask_bank = mask_bank
        self.clean_labels = prior_labels()

    def sample(self, rng: np.random.Generator):
        c = self.config
        index = rng.integers(len(self.crops), size=c.batch_size)
        images = np.empty((c.batch_size, 112, 112, 3), np.uint8)
        labels = np.empty((c.batch_size, 112, 112), np.int64)
        targets = np.empty((c.batch_size, self.targets.shape[-1]), np.float32)
        masked = rng.random(c.batch_size) < c.mask_probability
        flips = (rng.random(c.batch_size) < 0.5) if c.flip else np.zeros(c.batch_size, bool)
        augmented = rng.random(c.batch_size) < c.augment
        for row, (i, is_masked, flip, augment) in enumerate(zip(index, masked, flips, augmented)):
            image, points = self.crops[i], self.landmarks5[i]
            if flip:
                # Mirror the crop and its landmarks (left and right points swap roles).
                image = image[:, ::-1]
                points = points[[1, 0, 2, 4, 3]] * [-1, 1] + [111, 0]
            if is_masked and c.real_mask_paste > 0 and rng.random() < c.real_mask_paste:
                image, regions = paste_real_mask(np.ascontiguousarray(image), self.mask_bank, rng, landmarks5=points)
            elif is_masked:
                lit = c.mask_lighting > 0 and rng.random() < c.mask_lighting
                image, regions = render_mask(np.ascontiguousarray(image), rng, landmarks5=points, lit=lit)
            else:
                regions = self.clean_labels
            if augment:
                image = web_augment(np.ascontiguousarray(image), rng, geometric=False)
            images[row], labels[row] = image, regions
            targets[row] = self.targets[i, int(flip)]
        return (to_input(images), torch.from_numpy(labels), torch.from_numpy(targets), torch.from_numpy(masked),
                torch.from_numpy(index))


class RealBatches:
    """Real photos of the rmfrd 'train' identities: (input, teacher target, masked, prototype index).

    Bare photos are distilled toward the teacher's embedding of the same (unaugmented) crop; masked
    photos get the identity loss toward their person's prototype. Region labels: none (-100), as
    real masks have no pixel labels."""

    def __init__(self, data, targets: np.ndarray, prototypes_of: np.ndarray, config: DistillConfig) -> None:
        self.data, self.targets, self.config = data, targets, config
        self.prototype = prototypes_of          # per photo: its identity's prototype row, -1 if none
        usable = self.prototype >= 0
        self.masked_rows = np.flatnonzero(data.masked & usable)
        self.bare_rows = np.flatnonzero(~data.masked)

    def sample(self, rng: np.random.Generator):
        c = self.config
        n = c.real_per_batch
        masked = rng.random(n) < c.real_masked_share
        rows = np.where(masked, rng.choice(self.masked_rows, size=n), rng.choice(self.bare_rows, size=n))
        images = np.empty((n, 112, 112, 3), np.uint8)
        targets = np.empty((n, self.targets.shape[-1]), np.float32)
        for k, (row, is_masked) in enumerate(zip(rows, masked)):
            eyes_nose = is_masked and rng.random() < c.eyes_nose_share
            image = (self.data.eyes_nose if eyes_nose else self.data.five_point)[row]
            flip = c.flip and rng.random() < 0.5
            if flip:
                image = image[:, ::-1]
            if rng.random() < c.real_augment:
                image = web_augment(np.ascontiguousarray(image), rng)
            images[k] = image
            targets[k] = self.targets[row, int(flip)]
        labels = torch.full((n, 112, 112), -100, dtype=torch.int64)
        return (to_input(images), labels, torch.from_numpy(targets), torch.from_numpy(masked),
                torch.from_numpy(self.prototype[rows]))


def identity_prototypes(data, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) unit prototypes, one per identity with a bare photo (mean teacher embedding of its
    bare photos and their mirror images), and per photo the row of its identity's (-1: none)."""
    names = sorted({who for who, m in zip(data.identities, data.masked) if not m})
    row_of = {name: k for k, name in enumerate(names)}
    sums = np.zeros((len(names), targets.shape[-1]), np.float64)
    for who, m, t in zip(data.identities, data.masked, targets):
        if not m:
            sums[row_of[who]] += t.sum(0)
    prototypes = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return prototypes.astype(np.float32), np.array([row_of.get(who, -1) for who in data.identities], np.int64)


def identity_loss(embedding: torch.Tensor, prototypes: torch.Tensor, labels: torch.Tensor,
                  scale: float, margin: float) -> torch.Tensor:
    """CosFace (large margin cosine) over fixed prototypes: rows of `labels` < 0 are skipped."""
    keep = labels >= 0
    if not keep.any():
        return embedding.new_zeros(())
    cos = torch.nn.functional.normalize(embedding[keep], dim=1) @ prototypes.T
    logits = scale * (cos - margin * torch.nn.functional.one_hot(labels[keep], prototypes.shape[0]))
    return torch.nn.functional.cross_entropy(logits, labels[keep])


def build_student(config: DistillConfig) -> MaskFaceNet:
    if config.use_mfsa and config.detach_attention and config.lambda_region == 0:
        raise ValueError("with detach_attention and no region loss nothing trains the attention: "
                         "pass --detach-attention false for the no-region-loss ablation")
    student = MaskFaceNet(load_fr_feature(), use_mfsa=config.use_mfsa, gating=config.gating,
                          detach_attention=config.detach_attention,
                          detach_features=config.detach_region_features)
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
    if (config.lambda_identity > 0 or config.lambda_pull > 0) and config.real_per_batch == 0:
        raise ValueError("lambda_identity and lambda_pull need real photos: set real_per_batch")
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
    mask_bank = build_mask_bank() if config.real_mask_paste > 0 else None   # 'train' photos only
    if mask_bank is not None:
        print(f"mask bank: {len(mask_bank)} real masks cut from rmfrd 'train' photos")
    batches = MaskedBatches(crops, landmarks5, targets, config, mask_bank)
    real_batches, prototypes = None, None
    if config.real_per_batch > 0:
        real = realmasks.load_rmfrd("train")   # 'train' identities only, by construction
        real_targets = teacher_targets(teacher, real.five_point, "rmfrd-train")
        identity_rows, prototype_of = identity_prototypes(real, real_targets)
        person_prototypes = torch.from_numpy(identity_rows)   # the pull's targets
        real_batches = RealBatches(real, real_targets, prototype_of, config)
        print(f"real photos: {len(real.files)} of {len(set(real.identities))} identities "
              f"({len(identity_rows)} with a bare photo), {len(real_batches.masked_rows)} masked usable")
    if config.lambda_identity > 0:
        bank = [identity_rows]
        if config.identity_negatives:
            own = targets.sum(1)
            bank.append(own / np.linalg.norm(own, axis=1, keepdims=True))
        prototypes = torch.from_numpy(np.concatenate(bank).astype(np.float32))
        synthetic_offset = len(identity_rows)

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
    nan = float("nan")
    while step < config.steps:
        inputs, labels, target, masked, crop_index = batches.sample(rng_holder.rng)
        synthetic = len(inputs)
        # Class of each row in the identity loss: a synthetic masked face is its own clean face's
        # class (when negatives are on), a real masked photo its person's; -1 takes no part.
        classes = torch.full((synthetic,), -1, dtype=torch.int64)
        if prototypes is not None and config.identity_negatives:
            classes = torch.where(masked, crop_index + synthetic_offset, classes)
        real_masked = torch.zeros(0, dtype=torch.bool)
        if real_batches is not None:
            r_inputs, r_labels, r_target, real_masked, r_proto = real_batches.sample(rng_holder.rng)
            inputs, labels = torch.cat([inputs, r_inputs]), torch.cat([labels, r_labels])
            target = torch.cat([target, r_target])
            classes = torch.cat([classes, torch.where(real_masked, r_proto, torch.full_like(r_proto, -1))])
        embedding, logits = student(inputs)
        cos_loss = 1.0 - torch.nn.functional.cosine_similarity(embedding, target, dim=1)
        # Distillation: every synthetic face, and the real bare photos (a real masked photo's
        # teacher embedding is of the mask, not of the person).
        distilled = torch.cat([torch.ones(synthetic, dtype=torch.bool), ~real_masked])
        weights = torch.where(torch.cat([masked, torch.zeros_like(real_masked)]), 1.0, config.lambda_clean)
        loss = (cos_loss * weights)[distilled].mean()
        region = region_loss(logits, labels) if logits and config.lambda_region > 0 else torch.zeros(())
        total = loss + config.lambda_region * region
        identity = pull = torch.zeros(())
        if prototypes is not None:
            identity = identity_loss(embedding, prototypes, classes, config.identity_scale, config.identity_margin)
            total = total + config.lambda_identity * identity
        if config.lambda_pull > 0 and real_masked.any():
            own = person_prototypes[r_proto[real_masked]]
            pull = (1.0 - torch.nn.functional.cosine_similarity(embedding[synthetic:][real_masked], own, dim=1)).mean()
            total = total + config.lambda_pull * pull
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimiser.param_groups for p in g["params"]], 5.0)
        optimiser.step()
        schedule.step()
        step += 1
        synthetic_loss, real_loss = cos_loss[:synthetic], cos_loss[synthetic:]
        values = {
            "distill_masked": float(synthetic_loss[masked].mean()) if masked.any() else nan,
            "distill_clean": float(synthetic_loss[~masked].mean()) if (~masked).any() else nan,
            "distill_real_bare": float(real_loss[~real_masked].mean()) if (~real_masked).any() else nan,
            "identity": float(identity),
            "pull": float(pull),
            "region": float(region),
            "total": float(total),
        }
        run.log(step, **values, lr=schedule.get_last_lr()[0])
        progress.update(step, **{k: v for k, v in values.items() if k in ("distill_masked", "identity", "region", "total")})
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
    """The student of a run folder, in eval mode: the finished run's weights, or those of its
    last checkpoint while it is still training."""
    run = Path(run)
    student = build_student(DistillConfig(**_tuples(json.loads((run / "config.json").read_text()))))
    if (run / "student.pt").exists():
        state = torch.load(run / "student.pt", map_location="cpu")
    else:
        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["student"]
    student.load_state_dict(state)
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
