"""A whole training epoch of a config: through this library's command line, and the same recipe in
PyTorch CPU, fed by the same loader in the same batch order.

    .venv/bin/python benchmarks/torch_reference.py configs/cifar10_cnn.yaml [--epochs 1] [--rounds 1]
        [--threads K] [--set key=value ...] [--json PATH]

Ours: ``python -m neural_networks train CONFIG --epochs E`` in a child process (what a user runs);
the epoch time is the ``seconds`` column of the run's ``metrics.csv`` (the training batches plus
the per-epoch validation, as the fit loop times them; not the data set's loading, nor the final
figures and plots after the last epoch).

PyTorch: the network of the config translated by ``tests/torch_oracles.py`` (``torch_network``,
starting from our initial weights through ``copy_weights``), ``torch.optim`` SGD (momentum,
Nesterov, weight decay on the weights) or Adam/AdamW, the learning rate set before every step
from the config's own schedule, ``F.cross_entropy`` with the config's label smoothing. Batches
come from this library's loader, seeded per epoch as the fit loop seeds it (the same images,
augmentation and order), converted to NCHW tensors; after each epoch the validation split is
evaluated under ``torch.no_grad()`` in eval mode, as ours is. Both sides use the same number of
threads. ``--rounds R`` alternates the two sides R times (ours first) and reports each side's
median and spread.

The two sides run the same computation but not the same bits (torch's SGD keeps the learning rate
out of its velocity, dropout masks differ), so the epoch's loss and validation accuracy are
printed side by side as a check, not compared exactly.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C  # first: puts the repository root on sys.path
import numpy as np

from tests import torch_oracles as O


def our_epochs(config_path: str, overrides: list[str], epochs: int, threads: int) -> tuple[list[float], dict]:
    """Train through the CLI in a child process; ``(seconds per epoch, last epoch's metrics)``."""
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "neural_networks", "train", config_path, "--epochs", str(epochs)]
        args += ["--out", out, "--quiet", "--set", "name=bench"] + [a for o in overrides for a in ("--set", o)]
        env = {**os.environ, "NEURAL_NETWORKS_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
        subprocess.run(args, cwd=C.ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(Path(out) / "bench" / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
    return [float(r["seconds"]) for r in rows], {k: _figure(rows[-1][k]) for k in ("loss", "val_accuracy")}


def _figure(cell: str) -> str:
    return f"{float(cell):.4f}" if cell not in ("", None) else "-"  # no validation split: no accuracy


def _torch_optimizer(torch, model, net, optimizer):
    """The ``torch.optim`` counterpart of our optimizer, weight decay on the weights only (our
    default parameter groups: conv and dense weights decay; biases and batch norm do not)."""
    decay, no_decay = [], []
    for _, layer, module in O._stateful_pairs(model, net):
        group = no_decay if isinstance(layer, O.BatchNorm) else decay
        group.append(module.weight)
        if module.bias is not None:
            no_decay.append(module.bias)
    wd = getattr(optimizer, "weight_decay", 0.0)
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    lr = optimizer.lr_scheduler(0)
    if optimizer.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optimizer.momentum, nesterov=optimizer.nesterov)
    if optimizer.name in ("adam", "adamw"):
        cls = torch.optim.Adam if optimizer.name == "adam" else torch.optim.AdamW
        return cls(groups, lr=lr, betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps)
    raise SystemExit(f"no torch counterpart for optimizer {optimizer.name!r}")


def torch_epochs(config: dict, epochs: int, torch) -> tuple[list[float], dict]:
    """Train the config's recipe in PyTorch; ``(seconds per epoch, last epoch's metrics)``."""
    from neural_networks.experiment import build_dataset, build_model
    from neural_networks.training import _seed_epoch

    TF = torch.nn.functional
    dataset = build_dataset(config)
    model = build_model(config)
    model.size_output_layer(dataset)
    X0, _ = next(iter(dataset.train))
    model.forward(X0[:2])  # creates our parameters: the torch network starts from the same weights
    net = O.torch_network(model, input_shape=X0.shape[1:])
    O.copy_weights(model, net)
    optimizer = _torch_optimizer(torch, model, net, model.optimizer)
    smoothing = getattr(model.loss, "label_smoothing", 0.0)
    schedule = model.optimizer.lr_scheduler

    def tensors(X, Y):
        x = torch.from_numpy(X).permute(0, 3, 1, 2).contiguous() if X.ndim == 4 else torch.from_numpy(X)
        labels = Y.argmax(axis=1) if Y.ndim == 2 else Y
        return x, torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))

    seconds, metrics = [], {}
    n_batches = max(len(dataset.train), 1)
    for epoch in range(epochs):
        _seed_epoch(model, dataset, epoch)  # the loader's shuffling and augmentation for this epoch
        net.train()
        started = time.perf_counter()
        total, count = 0.0, 0
        for b, (X, Y) in enumerate(dataset.train):
            lr = schedule(epoch + b / n_batches)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = tensors(X, Y)
            optimizer.zero_grad(set_to_none=True)
            loss = TF.cross_entropy(net(x), y, label_smoothing=smoothing)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
        net.eval()
        correct = seen = 0
        validate = getattr(dataset, "validate", None)
        with torch.no_grad():
            for X, Y in validate if validate is not None and validate.n_examples else ():
                x, y = tensors(X, Y)
                correct += int((net(x).argmax(1) == y).sum())
                seen += len(y)
        seconds.append(time.perf_counter() - started)
        metrics = {"loss": f"{total / max(count, 1):.4f}", "val_accuracy": f"{correct / seen:.4f}" if seen else "-"}
    return seconds, metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)

    from neural_networks.config import load_valid_config

    k, how, torch = C.setup_threads(args.threads)
    env = C.header(f"whole epochs of {args.config}: this library's CLI vs PyTorch CPU", k, how, torch)
    config = load_valid_config(args.config, args.set + [f"epochs={args.epochs}"])
    ours, theirs = [], []
    for _ in range(args.rounds):
        seconds, our_metrics = our_epochs(args.config, args.set, args.epochs, k)
        ours += seconds
        seconds, torch_metrics = torch_epochs(config, args.epochs, torch)
        theirs += seconds
    o, t = statistics.median(ours), statistics.median(theirs)
    C.print_table(
        ["side", "epoch s (median)", "spread", "epochs timed", "last epoch loss", "val accuracy"],
        [
            ["ours (CLI)", f"{o:.2f}", f"{C.spread(ours):.0%}", str(len(ours))] + list(our_metrics.values()),
            ["torch", f"{t:.2f}", f"{C.spread(theirs):.0%}", str(len(theirs))] + list(torch_metrics.values()),
        ],
    )
    print(f"\nratio ours/torch: {o / t:.2f}")
    if args.json:
        result = {**env, "config": args.config, "overrides": args.set, "ours_seconds": ours, "torch_seconds": theirs}
        result.update(ratio=o / t, ours_metrics=our_metrics, torch_metrics=torch_metrics)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
