"""A whole training epoch of a config: through this library's command line, and the same recipe in
PyTorch CPU, fed by the same loader in the same batch order.

    .venv/bin/python benchmarks/torch_reference.py configs/cifar10_cnn.yaml [--epochs 1] [--rounds 1]
        [--threads K] [--set key=value ...] [--json PATH] [--test] [--only ours|torch]

``--epochs`` may be fractional (``3.8``: a partial last epoch, as the fit loop trains it).
With whole epochs it also reports the epoch's GFLOP in its conv and dense products (three per
training image: forward, dW, dX; one per validation image) and each side's median epoch as
GFLOP/s and as a fraction of the float32 matmul peak (numpy's 2048^3 product, best of 5).
``--test`` compares whole runs as well: each side's training time, its test accuracy with the
config's test-time augmentation (``evaluation.tta``) and without, and (with ``--only torch``)
the process's peak memory. ``--only`` runs one side, e.g. the torch side of a run already trained
through the command line.

Ours: ``python -m neural_networks train CONFIG --epochs E`` in a child process (what a user runs);
the epoch time is the ``seconds`` column of the run's ``metrics.csv`` (the training batches plus
the per-epoch validation, as the fit loop times them; not the data set's loading, nor the final
figures and plots after the last epoch).

PyTorch: the network of the config translated by ``tests/torch_oracles.py`` (``torch_network``,
starting from our initial weights through ``copy_weights``), ``torch.optim`` SGD (momentum,
Nesterov) or Adam/AdamW, or Muon written in torch as airbench94_muon writes it, with our parameter groups' options (learning-rate multiplier, weight
decay, momentum; frozen parameters left out), the learning rate set before every step from the
config's own schedule, ``F.cross_entropy`` with the config's label smoothing; patch whitening
from our initialisation, the ``freeze`` and ``lookahead`` callbacks replayed on the torch side. Batches
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


def our_epochs(config_path: str, overrides: list[str], epochs: float, threads: int) -> tuple[list[float], dict]:
    """Train through the CLI in a child process; ``(seconds per epoch, metrics)``: the last epoch's
    loss and validation accuracy, and the run's ``train_seconds``, ``test_accuracy`` and
    ``test_accuracy_no_tta`` from its ``metrics.json``."""
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "neural_networks", "train", config_path, "--epochs", str(epochs)]
        args += ["--out", out, "--quiet", "--set", "name=bench"] + [a for o in overrides for a in ("--set", o)]
        env = {**os.environ, "NEURAL_NETWORKS_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
        subprocess.run(args, cwd=C.ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(Path(out) / "bench" / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        final = json.loads((Path(out) / "bench" / "metrics.json").read_text())
    metrics = {k: _figure(rows[-1][k]) for k in ("loss", "val_accuracy")}
    for key in ("train_seconds", "test_accuracy", "test_accuracy_no_tta"):
        metrics[key] = final.get(key)
    return [float(r["seconds"]) for r in rows], metrics


def _figure(cell: str) -> str:
    return f"{float(cell):.4f}" if cell not in ("", None) else "-"  # no validation split: no accuracy


def _torch_parameters(model, net) -> list[tuple]:
    """``(our layer, our parameter name, torch tensor)`` for every parameter of the network."""
    pairs = []
    for _, layer, module in O._stateful_pairs(model, net):
        names = {"gamma": module.weight, "beta": module.bias} if isinstance(layer, O.BatchNorm) else {}
        names = names or {"W": module.weight, "b": module.bias}
        pairs += [(layer, name, names[name]) for name in layer.parameters]
    return pairs


def _torch_optimizer(torch, model, net, optimizer):
    """The ``torch.optim`` counterpart of our optimizer, with our parameter groups' options (each
    group's learning-rate multiplier, weight decay and momentum: ``group_options``); parameters
    frozen from the start (``frozen``) are left out, as ours leaves them, and do not require grad.
    Every torch group carries the ``schedule`` (ours) its learning rate follows. Muon: the filters
    it orthogonalises go to :class:`_TorchMuon`, the other parameters to its fallback's counterpart."""
    groups, muon_params = {}, []
    for layer, name, tensor in _torch_parameters(model, net):
        if name in layer.frozen:
            tensor.requires_grad_(False)
            continue
        group = layer.parameter_group(name)
        if optimizer.name == "muon" and optimizer.orthogonalizes(layer.parameters[name], group):
            muon_params.append(tensor)
        else:
            groups.setdefault(group, []).append(tensor)
    if optimizer.name == "muon":
        return _Optimizers(
            [_TorchMuon(torch, muon_params, optimizer), _torch_optimizer_of(torch, groups, optimizer.fallback)]
        )
    return _torch_optimizer_of(torch, groups, optimizer)


