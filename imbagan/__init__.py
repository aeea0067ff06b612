"""imbagan: GANs that rebalance imbalanced image datasets, and the tools to judge them."""

__version__ = "0.1.0"
