"""digitrec: multi-digit number recognition (Goodfellow et al. 2014) as an experiment framework."""

import os

# albumentations asks the network for a newer version when imported (an unbounded wait offline,
# and a warning); digitrec never wants that
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
