"""metarl: model-agnostic meta-learning for reinforcement learning."""

from metarl.version import __version__

__all__ = ["__version__"]
