"""Do two checkouts of the library train to the same bits? A check for refactors.

    python benchmarks/same_results.py OTHER_CHECKOUT [--only NAME,...]

Runs the same short jobs with this checkout and with ``OTHER_CHECKOUT`` (each through
``python -m neural_networks`` or the starter script with ``PYTHONPATH`` set to that checkout, in
the same interpreter and environment) and compares what they wrote byte for byte: each run's
``metrics.csv`` without its ``seconds`` column (per-epoch losses and accuracies, written with
full precision), ``parameters.csv`` (the min and max of every parameter after every epoch) and
the figures of ``metrics.json`` (test loss and accuracy), or the starter script's printed
results. The jobs: every shipped config for a fraction of an epoch (the CIFAR-10 ones need
``../shared/data/cifar10-jpeg.tar.gz``, Fashion-MNIST Debian's ``dataset-fashion-mnist``; a job
whose data is missing is reported and skipped), ``train_ffnn.py`` and ``train_conv.py`` on
Fashion-MNIST and the Iris demo. Prints one line per job and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (argv after the interpreter, the option naming its output folder)
JOBS = {
    "iris": (["-m", "neural_networks", "train", "configs/iris.yaml", "--epochs", "5", "--quiet"], "--out"),
    "fashion_mnist_mlp": (
        ["-m", "neural_networks", "train", "configs/fashion_mnist_mlp.yaml", "--epochs", "0.05", "--quiet"],
        "--out",
    ),
    "cifar10_cnn": (
        ["-m", "neural_networks", "train", "configs/cifar10_cnn.yaml", "--epochs", "0.02", "--quiet"],
        "--out",
    ),
    "cifar10_fast": (
        ["-m", "neural_networks", "train", "configs/cifar10_fast.yaml", "--epochs", "0.05", "--quiet"],
        "--out",
    ),
    "cifar10_airbench": (
        ["-m", "neural_networks", "train", "configs/cifar10_airbench.yaml", "--epochs", "0.06", "--quiet"],
        "--out",
    ),
    "cifar10_94": (
        ["-m", "neural_networks", "train", "configs/cifar10_94.yaml", "--epochs", "0.06", "--quiet"],
        "--out",
    ),
    "cifar10_airbench_sgd": (
        ["-m", "neural_networks", "train", "configs/cifar10_airbench_sgd.yaml", "--epochs", "0.06", "--quiet"],
        "--out",
    ),
    "train_ffnn": (["{checkout}/train_ffnn.py", "--epochs", "20"], "--save-dir"),
    "train_conv": (["{checkout}/train_conv.py", "--dataset", "fashion_mnist", "--epochs", "1"], "--save-dir"),
    "iris_demo": (["-m", "neural_networks.examples.iris", "--epochs", "20"], "--out"),
}


def _without_seconds(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "seconds" not in rows[0]:
        return text
    drop = rows[0].index("seconds")
    return "\n".join(",".join(cell for i, cell in enumerate(row) if i != drop) for row in rows)


def _without_timing(line: str) -> str:
    """``line`` without durations: a table row without its last (seconds) column, else without
    ``1.2s`` / ``1.2 s`` figures."""
    if line.startswith("|"):
        return line.rsplit("|", 2)[0]
    return re.sub(r"\d+\.\d+ ?s\b", "", line)


def _results(checkout: Path, name: str, work: Path) -> str:
    """What job ``name`` wrote (its CSV tables without timings, its final figures, its printed
    lines without timings) when run with ``checkout``, from this repository's root (where the
    configs' relative data paths hold), writing under ``work``."""
    argv, out_option = JOBS[name]
    out = work / f"{checkout.name}-{name}"
    argv = [arg.format(checkout=checkout) for arg in argv] + [out_option, str(out)]
    env = {**os.environ, "PYTHONPATH": str(checkout), "NEURAL_NETWORKS_CACHE": str(work / "cache")}
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {result.returncode}")
    parts = [_without_timing(line) for line in result.stdout.splitlines() if str(out) not in line]
    for path in sorted(out.rglob("*")):
        if path.suffix == ".csv":
            parts += [str(path.relative_to(out)), _without_seconds(path.read_text())]
        elif path.name == "metrics.json":
            figures = json.loads(path.read_text())
            keys = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "test_accuracy_no_tta")
            parts.append(json.dumps({k: figures[k] for k in keys if k in figures}))
        elif path.suffix == ".md":
            parts += [_without_timing(line) for line in path.read_text().splitlines()]
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree of the commit before)")
    parser.add_argument("--only", help="comma-separated job names (default: all): " + ", ".join(JOBS))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(JOBS)
    differing = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                mine = _results(ROOT, name, Path(tmp) / "this")
                theirs = _results(args.other.resolve(), name, Path(tmp) / "other")
            except RuntimeError as err:
                print(f"{name:<22} skipped: {err}", flush=True)
                continue
            same = mine == theirs
            differing += not same
            print(f"{name:<22} {'same' if same else 'DIFFERENT'} ({len(mine)} characters compared)", flush=True)
            if not same:
                for a, b in zip(mine.splitlines(), theirs.splitlines()):
                    if a != b:
                        print(f"  this:  {a}\n  other: {b}")
                        break
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
