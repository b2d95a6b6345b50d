"""The course's section-5 job in its starter style: a two-layer network on Iris.

    python train_ffnn.py [--lr 0.05] [--hidden 32] [--epochs 100] [--save-dir experiments/]

Builds the network from attribute dictionaries, logs the run with ``Logger(model_name=...)`` to
``experiments/<model_name>/`` (metrics, parameter ranges, checkpoints and the loss, accuracy,
error and parameter plots), trains it and prints the test accuracy. The output layer's ``n_out``
is left to the data set (Iris: 3 classes). For the learning rate x hidden size sweep the spec asks
for, run it with several values, or see ``python -m neural_networks.examples.iris``.
"""

import argparse

import numpy as np

from neural_networks.datasets import initialize_dataset
from neural_networks.logs import Logger
from neural_networks.models import initialize_model
from neural_networks.utils import AttrDict

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05)")
parser.add_argument("--hidden", type=int, default=32, help="hidden layer size (default 32)")
parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
parser.add_argument("--save-dir", default="experiments/", help="parent folder of the run folder")
args = parser.parse_args()

# Step 1: the layers, each an attribute dictionary of initialize_layer's arguments.
fc1 = AttrDict({"name": "fully_connected", "activation": "relu", "weight_init": "xavier_uniform", "n_out": args.hidden})
fc_out = AttrDict(
    {"name": "fully_connected", "activation": "softmax", "weight_init": "xavier_uniform", "n_out": None}
)  # None: the number of classes comes from the data set
layer_args = [fc1, fc_out]

# Step 2: optimizer, model, data and logger arguments.
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
    {
        "name": "feed_forward",
        "loss": "cross_entropy",
        "layer_args": layer_args,
        "optimizer_args": optimizer_args,
        "seed": 0,
    }
)
data_args = AttrDict({"name": "iris", "batch_size": 25})
log_args = AttrDict({"save": True, "plot": True, "save_dir": args.save_dir})

# Step 3: seed NumPy's global state (layers built without a seed draw their weights from it).
np.random.seed(model_args.seed)

# Step 4: a model name that says what was run, then logger, model and data set.
model_name = f"ffnn_iris_lr{optimizer_args.lr}_h{fc1.n_out}"
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
dataset = initialize_dataset(name=data_args.name, batch_size=data_args.batch_size)

# Step 5: train and test.
print(
    f"Training {model_name}: {model_args.name} network on {data_args.name} with {optimizer_args.name} "
    f"for {args.epochs} epochs"
)
model.train(dataset, epochs=args.epochs)
results = model.test(dataset)
print(
    f"test accuracy {results['accuracy']:.4f}  test error {results['error']:.4f}  test loss {results['loss']:.4f}"
    f"  -> {logger.save_dir}"
)
