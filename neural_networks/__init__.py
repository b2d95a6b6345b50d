"""neural_networks: a neural-network library in plain NumPy.

The spec's modules are importable directly (``from neural_networks.layers import Conv2D``);
the most used names are re-exported here.

Importing the package raises glibc's malloc thresholds so that freed arrays are reused
between training steps (:mod:`neural_networks.allocator`; ``NEURAL_NETWORKS_MALLOC=system`` opts out).
"""

from . import allocator as _allocator

_allocator.apply_default()  # keep freed arrays for reuse between steps (see allocator.py)

from .activations import ArcTan, Linear, ReLU, Sigmoid, SoftMax, TanH, initialize_activation
from .layers import Conv2D, Flatten, FullyConnected, Pool2D, initialize_layer
from .losses import L2, CrossEntropy, initialize_loss
from .models import NeuralNetwork, initialize_model
from .optimizers import SGD, initialize_optimizer
from .weights import initialize_weights

__version__ = "0.1.0"

__all__ = [
    "Linear", "Sigmoid", "TanH", "ArcTan", "ReLU", "SoftMax", "initialize_activation",
    "FullyConnected", "Conv2D", "Pool2D", "Flatten", "initialize_layer",
    "CrossEntropy", "L2", "initialize_loss",
    "NeuralNetwork", "initialize_model",
    "SGD", "initialize_optimizer",
    "initialize_weights",
]