def _torch_optimizer_of(torch, groups: dict, optimizer):
    """``torch.optim`` SGD or Adam/AdamW over ``groups`` (our group name -> torch tensors) with
    ``optimizer``'s options."""
    torch_groups = []
    for group, params in groups.items():
        options = optimizer.group_options(group)
        torch_groups.append(
            {"params": params, "weight_decay": options["weight_decay"], "lr_multiplier": options["lr_multiplier"]}
        )
        torch_groups[-1]["schedule"] = optimizer.lr_scheduler
        if "momentum" in options:
            torch_groups[-1]["momentum"] = options["momentum"]
    lr = optimizer.lr_scheduler(0)
    if optimizer.name == "sgd":
        return torch.optim.SGD(torch_groups, lr=lr, momentum=optimizer.momentum, nesterov=optimizer.nesterov)
    if optimizer.name in ("adam", "adamw"):
        for group in torch_groups:
            group.pop("momentum", None)
        cls = torch.optim.Adam if optimizer.name == "adam" else torch.optim.AdamW
        return cls(torch_groups, lr=lr, betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps)
    raise SystemExit(f"no torch counterpart for optimizer {optimizer.name!r}")


class _TorchMuon:
    """Our Muon's step in torch, as airbench94_muon writes it (``torch.optim.Muon`` takes 2-D
    parameters only): each filter bank's gradient as the ``(c_out, c_in*kh*kw)`` matrix, whose
    orthogonal factor is ours up to an order of its columns."""

    def __init__(self, torch, params, optimizer) -> None:
        from neural_networks.optimizers import NEWTON_SCHULZ_COEFFICIENTS

        self.torch, self.opt, self.coefficients = torch, optimizer, NEWTON_SCHULZ_COEFFICIENTS
        options = optimizer.group_options("weights")
        self.param_groups = [
            {"params": params, "lr_multiplier": options["lr_multiplier"], "schedule": optimizer.lr_scheduler}
        ]
        self.momentum, self.weight_decay = options["momentum"], options["weight_decay"]
        self.buffers = {}

    def _orthogonalize(self, G):
        a, b, c = self.coefficients
        X = G / G.norm().clamp(min=1e-7)
        wide = X.size(0) <= X.size(1)
        X = X if wide else X.T
        for _ in range(self.opt.ns_steps):
            A = X @ X.T
            X = a * X + (b * A + c * A @ A) @ X
        return X if wide else X.T

    @staticmethod
    def _factor(adjust: str, A: int, B: int) -> float:
        return {"original": max(1.0, A / B) ** 0.5, "match_rms_adamw": 0.2 * max(A, B) ** 0.5}.get(adjust, 1.0)

    def zero_grad(self, set_to_none=True) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    def step(self) -> None:
        lr = self.param_groups[0]["lr"]
        with self.torch.no_grad():
            for p in self.param_groups[0]["params"]:
                if p.grad is None:
                    continue
                buf = self.buffers.setdefault(p, self.torch.zeros_like(p))
                buf.mul_(self.momentum).add_(p.grad)
                g = p.grad.add(buf, alpha=self.momentum) if self.opt.nesterov else buf
                matrix = g.reshape(len(g), -1)
                keep = 1.0 - lr * self.weight_decay
                if self.opt.normalize_weights:
                    keep *= len(p) ** 0.5 / float(p.norm())
                p.mul_(keep)
                factor = self._factor(self.opt.adjust_lr, matrix.size(0), matrix.size(1))
                p.add_(self._orthogonalize(matrix).view_as(p), alpha=-lr * factor)


