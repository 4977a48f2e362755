"""The digits demo's data: scikit-learn's 8x8 digits, split as the demo's training used it.

`python examples/digits/data.py` (numpy and scikit-learn only, no torch) writes
`calibration.npy`: the first CALIBRATION_COUNT training images, the representative inputs that
`nnblob convert --dtype int8 --calibrate` chooses int8 ranges from. Never test images: the int8
accuracy is measured on the held-out set. `train.py` writes it too, beside the model.
"""

import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
TEST_FRACTION = 0.25
CALIBRATION_COUNT = 256


def load_split():
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    return train_test_split(images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SEED)


def save_calibration(train_images):
    np.save(os.path.join(HERE, "calibration.npy"), train_images[:CALIBRATION_COUNT].astype(np.float32))


if __name__ == "__main__":
    save_calibration(load_split()[0])
