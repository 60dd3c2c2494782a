"""seedcore-boot: boots Ray 2.20.0 heads and workers that are whole, or fails loudly."""

__version__ = "0.1.0"
RAY_VERSION = "2.20.0"
