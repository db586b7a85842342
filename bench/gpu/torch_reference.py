"""PyTorch reference timing of maskface's network on a GPU, FP32 and FP16.

This is NOT maskface: maskface runs the exported network through ONNX Runtime. It times the same
architecture as the default model (MobileFaceNet with MFSA after the 28x28, 14x14 and 7x7 stages,
gating not_mask) in PyTorch, where the ONNX Runtime GPU runtime cannot be brought (the CUDA
provider library is 229 MB). Weights are random: timing only, no accuracy.

    python3 bench/gpu/torch_reference.py [--batches 1,8,32,128,512] [--iterations 50]

Prints one line per (precision, batch): faces/s and milliseconds per batch (CUDA events, after
warm-up, cudnn.benchmark on), with the GPU and the versions.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
from maskface_train.backbones import get_backbone  # noqa: E402
from maskface_train.mfsa import MaskFaceNet  # noqa: E402


def time_batch(model: torch.nn.Module, batch: int, dtype: torch.dtype, iterations: int) -> float:
    """Milliseconds per forward pass of `batch` faces."""
    x = torch.randn(batch, 3, 112, 112, device="cuda", dtype=dtype)
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iterations):
            model(x)
        end.record()
        torch.cuda.synchronize()
    return start.elapsed_time(end) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,32,128,512")
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("torch_reference: no CUDA device visible to PyTorch; nothing timed")
        sys.exit(77)
    torch.backends.cudnn.benchmark = True
    props = torch.cuda.get_device_properties(0)
    print(f"PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{props.name} ({props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor})")
    print("reference only: PyTorch eager, random weights, same architecture as maskface-mbf-cal")
    model = MaskFaceNet(get_backbone("mobilefacenet"), use_mfsa=True, gating="not_mask").cuda().eval()
    for dtype in (torch.float32, torch.float16):
        model = model.to(dtype)
        for batch in (int(b) for b in args.batches.split(",")):
            ms = time_batch(model, batch, dtype, args.iterations)
            print(f"torch {str(dtype).replace('torch.', ''):8s} batch {batch:4d}: {ms:8.3f} ms/batch  "
                  f"{batch / ms * 1000:10.1f} faces/s")


if __name__ == "__main__":
    main()