class _Optimizers:
    """Several torch optimizers stepped as one (their ``param_groups`` together)."""

    def __init__(self, optimizers) -> None:
        self.optimizers = optimizers
        self.param_groups = [group for opt in optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none=True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


class _TorchCallbacks:
    """The config's callbacks that change training, on the torch side: ``freeze`` (parameters stop
    requiring grad from an epoch on) and ``lookahead`` (airbench's: slow weights every ``every``
    steps, decay ``decay * (t / T) ** 3``, the weights set to them after the last epoch).
    ``early_stopping`` and ``model_checkpoint`` change nothing within the timed epochs."""

    def __init__(self, config: dict, model, net, total_steps: int, torch) -> None:
        from neural_networks.callbacks import CALLBACKS, initialize_callback

        self.freezes, self.lookahead, self.torch = [], None, torch
        self.tensors = {(id(layer), name): tensor for layer, name, tensor in _torch_parameters(model, net)}
        self.model, self.net, self.total, self.steps = model, net, total_steps, 0
        for entry in config.get("callbacks") or ():
            entry = dict(entry)
            name = CALLBACKS.canonical(entry.pop("name"))
            if name == "freeze":
                self.freezes.append(initialize_callback(name, **entry))
            elif name == "lookahead":
                self.lookahead = initialize_callback(name, **entry)
                self.slow = {k: v.detach().clone() for k, v in net.state_dict().items() if v.is_floating_point()}
            elif name not in ("early_stopping", "model_checkpoint"):
                raise SystemExit(f"no torch counterpart for callback {name!r}")

    def epoch_begin(self, epoch: int) -> None:
        for freeze in self.freezes:
            if epoch >= freeze.epoch:
                for i in freeze.layers:
                    layer = self.model.layers[i]
                    names = layer._parameter_set(freeze.parameters)
                    for name in names:
                        self.tensors[(id(layer), name)].requires_grad_(freeze.unfreeze)

    def _pull(self, decay: float) -> None:
        with self.torch.no_grad():
            for key, value in self.net.state_dict().items():
                if key in self.slow:
                    self.slow[key].lerp_(value, 1 - decay)
                    value.copy_(self.slow[key])

    def batch_end(self) -> None:
        self.steps += 1
        look = self.lookahead
        if look is not None and self.steps % look.every == 0:
            cubic = look.schedule == "cubic"
            self._pull(look.decay * (min(1.0, self.steps / self.total) ** 3 if cubic else 1.0))

    def train_end(self) -> None:
        if self.lookahead is not None:
            self._pull(1.0)


def torch_epochs(config: dict, epochs: float, torch, test: bool = False) -> tuple[list[float], dict]:
    """Train the config's recipe in PyTorch; ``(seconds per epoch, metrics)``: the last epoch's
    loss and validation accuracy and, with ``test``, the training time and the test accuracy
    with the config's test-time augmentation and without."""
    from neural_networks.experiments import build_dataset, build_model
    from neural_networks.progress import progress_bar
    from neural_networks.training.loop import _seed_epoch, epoch_batches, epoch_count

    TF = torch.nn.functional
    dataset = build_dataset(config)
    model = build_model(config)
    model.size_output_layer(dataset)
    X0, _ = next(iter(dataset.train))
    model.forward(X0[:2])  # creates our parameters: the torch network starts from the same weights
    model.fit_to_data(dataset.train)  # patch whitening, as fit does before the first epoch
    net = O.torch_network(model, input_shape=X0.shape[1:])
    O.copy_weights(model, net)
    optimizer = _torch_optimizer(torch, model, net, model.optimizer)
    smoothing = getattr(model.loss, "label_smoothing", 0.0)

    seconds, metrics = [], {}
    n_batches = max(len(dataset.train), 1)
    counts = [epoch_batches(epochs, e, n_batches) for e in range(epoch_count(epochs))]
    callbacks = _TorchCallbacks(config, model, net, sum(counts), torch)
    for epoch, batches in enumerate(counts):
        _seed_epoch(model, dataset, epoch)  # the loader's shuffling and augmentation for this epoch
        callbacks.epoch_begin(epoch)
        net.train()
        started = time.perf_counter()
        total, count = 0.0, 0
        steps = progress_bar(
            zip(range(batches), dataset.train), total=batches, desc=f"torch epoch {epoch + 1}", leave=False
        )
        for b, (X, Y) in steps:
            for group in optimizer.param_groups:
                group["lr"] = group["schedule"](epoch + b / n_batches) * group["lr_multiplier"]
            x, y = _tensors(torch, X, Y)
            optimizer.zero_grad(set_to_none=True)
            loss = TF.cross_entropy(net(x), y, label_smoothing=smoothing)
            loss.backward()
            optimizer.step()
            callbacks.batch_end()
            total += float(loss.detach()) * len(y)
            count += len(y)
        if epoch + 1 == len(counts):
            callbacks.train_end()
        net.eval()
        validate = getattr(dataset, "validate", None)
        accuracy = _torch_accuracy(torch, net, validate) if validate is not None and validate.n_examples else None
        seconds.append(time.perf_counter() - started)
        metrics = {
            "loss": f"{total / max(count, 1):.4f}",
            "val_accuracy": "-" if accuracy is None else f"{accuracy:.4f}",
        }
    if test:
        tta = (config.get("evaluation") or {}).get("tta", "none")
        metrics["train_seconds"] = round(sum(seconds), 2)
        metrics["test_accuracy"] = _torch_accuracy(torch, net, dataset.test, tta)
        metrics["test_accuracy_no_tta"] = _torch_accuracy(torch, net, dataset.test)
    return seconds, metrics


def _tensors(torch, X, Y):
    """A batch in torch's layout: NCHW float images (or the flat rows) and integer labels."""
    x = torch.from_numpy(X).permute(0, 3, 1, 2).contiguous() if X.ndim == 4 else torch.from_numpy(X)
    labels = Y.argmax(axis=1) if Y.ndim == 2 else Y
    return x, torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))


