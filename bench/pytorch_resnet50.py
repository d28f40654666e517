#!/usr/bin/env python3
"""PyTorch reference for `npm run bench` (bench/engine.ts): ResNet-50 forward and one training step.

The network mirrors dermtl's (src/models/resnet.ts + heads.ts): Keras ResNet50 v1 layout with every BatchNorm
folded into its conv (conv with bias, no BN), stride 2 on the 1x1 branch2a / branch1 convs of res3a/4a/5a, a
multi-label lesion head (P sigmoid outputs, eq. 5) and a single-label location head (Q softmax outputs, eq. 7);
SGD momentum 0.9, weight decay 1e-4 on weights only, head lr x10 (weights) / x20 (biases), as dermtl's Trainer.
torchvision is not needed (Debian's python3-torch ships without it).

  python3 bench/pytorch_resnet50.py --mode forward|train --batch 20 --threads 2 --warmup 2 --runs 5 \
      [--memory-format contiguous|channels_last]

channels_last (NHWC) is oneDNN's preferred CPU layout and often much faster than the default NCHW on CPU, so
the benchmark runs both and compares against the faster.

Prints one JSON object on the last line of stdout: per-run milliseconds, the median per image, peak RSS (MB).
Run each mode in its own process so the peak RSS is that mode's own.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    """1x1 (stride s) -> 3x3 -> 1x1 x4, ReLU between; projection shortcut when the shape changes."""

    def __init__(self, cin, width, stride, project):
        super().__init__()
        self.a = nn.Conv2d(cin, width, 1, stride)
        self.b = nn.Conv2d(width, width, 3, 1, 1)
        self.c = nn.Conv2d(width, width * 4, 1)
        self.short = nn.Conv2d(cin, width * 4, 1, stride) if project else None

    def forward(self, x):
        y = self.c(F.relu(self.b(F.relu(self.a(x)))))
        return F.relu(y + (self.short(x) if self.short is not None else x))


class ResNet50Mtl(nn.Module):
    def __init__(self, lesion, location):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        blocks, cin = [], 64
        for stage, (width, count) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
            for i in range(count):
                stride = 2 if i == 0 and stage > 0 else 1
                blocks.append(Bottleneck(cin, width, stride, project=i == 0))
                cin = width * 4
        self.blocks = nn.Sequential(*blocks)
        self.lesion = nn.Linear(2048, lesion)
        self.location = nn.Linear(2048, location)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, 1)
        f = torch.flatten(F.adaptive_avg_pool2d(self.blocks(x), 1), 1)
        return self.lesion(f), self.location(f)


def losses(model, batch):
    lesion_logits, location_logits = model(batch["image"])
    n = lesion_logits.shape[0]
    bce = F.binary_cross_entropy_with_logits(lesion_logits, batch["lesion_targets"], reduction="none").sum(1)
    ce = F.cross_entropy(location_logits, batch["location_targets"], reduction="none")
    return (bce * batch["lesion_weights"]).sum() / n + (ce * batch["location_weights"]).sum() / n


def optimizer(model, lr):
    """Caffe fine-tuning multipliers as dermtl's Trainer: head weights lr x10, head biases x20, no decay on biases."""
    groups = {}
    for name, p in model.named_parameters():
        head = name.startswith(("lesion.", "location."))
        bias = p.dim() == 1
        key = (20 if head and bias else 10 if head else 1, 0.0 if bias else 1e-4)
        groups.setdefault(key, []).append(p)
    return torch.optim.SGD(
        [{"params": ps, "lr": lr * m, "weight_decay": wd} for (m, wd), ps in groups.items()], lr=lr, momentum=0.9
    )


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["forward", "train"], required=True)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lesion", type=int, default=24)
    ap.add_argument("--location", type=int, default=9)
    ap.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="contiguous")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    model = ResNet50Mtl(a.lesion, a.location)
    n = a.batch
    batch = {
        "image": torch.randn(n, 3, a.size, a.size) * 58,
        "lesion_targets": (torch.rand(n, a.lesion) < 0.3).float(),
        "lesion_weights": torch.ones(n),
        "location_targets": torch.randint(0, a.location, (n,)),
        "location_weights": torch.ones(n),
    }
    if a.memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)

    if a.mode == "forward":
        model.eval()

        def step():
            with torch.inference_mode():
                model(batch["image"])
    else:
        model.train()
        opt = optimizer(model, 1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = losses(model, batch)
            loss.backward()
            opt.step()

    ms = timed(step, a.warmup, a.runs)
    print(json.dumps({
        "mode": a.mode,
        "memory_format": a.memory_format,
        "batch": n,
        "threads": torch.get_num_threads(),
        "warmup": a.warmup,
        "ms": ms,
        "median_ms_per_image": statistics.median(ms) / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
