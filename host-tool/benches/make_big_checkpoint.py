#!/usr/bin/env python3
"""Write the benchmark checkpoint: torchvision's VGG-16 (random init) state_dict, saved by torch.save.

Needs `pip install torch torchvision`. The file (about 528 MB) goes to tests/fixtures/local/, which is
not committed. Usage: python3 host-tool/benches/make_big_checkpoint.py [OUT]
"""

import pathlib
import sys

import torch
import torchvision

ROOT = pathlib.Path(__file__).resolve().parents[2]
out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/fixtures/local/vgg16.pth"
out.parent.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
model = torchvision.models.vgg16(weights=None)
torch.save(model.state_dict(), out)
print(f"{out}: {out.stat().st_size} bytes")
