"""The real MNIST files of DIGITREC_DATA_DIR (../shared/data in CI) verify against the official
checksums and hold the official arrays."""

import numpy as np
import pytest

from digitrec.data import mnist


@pytest.mark.realdata
def test_real_mnist_verifies(real_data_dir):
    arrays = mnist.load_mnist(real_data_dir, download=False)
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert arrays["test_labels"].shape == (10000,)
    assert np.bincount(arrays["test_labels"]).tolist()[:2] == [980, 1135]
