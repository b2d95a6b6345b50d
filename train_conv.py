"""A small LeNet-style CNN in the course's starter style, on MNIST (or Fashion-MNIST).

    python train_conv.py [--dataset mnist|fashion_mnist] [--epochs 5] [--lr 0.05] [--save-dir experiments/]

28x28x1 images go straight to the convolutions: conv 6@5x5 (same) -> max pool 2x2 -> conv 16@5x5
(valid) -> max pool 2x2 -> flatten -> 120 -> 84 -> softmax, the output size taken from the data set.
MNIST's files are not shipped: put the four IDX files (``train-images-idx3-ubyte.gz`` ...) in
``$NEURAL_NETWORKS_DATA/mnist/`` (default ``~/.cache/neural_networks/mnist/``), or let a machine
with network access download them (checked against the published checksums). Fashion-MNIST also
comes from Debian's ``dataset-fashion-mnist`` package.
"""

import argparse

import numpy as np

from neural_networks.datasets import initialize_dataset
from neural_networks.logs import Logger
from neural_networks.models import initialize_model
from neural_networks.utils import AttrDict

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion_mnist"), help="default mnist")
parser.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
parser.add_argument(
    "--validation-size",
    type=int,
    default=None,
    help="training images held out for validation (default: the loader's, 10000)",
)
parser.add_argument("--save-dir", default="experiments/", help="parent folder of the run folder")
args = parser.parse_args()

# The layers, each an attribute dictionary of initialize_layer's arguments.
conv1 = AttrDict(
    {
        "name": "conv2d",
        "activation": "relu",
        "weight_init": "he_uniform",
        "n_out": 6,
        "kernel_shape": (5, 5),
        "stride": 1,
        "pad": "same",
    }
)
pool1 = AttrDict({"name": "pool2d", "kernel_shape": (2, 2), "mode": "max", "stride": 2})
conv2 = AttrDict(
    {
        "name": "conv2d",
        "activation": "relu",
        "weight_init": "he_uniform",
        "n_out": 16,
        "kernel_shape": (5, 5),
        "stride": 1,
        "pad": "valid",
    }
)
pool2 = AttrDict({"name": "pool2d", "kernel_shape": (2, 2), "mode": "max", "stride": 2})
flatten = AttrDict({"name": "flatten"})
fc1 = AttrDict({"name": "fully_connected", "activation": "relu", "weight_init": "he_uniform", "n_out": 120})
fc2 = AttrDict({"name": "fully_connected", "activation": "relu", "weight_init": "he_uniform", "n_out": 84})
fc_out = AttrDict(
    {"name": "fully_connected", "activation": "softmax", "weight_init": "xavier_uniform", "n_out": None}
)  # None: the number of classes comes from the data set
layer_args = [conv1, pool1, conv2, pool2, flatten, fc1, fc2, fc_out]

optimizer_args = AttrDict(
    {
        "name": "SGD",
        "lr": args.lr,
        "lr_scheduler": "constant",
        "lr_decay": 0.99,
        "stage_length": 1000,
        "staircase": True,
        "clip_norm": 1.0,
        "momentum": 0.9,
    }
)
model_args = AttrDict(
    {"name": "lenet", "loss": "cross_entropy", "layer_args": layer_args, "optimizer_args": optimizer_args, "seed": 0}
)
data_args = AttrDict({"name": args.dataset, "batch_size": args.batch_size})
if args.validation_size is not None:
    data_args.validation_size = args.validation_size
log_args = AttrDict({"save": True, "plot": True, "save_dir": args.save_dir})

np.random.seed(model_args.seed)  # layers built without a seed draw their weights from NumPy's global state

model_name = f"lenet_{args.dataset}_lr{optimizer_args.lr}_b{data_args.batch_size}"
logger = Logger(
    model_name=model_name,
    model_args=model_args,
    data_args=data_args,
    save=log_args.save,
    plot=log_args.plot,
    save_dir=log_args.save_dir,
)
model = initialize_model(
    name=model_args.name,
    loss=model_args.loss,
    layer_args=model_args.layer_args,
    optimizer_args=model_args.optimizer_args,
    logger=logger,
)
dataset = initialize_dataset(**data_args)

print(f"Training {model_name} on {data_args.name} ({dataset.n_training} training images) for {args.epochs} epochs")
model.train(dataset, epochs=args.epochs)
results = model.test(dataset)
print(
    f"test accuracy {results['accuracy']:.4f}  test error {results['error']:.4f}  test loss {results['loss']:.4f}"
    f"  -> {logger.save_dir}"
)
