"""The demo network: a small CNN for scikit-learn's 8x8 handwritten digits.

Input (N, 1, 8, 8), pixel values scaled to 0..1 -> logits (N, 10). The module names are the state_dict's
key prefixes (conv1, bn1, conv2, bn2, fc); `drop` and `pool` hold no weights.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class DigitsCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(32 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))  # (N, 16, 4, 4)
        x = self.pool(F.relu(self.bn2(self.conv2(x))))  # (N, 32, 2, 2)
        x = torch.flatten(self.drop(x), 1)
        return self.fc(x)
