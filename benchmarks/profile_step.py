"""Where a training step's time goes: per-layer forward and backward times of a config's model.

    .venv/bin/python benchmarks/profile_step.py configs/cifar10_fast.yaml
    .venv/bin/python benchmarks/profile_step.py configs/cifar10_cnn.yaml --batch 64 --steps 20

Builds the model of the config (random input of the config's image shape, random labels; no
data set is loaded; with ``--data``, the config's data set and its first training batches,
augmented as in training), runs ``--warmup`` steps, then times ``--steps`` training steps layer by
layer (forward, backward, and the optimizer update as a whole) and prints the median of each
in milliseconds with its share of the step, and the minor page faults each took (memory the
kernel had to map in: a large count means a buffer came fresh from the OS that step). Ours only; ``bench_layers.py`` compares with
PyTorch. The layer timings sum to slightly more than an untimed step (the timer calls).
``--epoch E`` applies the config's ``freeze`` callbacks as at the start of epoch ``E`` (airbench's
whitening bias trains for the first epochs only, and a frozen first layer shortens the backward pass).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from _common import ROOT  # noqa: F401  (puts the working tree first on sys.path)

import numpy as np

from neural_networks.functional import allocator
from neural_networks import functional as F
from neural_networks.callbacks import CALLBACKS, FreezeParameters, initialize_callback
from neural_networks.experiments import apply_overrides, load_config
from neural_networks.experiments import build_dataset, build_model

IMAGE_SHAPES = {"cifar10": (32, 32, 3), "fashion_mnist": (28, 28, 1), "iris": (4,)}


def profile(model, batches, steps: int, warmup: int) -> list[tuple[str, list[tuple]]]:
    """Time every layer's forward and backward, and the update, over ``steps`` steps, one
    ``(X, Y)`` of ``batches`` each: ``[(what, [(milliseconds, minor page faults) per step]), ...]``."""
    names = [f"{i:2d} {layer.name}" for i, layer in enumerate(model.layers)]
    rows: dict[str, list[float]] = {}
    for step, (X, Y) in zip(range(warmup + steps), batches):
        with model.parallel_region():  # as NeuralNetwork.train_step runs a step
            times = _profile_step(model, names, X, Y)
        if step >= warmup:
            for key, seconds, faults in times:
                rows.setdefault(key, []).append((seconds * 1e3, faults))
    return list(rows.items())


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _profile_step(model, names, X, Y) -> list[tuple[str, float, int]]:
    """One training step, layer by layer: ``[(what, seconds, minor page faults), ...]``."""
    times = []
    A = X
    for name, layer in zip(names, model.layers):
        start, faults = time.perf_counter(), _faults()
        A = layer.forward(A)
        times.append((f"{name} forward", time.perf_counter() - start, _faults() - faults))
    model._last_output = A
    # The fused softmax + cross-entropy gradient, as NeuralNetwork.backward computes it.
    start, faults = time.perf_counter(), _faults()
    last = model.layers[-1]
    loss, dZ, _ = F.softmax_cross_entropy(last.preactivation(), model.loss.targets(Y.astype(A.dtype)))
    dA = last.backward_preactivation(dZ)
    times.append((f"{names[-1]} backward (fused softmax-CE)", time.perf_counter() - start, _faults() - faults))
    # As NeuralNetwork.backward: a frozen prefix gets no backward pass, and the first trained
    # layer after it skips its input gradient.
    stop = model._first_trained_layer()
    first = model.layers[stop] if stop > 0 else None
    saved = first.input_gradient if first is not None else None
    if first is not None:
        first.input_gradient = False
    for name, layer in zip(reversed(names[stop:-1]), reversed(model.layers[stop:-1])):
        start, faults = time.perf_counter(), _faults()
        dA = layer.backward(dA)
        times.append((f"{name} backward", time.perf_counter() - start, _faults() - faults))
    if first is not None:
        first.input_gradient = saved
    start, faults = time.perf_counter(), _faults()
    model.update(0.5)
    times.append(("update", time.perf_counter() - start, _faults() - faults))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--data", action="store_true", help="the config's data set instead of random input")
    parser.add_argument("--epoch", type=int, default=0, help="apply the config's freeze callbacks as at this epoch")
    args = parser.parse_args(argv)

    config = apply_overrides(load_config(args.config), args.set)
    if args.batch:
        config["data"]["batch_size"] = args.batch
    batch = config["data"].get("batch_size", 128)
    allocator.apply_default()  # as training does
    model = build_model(config)
    if args.data:
        dataset = build_dataset(config)
        model.size_output_layer(dataset)
        model.fit_to_data(dataset.train)  # data-dependent initialisation (patch whitening), as fit does
        batches = iter(dataset.train)
        if len(dataset.train) < args.warmup + args.steps:
            parser.error(f"the training split has {len(dataset.train)} batches; fewer steps, please")
    else:
        shape = IMAGE_SHAPES.get(config["data"]["name"])
        if shape is None:
            parser.error(f"unknown image shape for data set {config['data']['name']!r}")
        rng = np.random.default_rng(0)
        X = rng.standard_normal((batch, *shape)).astype(np.float32)
        n_classes = model.layers[-1].n_out
        Y = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, batch)]
        model.fit_to_data([(X, Y)])
        batches = iter(lambda: (X, Y), None)
    for entry in config.get("callbacks") or ():
        entry = dict(entry)
        name = CALLBACKS.canonical(entry.pop("name"))
        if name != "freeze":
            continue
        callback = initialize_callback(name, **entry)
        if isinstance(callback, FreezeParameters):
            callback.set_model(model)
            callback.on_epoch_begin(args.epoch)
    model.train_mode(True)
    rows = profile(model, batches, args.steps, args.warmup)
    medians = [
        (key, statistics.median(ms for ms, _ in values), statistics.median(f for _, f in values))
        for key, values in rows
    ]
    total = sum(ms for _, ms, _ in medians)
    source = "the data set's batches" if args.data else "random input"
    print(
        f"{args.config}: batch {batch}, {source}, epoch {args.epoch}, median of {args.steps} steps, total {total:.1f} ms"
    )
    print(f"  {'':<45s} {'time':>11s}  {'share':>7s}  {'page faults':>11s}")
    for key, ms, faults in medians:
        print(f"  {key:<45s} {ms:8.2f} ms  {100 * ms / total:5.1f} %  {faults:11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
