"""MIAD reproducibility bundle: render the dataset, train the methods, rebuild the paper's tables."""

__version__ = "0.1.0"
