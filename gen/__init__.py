"""coordgen: generative models with switchable CoordConv layers."""

__version__ = "0.1.0"
