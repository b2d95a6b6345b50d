"""neural_networks: a neural-network library in plain NumPy.

The spec's modules are importable directly (``from neural_networks.layers import Conv2D``);
the most used names are re-exported here.

Importing the package changes no process-wide setting. What makes training fast is turned on
where it is used (the docs' Design choices, "Threads and process-wide settings"): the training loop keeps freed
memory for reuse (:mod:`neural_networks.functional.allocator`), and steps with convolutions limit BLAS
threads and pin their batch threads only while they run (:mod:`neural_networks.functional.parallel`).
"""

from .activations import GELU, ArcTan, Linear, ReLU, Sigmoid, SoftMax, TanH, initialize_activation
from .functional import get_kernels, kernels, set_kernels
from .layers import BatchNorm, Conv2D, Dropout, Flatten, FullyConnected, Pool2D, initialize_layer
from .losses import L2, CrossEntropy, initialize_loss
from .models import NeuralNetwork, initialize_model
from .muon import Muon
from .optimizers import SGD, Adam, AdamW, initialize_optimizer
from .weights import initialize_weights

# Modules that plug themselves into lower ones, which never import them: the fit loop behind
# NeuralNetwork.train, and the TensorBoard callback's entry in the callback registry.
from . import tensorboard, training  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "Linear",
    "Sigmoid",
    "TanH",
    "ArcTan",
    "ReLU",
    "SoftMax",
    "GELU",
    "initialize_activation",
    "FullyConnected",
    "Conv2D",
    "Pool2D",
    "Flatten",
    "BatchNorm",
    "Dropout",
    "initialize_layer",
    "CrossEntropy",
    "L2",
    "initialize_loss",
    "NeuralNetwork",
    "initialize_model",
    "SGD",
    "Adam",
    "AdamW",
    "Muon",
    "initialize_optimizer",
    "initialize_weights",
    "set_kernels",
    "kernels",
    "get_kernels",
]
