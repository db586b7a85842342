"""Full training (DESIGN §1): ArcFace margin loss (s=64, m=0.5) + lambda * CAL region loss.

One process (CPU, or one GPU):
    /usr/bin/python3 -m maskface_train.train_arcface --data faces/ --backbone r50 --out runs/r50 --steps 200000
Several GPUs of one machine (one process each, nccl; gloo on CPU):
    torchrun --standalone --nproc_per_node 8 -m maskface_train.train_arcface --data ms1mv2/train.rec ...

--data is an image folder (root/<identity>/<112x112 image>), a .rec file with its .idx beside it,
or a folder holding train.rec/train.idx (insightface's sets). A share of the samples
(--mask-probability) gets a synthetic mask and its exact region labels; the others get face /
background from the face prior. The model is MaskFaceNet (MFSA after the 28/14/7 stages; --no-mfsa
for the ablation) on any backbone of backbones/.

The run folder (--out, runs.RunDir) holds config.json, checkpoint.pt and losses.jsonl; rerunning the
same command continues from the checkpoint (model, head, optimiser, schedule, AMP scaler, RNG
states, step), and a different configuration in the same folder is refused. A resumed run follows
the uninterrupted one exactly: batches are drawn by step, and every random choice of a sample comes
from (seed, epoch, index). At the end the model is exported to <out>/model.onnx (export.py).

Distributed data parallel: --batch-size is per process; a DistributedSampler shards each epoch;
only rank 0 writes the checkpoint, the log and the progress line. The ArcFace head is a plain
full (num_classes x 512) weight on every rank, synchronised by DDP like any other parameter: no
partial FC. That costs num_classes x 512 x 4 bytes per rank for the weight and as much again for
its gradient and its momentum (Glint360K: 0.74 GB each), which fits current GPUs; insightface's
PartialFC shards the head and samples negative classes, which only pays at millions of classes.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from .backbones import get_backbone
from .datasets import MaskedFaces, open_faces
from .export import ARCFACE_MEAN, ARCFACE_STD, ModelCard, export_onnx
from .losses import ArcFace, region_loss
from .mfsa import GATINGS, MaskFaceNet
from .runs import Progress, RunDir, seed_everything

SCHEDULES = ("poly", "cosine")


@dataclass
class TrainConfig:
    """What defines a run (stored in config.json; a resumed run must match it)."""

    data: str
    backbone: str = "r50"
    backbone_widths: list[int] | None = None  # IResNet stage widths (default 64,128,256,512)
    name: str = "maskface-arcface"
    steps: int = 10000
    batch_size: int = 128            # per process
    lr: float = 0.1                  # for the global batch; not rescaled with the world size
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "poly"           # 'poly': (1 - t)^2 as in arcface_torch; 'cosine'
    warmup_steps: int = 0
    lambda_region: float = 1.0       # 0 turns the region loss off
    mask_probability: float = 0.5
    use_mfsa: bool = True
    gating: str = "face"
    hflip: bool = True
    clip_grad: float = 5.0           # max gradient norm; 0 turns clipping off
    amp: bool = True                 # float16 autocast, only ever on CUDA
    margin_s: float = 64.0
    margin_m: float = 0.5
    embedding_size: int = 512
    resize: bool = False             # scale images that are not 112x112 instead of refusing them
    seed: int = 0
    world_size: int = 1              # processes; part of the run because the global batch is

    def check(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.gating not in GATINGS:
            raise ValueError(f"gating must be one of {GATINGS}, got {self.gating!r}")
        if self.lambda_region < 0:
            raise ValueError(f"lambda_region must be >= 0, got {self.lambda_region}")
        if self.lambda_region > 0 and not self.use_mfsa:
            raise ValueError("without MFSA there are no region logits: pass --lambda-region 0 with --no-mfsa")
        if self.backbone_widths is not None and not self.backbone.startswith("r"):
            raise ValueError(f"backbone widths apply to IResNet only, not {self.backbone}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch size must be positive")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps), got {self.warmup_steps}")


@dataclass
class RunOptions:
    """How this invocation runs (not part of the run: may change between a run and its resume)."""

    out: str
    device: str | None = None        # default: this rank's GPU if there is one, else the CPU
    workers: int = 4                 # DataLoader processes per rank (0: load in the main process)
    log_every: int = 50
    save_every: int = 1000
    stop_at: int | None = None       # stop after this step with a checkpoint (time-limited jobs)
    model_version: str = "0"
    progress: bool = True


def lr_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of the base learning rate for the optimiser step that follows `step` steps."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    t = (step - config.warmup_steps) / (config.steps - config.warmup_steps)
    if config.schedule == "poly":
        return (1.0 - t) ** 2
    return 0.5 * (1.0 + math.cos(math.pi * t))


class TrainStep(nn.Module):
    """model + ArcFace head + the loss, one module so DDP sees every parameter in one forward."""

    def __init__(self, model: MaskFaceNet, head: ArcFace, lambda_region: float) -> None:
        super().__init__()
        self.model, self.head, self.lambda_region = model, head, lambda_region

    def forward(self, images: torch.Tensor, regions: torch.Tensor, labels: torch.Tensor):
        embeddings, region_logits = self.model(images)
        arcface = self.head(embeddings, labels)
        if self.lambda_region > 0:
            region = region_loss(region_logits, regions)
        else:
            region = torch.zeros((), device=arcface.device)
        return arcface + self.lambda_region * region, arcface, region


class ResumableSampler(Sampler[int]):
    """DistributedSampler's shard of an epoch, whole batches only, from a given batch onwards.

    The permutation is DistributedSampler's (seeded by seed + epoch), so batch b of epoch e is the
    same whether the run got there directly or was resumed at it.
    """

    def __init__(self, length: int, batch_size: int, rank: int, world_size: int, seed: int) -> None:
        self.shard = DistributedSampler(range(length), num_replicas=world_size, rank=rank,
                                        shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.batches_per_epoch = len(self.shard) // batch_size
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.shard.set_epoch(epoch)
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[int]:
        indices = list(self.shard)[: self.batches_per_epoch * self.batch_size]
        return iter(indices[self.start_batch * self.batch_size:])

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


class _ScalerState:
    """GradScaler's state for the checkpoint; empty (and ignored) when AMP is off."""

    def __init__(self, scaler) -> None:
        self.scaler = scaler

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def _grad_scaler(enabled: bool):
    """torch.amp.GradScaler('cuda') where it exists (PyTorch >= 2.3), else torch.cuda.amp's."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def build(config: TrainConfig, num_classes: int) -> tuple[MaskFaceNet, ArcFace]:
    kwargs = {"widths": tuple(config.backbone_widths)} if config.backbone_widths else {}
    backbone = get_backbone(config.backbone, embedding_size=config.embedding_size, **kwargs)
    model = MaskFaceNet(backbone, use_mfsa=config.use_mfsa, gating=config.gating)
    head = ArcFace(config.embedding_size, num_classes, s=config.margin_s, m=config.margin_m)
    return model, head


def _distributed() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) without it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 0, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world_size


def _open_run(out: str, config: TrainConfig, rank: int, distributed: bool) -> RunDir:
    """Rank 0 creates or checks the run folder first; the others only read it, or all fail."""
    run, error = None, None
    if rank == 0:
        try:
            run = RunDir(out, config)
        except ValueError as e:
            error = str(e)
    if distributed:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise ValueError(error)
    return run if run is not None else RunDir(out, config)


def train(config: TrainConfig, options: RunOptions) -> dict:
    """Trains (or continues) the run in options.out; returns {'step', 'losses', 'onnx'}."""
    config.check()
    rank, local_rank, world_size = _distributed()
    if world_size != config.world_size:
        raise ValueError(f"config.world_size is {config.world_size} but {world_size} processes run")
    if options.device is not None:
        device = torch.device(options.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    distributed = world_size > 1
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, options, rank, world_size, device, distributed)
    finally:
        if distributed:
            dist.destroy_process_group()


def _train(config: TrainConfig, options: RunOptions, rank: int, world_size: int,
           device: torch.device, distributed: bool) -> dict:
    run = _open_run(options.out, config, rank, distributed)
    faces = open_faces(config.data, resize=config.resize)
    data = MaskedFaces(faces, config.mask_probability, config.seed, ARCFACE_MEAN, ARCFACE_STD,
                       hflip=config.hflip)
    sampler = ResumableSampler(len(data), config.batch_size, rank, world_size, config.seed)
    if sampler.batches_per_epoch == 0:
        raise ValueError(f"{config.data} has {len(data)} images: too few for {world_size} x "
                         f"{config.batch_size} per step")
    loader = DataLoader(data, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                        num_workers=options.workers, pin_memory=device.type == "cuda",
                        generator=torch.Generator())  # keeps the loader off the global RNG

    seed_everything(config.seed)
    model, head = build(config, faces.num_classes)
    model.to(device)
    head.to(device)
    step_module = TrainStep(model, head, config.lambda_region)
    parameters = [p for p in step_module.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    amp = config.amp and device.type == "cuda"
    scaler = _grad_scaler(amp)
    state = dict(model=model, head=head, optimizer=optimizer, scheduler=scheduler,
                 scaler=_ScalerState(scaler))
    step = run.resume(**state)
    forward = step_module
    if distributed:
        forward = DistributedDataParallel(step_module, device_ids=[device.index] if device.type == "cuda" else None)

    writer = rank == 0
    progress = Progress(config.steps, start=step, label=config.name, every=options.log_every) \
        if writer and options.progress else None
    if writer and step:
        print(f"{run.path}: resuming at step {step}/{config.steps}", file=sys.stderr)
    last: dict[str, float] = {}
    running, count = torch.zeros(3, device=device), 0  # loss sums since the last log line
    end = config.steps if options.stop_at is None else min(config.steps, options.stop_at)
    started = time.monotonic()
    model.train()
    head.train()
    while step < end:
        epoch, start_batch = divmod(step, sampler.batches_per_epoch)
        sampler.set_epoch(epoch, start_batch)
        data.set_epoch(epoch)
        for images, regions, labels in loader:
            lr = optimizer.param_groups[0]["lr"]
            images = images.to(device, non_blocking=True)
            regions = regions.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp):
                total, arcface, region = forward(images, regions, labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            if config.clip_grad > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(parameters, config.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            running += torch.stack([arcface.detach(), region.detach(), total.detach()]).float()
            count += 1

            if step % options.log_every == 0 or step == end:
                losses, running, count = running / count, torch.zeros_like(running), 0
                if distributed:
                    dist.all_reduce(losses)
                    losses /= world_size
                arcface_value, region_value, total_value = losses.tolist()
                if not math.isfinite(total_value):
                    raise FloatingPointError(f"loss is {total_value} at step {step}: lower --lr")
                last = dict(arcface=arcface_value, region=region_value, total=total_value, lr=lr)
                if writer:
                    run.log(step, **last, seconds=time.monotonic() - started)
            if writer and (step % options.save_every == 0 or step == end):
                run.save(step, **state)
            if progress is not None:
                progress.update(step, **{k: last[k] for k in ("arcface", "region", "lr") if k in last})
            if step >= end:
                break

    onnx_path = None
    if writer and step >= config.steps:
        onnx_path = run.path / "model.onnx"
        exported = copy.deepcopy(model).cpu().float().eval()
        export_onnx(exported, onnx_path, ModelCard(name=config.name, version=options.model_version))
    return {"step": step, "losses": last, "onnx": onnx_path}


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainConfig, RunOptions]:
    defaults = TrainConfig(data="")
    options_defaults = RunOptions(out="")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="image folder, .rec file, or folder with train.rec/.idx")
    p.add_argument("--out", required=True, help="run folder; rerunning with the same folder resumes")
    p.add_argument("--backbone", default=defaults.backbone, help="r18, r34, r50, r100 or mobilefacenet")
    p.add_argument("--backbone-widths", default=None,
                   help="IResNet stage widths, e.g. 16,32,64,128 for small experiments (default 64,128,256,512)")
    p.add_argument("--name", default=defaults.name, help="model name written into the ONNX metadata")
    p.add_argument("--model-version", default=options_defaults.model_version)
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--momentum", type=float, default=defaults.momentum)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    p.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    p.add_argument("--lambda-region", type=float, default=defaults.lambda_region, help="0: no region loss")
    p.add_argument("--mask-probability", type=float, default=defaults.mask_probability)
    p.add_argument("--no-mfsa", action="store_true", help="plain backbone (ablation; needs --lambda-region 0)")
    p.add_argument("--gating", choices=GATINGS, default=defaults.gating)
    p.add_argument("--no-hflip", action="store_true")
    p.add_argument("--clip-grad", type=float, default=defaults.clip_grad, help="max gradient norm, 0: off")
    p.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    p.add_argument("--resize", action="store_true", help="scale images that are not 112x112")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=None, help="default: this rank's GPU, else cpu")
    p.add_argument("--workers", type=int, default=options_defaults.workers)
    p.add_argument("--log-every", type=int, default=options_defaults.log_every)
    p.add_argument("--save-every", type=int, default=options_defaults.save_every)
    p.add_argument("--stop-at", type=int, default=None, help="stop after this step with a checkpoint")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    config = TrainConfig(
        data=str(Path(a.data).resolve()), backbone=a.backbone,
        backbone_widths=[int(w) for w in a.backbone_widths.split(",")] if a.backbone_widths else None,
        name=a.name, steps=a.steps,
        batch_size=a.batch_size, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay,
        schedule=a.schedule, warmup_steps=a.warmup_steps, lambda_region=a.lambda_region,
        mask_probability=a.mask_probability, use_mfsa=not a.no_mfsa, gating=a.gating,
        hflip=not a.no_hflip, clip_grad=a.clip_grad, amp=not a.no_amp, resize=a.resize, seed=a.seed,
        world_size=int(os.environ.get("WORLD_SIZE", "1")))
    options = RunOptions(out=a.out, device=a.device, workers=a.workers, log_every=a.log_every,
                         save_every=a.save_every, stop_at=a.stop_at, model_version=a.model_version,
                         progress=not a.no_progress)
    return config, options


def main(argv: Sequence[str] | None = None) -> None:
    config, options = parse_args(argv)
    result = train(config, options)
    if int(os.environ.get("RANK", "0")) == 0:
        done = f"; exported {result['onnx']}" if result["onnx"] else ""
        print(f"step {result['step']}/{config.steps}{done}", file=sys.stderr)


if __name__ == "__main__":
    main()
