#!/usr/bin/env python3
"""Train the demo CNN on scikit-learn's handwritten digits and write everything `nnblob demo` needs.

Data: `sklearn.datasets.load_digits` (1797 images, 8x8, values 0..16, scaled here to 0..1), split with a
fixed seed into a stratified training set and a 25% held-out test set. Training is seeded and runs on one
CPU thread in a few seconds.

Writes, next to this script:
    digits.pth          torch.save(model.state_dict()) of the trained model
    digits.onnx         torch.onnx.export, opset 17, batch 1, input `input`, output `output`
                        (BatchNormalization kept), checked against onnxruntime
    test_images.npy     float32 (N, 1, 8, 8), the held-out images
    test_labels.npy     int64 (N,), their labels
    torch_outputs.npy   float32 (N, 10), logits of the eval-mode model, each image run alone (batch 1)
    metrics.json        test accuracy of PyTorch (and onnxruntime), N, seed, epochs, versions

Usage: python3 examples/digits/train.py   (needs: pip install torch onnx onnxruntime scikit-learn)
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "fixtures"))
from make_model_fixtures import export_onnx, run_onnxruntime  # noqa: E402
from data import SEED, TEST_FRACTION, load_split, save_calibration  # noqa: E402
from model import DigitsCNN  # noqa: E402

EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 3e-3


def train(model, images, labels):
    gen = torch.Generator().manual_seed(SEED)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
        scheduler.step()
    return model.eval()


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    train_images, test_images, train_labels, test_labels = load_split()
    model = train(DigitsCNN(), train_images, train_labels)

    torch.save(model.state_dict(), os.path.join(HERE, "digits.pth"))
    with torch.no_grad():
        outputs = torch.cat([model(torch.from_numpy(x[None])) for x in test_images]).numpy()
    accuracy = float((outputs.argmax(axis=1) == test_labels).mean())

    onnx_path = os.path.join(HERE, "digits.onnx")
    num_batchnorm = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    ops = export_onnx(model, torch.from_numpy(test_images[:1]), onnx_path, num_batchnorm)
    ort_outputs = run_onnxruntime(onnx_path, test_images)
    ort_diff = float(np.abs(ort_outputs - outputs).max())
    assert ort_diff <= 1e-4 * max(float(np.abs(outputs).max()), 1.0), f"onnxruntime differs by {ort_diff}"

    save_calibration(train_images)
    np.save(os.path.join(HERE, "test_images.npy"), test_images.astype(np.float32))
    np.save(os.path.join(HERE, "test_labels.npy"), test_labels.astype(np.int64))
    np.save(os.path.join(HERE, "torch_outputs.npy"), outputs.astype(np.float32))
    metrics = {
        "dataset": "sklearn.datasets.load_digits, 8x8, pixel values / 16",
        "test_fraction": TEST_FRACTION,
        "train_count": len(train_labels),
        "test_count": len(test_labels),
        "seed": SEED,
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "optimizer": f"Adam lr {LEARNING_RATE}, cosine schedule",
        "torch_accuracy": accuracy,
        "onnxruntime_accuracy": float((ort_outputs.argmax(axis=1) == test_labels).mean()),
        "onnxruntime_vs_torch_max_abs_diff": ort_diff,
        "min_top1_margin": float(np.diff(np.sort(outputs, axis=1)[:, -2:], axis=1).min()),
        "onnx_ops": ops,
        "params": sum(p.numel() for p in model.parameters()),
        "torch_version": torch.__version__,
    }
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    print(f"test accuracy {accuracy:.4f} on {len(test_labels)} images; onnxruntime vs torch {ort_diff:.2e}")


if __name__ == "__main__":
    main()
