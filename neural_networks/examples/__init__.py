"""Runnable examples: ``python -m neural_networks.examples.<name>``."""