def _torch_accuracy(torch, net, loader, tta: str = "none") -> float:
    """The fraction of ``loader``'s examples that ``net`` (in eval mode) classifies right, from
    the softmax averaged over the test-time views of ``neural_networks.tta`` with their weights,
    as ``NeuralNetwork.evaluate(tta=...)`` averages them."""
    from neural_networks.tta import tta_views

    augmenting = getattr(loader, "augmenting", False)
    loader.augmenting = False
    correct = seen = 0
    try:
        with torch.no_grad():
            for X, Y in loader:
                probabilities = 0
                for weight, view in tta_views(X, tta):
                    x, y = _tensors(torch, view, Y)
                    probabilities = probabilities + weight * torch.softmax(net(x), dim=1)
                correct += int((probabilities.argmax(1) == y).sum())
                seen += len(y)
    finally:
        loader.augmenting = augmenting
    return correct / max(seen, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--epochs", type=float, default=1, help="may be fractional: a partial last epoch")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--test", action="store_true", help="also the test accuracy and training time of each run")
    parser.add_argument("--only", choices=("ours", "torch"), help="run one side only")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)

    from neural_networks.experiments import load_valid_config
    from neural_networks.training import check_epochs

    epochs = check_epochs(int(args.epochs) if float(args.epochs).is_integer() else args.epochs)
    k, how, torch = C.setup_threads(args.threads)
    env = C.header(f"whole epochs of {args.config}: this library's CLI vs PyTorch CPU", k, how, torch)
    config = load_valid_config(args.config, args.set + [f"epochs={epochs}"])
    sides = {"ours (CLI)": ([], {}), "torch": ([], {})}
    for _ in range(args.rounds):
        if args.only != "torch":
            seconds, metrics = our_epochs(args.config, args.set, epochs, k)
            sides["ours (CLI)"][0].extend(seconds)
            sides["ours (CLI)"][1].update(metrics)
        if args.only != "ours":
            seconds, metrics = torch_epochs(config, epochs, torch, test=args.test)
            sides["torch"][0].extend(seconds)
            sides["torch"][1].update(metrics)
    sides = {name: side for name, side in sides.items() if side[0]}
    headers = ["side", "epoch s (median)", "spread", "epochs timed", "last epoch loss", "val accuracy"]
    if args.test:
        headers += ["train s (last run)", "test (TTA)", "test (no TTA)"]
    rows = []
    for name, (seconds, metrics) in sides.items():
        row = [name, f"{statistics.median(seconds):.2f}", f"{C.spread(seconds):.0%}", str(len(seconds))]
        row += [metrics["loss"], metrics["val_accuracy"]]
        if args.test:
            row += [_cell(metrics.get("train_seconds"), "{:.1f}"), _cell(metrics.get("test_accuracy"), "{:.2%}")]
            row.append(_cell(metrics.get("test_accuracy_no_tta"), "{:.2%}"))
        rows.append(row)
    C.print_table(headers, rows)
    if args.only == "torch":
        print(f"\npeak memory of this process: {_peak_memory_mb():.0f} MB")
    medians = {name: statistics.median(seconds) for name, (seconds, _) in sides.items()}
    if len(medians) == 2:
        print(f"\nratio ours/torch: {medians['ours (CLI)'] / medians['torch']:.2f}")
    throughput = {}
    if float(epochs).is_integer():  # whole epochs: the median epoch does the count below
        gflop = epoch_gflop(config)
        _, peak = C.square_matmul_gflops()
        print(
            f"\na whole epoch: {gflop:.0f} GFLOP in its conv and dense products (3 per training image: forward, "
            f"dW, dX; 1 per validation image); float32 matmul peak {peak:.1f} GFLOP/s (2048^3, best of 5)"
        )
        for name, median in medians.items():
            throughput[name] = gflop / median
            print(f"  {name:<11} {throughput[name]:6.1f} GFLOP/s = {throughput[name] / peak:.0%} of the peak")
    if args.json:
        result = {**env, "config": args.config, "overrides": args.set, "epochs": epochs}
        for name, key in (("ours (CLI)", "ours"), ("torch", "torch")):
            if name in sides:
                result[f"{key}_seconds"], result[f"{key}_metrics"] = sides[name]
        if len(medians) == 2:
            result["ratio"] = medians["ours (CLI)"] / medians["torch"]
        if throughput:
            result.update(epoch_gflop=gflop, matmul_peak_gflops=peak)
            for name, key in (("ours (CLI)", "ours"), ("torch", "torch")):
                if name in throughput:
                    result[f"{key}_gflops"] = throughput[name]
        from neural_networks.io import atomic_write

        with atomic_write(args.json) as handle:
            handle.write(json.dumps(result, indent=2))
    return 0


def epoch_gflop(config: dict) -> float:
    """GFLOP of one whole epoch of the config's network in its conv and dense products: three per
    training image (forward, dW, dX), one per validation image (``_common.training_flops_per_image``
    on a fresh model of the config)."""
    from neural_networks.experiments import build_dataset, build_model

    dataset = build_dataset(config)
    model = build_model(config)
    model.size_output_layer(dataset)
    X0, _ = next(iter(dataset.train))
    train, inference = C.training_flops_per_image(model, X0[:2])
    validate = getattr(dataset, "validate", None)
    n_validate = validate.n_examples if validate is not None else 0
    return (dataset.train.n_examples * train + n_validate * inference) / 1e9


def _cell(value, form: str) -> str:
    return "-" if value is None else form.format(float(value))


def _peak_memory_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


if __name__ == "__main__":
    raise SystemExit(main())
