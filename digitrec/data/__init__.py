"""Dataset code: pure numpy / h5py, testable without Lightning."""
