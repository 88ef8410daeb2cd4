"""Version of the c2s-denoise package."""

__version__ = "0.1.0"
