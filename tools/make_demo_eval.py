#!/usr/bin/env python3
"""Writes tests/fixtures/fashion_test_1000.safetensors: 1,000 held-out Fashion-MNIST test images (100 per class,
the first of each class in the 10,000-image test set, which the demo model never saw in training) as uint8
[1000, 28, 28] with their labels. The demo-model test classifies generated images by nearest neighbours among them.
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
    save_file({"images": torch.from_numpy(images[idx].copy()), "labels": torch.from_numpy(labels[idx].copy())},
              os.path.join(args.out, "fashion_test_1000.safetensors"))
    print(f"wrote {len(idx)} images")


if __name__ == "__main__":
    main()
