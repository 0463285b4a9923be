#!/usr/bin/env python3
"""Writes tests/fixtures/fashion_test_1000.safetensors, the demo-model test's classifier and its check set:

- `images` uint8 [1000, 28, 28] and `labels` uint8 [1000]: 100 held-out Fashion-MNIST test images per class (the first
  of each class in the 10,000-image test set; the demo model never saw the test set in training);
- `weight` f32 [10, 784] and `bias` f32 [10]: a softmax-regression classifier on pixels in [0, 1], fitted (L-BFGS,
  cross-entropy + 1e-3 |W|^2) on the other 9,000 test images. It is deterministic (no random initialisation).

The test classifies generated images with `argmax(weight @ x + bias)` and reports the classifier's accuracy on the
1,000 real images beside it (about 84%; 5-nearest neighbours among the 1,000 images reach only ~76%).
Usage: python tools/make_demo_eval.py [--out tests/fixtures]
"""
import argparse
import gzip
import os

import numpy as np
import torch
from safetensors.torch import save_file

DATA = "/usr/share/datasets/fashion-mnist"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args()
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    idx = np.concatenate([np.nonzero(labels == c)[0][:100] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(labels)), idx)

    torch.set_default_dtype(torch.float64)
    x = torch.from_numpy(images[rest].reshape(-1, 784) / 255.0)
    y = torch.from_numpy(labels[rest].astype(np.int64))
    w = torch.zeros(10, 784, requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 1e-3 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    check = torch.from_numpy(images[idx].reshape(-1, 784) / 255.0)
    acc = ((check @ w.T + b).argmax(1).numpy() == labels[idx]).mean()
    save_file(
        {
            "images": torch.from_numpy(images[idx].copy()),
            "labels": torch.from_numpy(labels[idx].copy()),
            "weight": w.detach().float().contiguous(),
            "bias": b.detach().float().contiguous(),
        },
        os.path.join(args.out, "fashion_test_1000.safetensors"),
    )
    print(f"wrote {len(idx)} images and a classifier fitted on {len(rest)} others: {100 * acc:.1f}% on the 1,000")


if __name__ == "__main__":
    main()
