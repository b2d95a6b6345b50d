"""The spec's section 5: a two-layer network on Iris, plus a learning-rate x hidden-size sweep.

    python -m neural_networks.examples.iris [--epochs 100] [--out experiments/iris-sweep] [--seed 0]

Trains the default network (4 -> hidden ReLU -> 3 softmax, cross-entropy, SGD with momentum)
and prints its test accuracy; then trains every combination of the sweep, prints a table of
validation and test accuracy, picks the best by validation accuracy (ties: lower validation
loss) and saves its plots (loss versus iteration, loss and accuracy per epoch), its model and
the table under ``--out``: that folder, or ``<out>-2``, ``<out>-3``, ... when it holds files
already (claimed as a run directory is, :func:`neural_networks.experiments.rundir.claim_new`), so that no
earlier results are replaced and ``neural-networks train configs/iris.yaml`` gets
``experiments/iris`` for itself.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from .. import plots
from ..datasets import initialize_dataset
from ..io import atomic_write
from ..models import initialize_model
from ..experiments.rundir import claim_new

DEFAULT = {"lr": 0.05, "hidden": 32}
SWEEP_LRS = (0.005, 0.05, 0.5)
SWEEP_HIDDEN = (4, 16, 64)


def build(hidden: int, lr: float, seed: int):
    """The spec's two-layer network, built through its ``layer_args`` / ``optimizer_args``."""
    layer_args = [
        {"name": "fully_connected", "activation": "relu", "weight_init": "xavier_uniform", "n_out": hidden},
        {"name": "fully_connected", "activation": "softmax", "weight_init": "xavier_uniform", "n_out": 3},
    ]
    optimizer_args = {
        "name": "SGD",
        "lr": lr,
        "lr_scheduler": "constant",
        "lr_decay": 0.99,
        "stage_length": 1000,
        "staircase": True,
        "clip_norm": 1.0,
        "momentum": 0.9,
    }
    return initialize_model(
        name="feed_forward", loss="cross_entropy", layer_args=layer_args, optimizer_args=optimizer_args, seed=seed
    )


def run(hidden: int, lr: float, epochs: int, seed: int, batch_size: int = 25) -> dict:
    """Train one configuration; returns its figures, model and history."""
    dataset = initialize_dataset("iris", batch_size=batch_size, seed=seed)
    model = build(hidden, lr, seed)
    started = time.perf_counter()
    history = model.train(dataset, epochs, verbose=0)
    seconds = time.perf_counter() - started
    val, test = model.evaluate(dataset.validate), model.test(dataset)
    return {
        "lr": lr,
        "hidden": hidden,
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "seconds": seconds,
        "model": model,
        "history": history,
    }


def table(results: list[dict]) -> str:
    """Markdown table of the sweep."""
    lines = [
        "| lr | hidden | val accuracy | val loss | test accuracy | test error | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['lr']:g} | {r['hidden']} | {r['val_accuracy']:.3f} | {r['val_loss']:.4f} | "
            f"{r['test_accuracy']:.3f} | {1 - r['test_accuracy']:.3f} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    """The command (see the module docstring): train the default network, then, unless
    ``--no-sweep``, the sweep, and save the best run's table, plots and model. Returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("experiments/iris-sweep"),
        help="where plots and the table go (default experiments/iris-sweep; -2, -3, ... when it holds files)",
    )
    parser.add_argument("--no-sweep", action="store_true", help="train the default network only")
    args = parser.parse_args(argv)

    print(
        f"Training the two-layer network on Iris: hidden {DEFAULT['hidden']}, lr {DEFAULT['lr']}, "
        f"SGD momentum 0.9, batch 25, {args.epochs} epochs"
    )
    default = run(DEFAULT["hidden"], DEFAULT["lr"], args.epochs, args.seed)
    print(
        f"test accuracy {default['test_accuracy']:.3f} (validation {default['val_accuracy']:.3f}) "
        f"in {default['seconds']:.2f} s"
    )
    if args.no_sweep:
        return 0

    print(f"\nSweep: lr in {SWEEP_LRS} x hidden in {SWEEP_HIDDEN}")
    results = [run(h, lr, args.epochs, args.seed) for lr, h in itertools.product(SWEEP_LRS, SWEEP_HIDDEN)]
    text = table(results)
    print(text)
    best = max(results, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    print(
        f"\nbest by validation accuracy: lr {best['lr']:g}, hidden {best['hidden']}: "
        f"test accuracy {best['test_accuracy']:.3f}, test error {1 - best['test_accuracy']:.3f}"
    )

    with claim_new(args.out.parent, args.out.name) as folder:
        out = folder.path
        with atomic_write(out / "sweep.md", "w") as handle:
            handle.write(text + "\n")
        history = best["history"]
        plots.plot_iteration_loss(
            history.iteration_loss,
            out / "best_loss_iterations.png",
            title=f"Iris, lr {best['lr']:g}, hidden {best['hidden']}: loss per iteration",
        )
        plots.plot_curves(history.history, "loss", out / "best_loss.png")
        plots.plot_curves(history.history, "accuracy", out / "best_accuracy.png")
        best["model"].save(out / "best.npz")
    print(f"saved {out / 'sweep.md'}, {out / 'best_loss_iterations.png'} (and per-epoch curves, best.npz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
