"""digitrec: multi-digit number recognition (Goodfellow et al. 2014) as an experiment framework."""

__version__ = "0.1.0"
