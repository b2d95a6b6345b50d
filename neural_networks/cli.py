"""The command line: ``neural-networks`` (also ``python -m neural_networks``).

Thin by design: it parses arguments and calls the library. Errors caused by arguments,
configs or data print one line (``error: ...``) and exit with status 2; Ctrl-C during
training saves the last finished epoch and exits with status 130.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_train(args) -> int:
    from .config import load_valid_config
    from .experiment import run_experiment

    overrides = list(args.set or [])
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    config = load_valid_config(args.config, overrides)
    figures = run_experiment(
        config, out_dir=args.out, resume=args.resume, overwrite=args.overwrite, verbose=0 if args.quiet else 1
    )
    val = "none held out" if figures["val_accuracy"] is None else f"{figures['val_accuracy']:.4f}"
    print(
        f"test accuracy {figures['test_accuracy']:.4f}  val accuracy {val}  "
        f"epochs {figures['epochs']}  train time {figures['train_seconds']:.1f}s  -> {Path(args.out) / figures['name']}"
    )
    return 0


def _split_loader(dataset, split: str):
    return {"test": dataset.test, "val": dataset.validate, "train": dataset.train}[split]


def _tta(args, config: dict) -> str:
    """``--tta`` if given, else the run config's ``evaluation.tta`` (what its figures used)."""
    if args.tta is not None:
        return args.tta
    return (config.get("evaluation") or {}).get("tta") or "none"


def _cmd_evaluate(args) -> int:
    from .experiment import build_dataset, load_run

    config, model = load_run(args.run_dir, which=args.checkpoint)
    dataset = build_dataset(config)
    tta = _tta(args, config)
    result = model.evaluate(_split_loader(dataset, args.split), tta=tta)
    print(
        f"{args.split}: loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
        f"({_split_loader(dataset, args.split).n_examples} examples, {args.checkpoint} checkpoint, tta {tta})"
    )
    return 0


def _cmd_predict(args) -> int:
    from .experiment import build_dataset, load_run, split_inputs
    from .io import atomic_write

    config, model = load_run(args.run_dir, which=args.checkpoint)
    dataset = build_dataset(config)
    if args.images is not None:
        from .datasets import load_images

        images = load_images(args.images, like=dataset)  # uint8, sorted by path: that order is the Id order
        transform = dataset.test.transform
        X = transform(images) if transform is not None else images.astype("float32")
    else:
        X = split_inputs(dataset.test)
    predictions = model.predict_classes(X, tta=_tta(args, config))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Id", "Category"])
    writer.writerows((i, int(label)) for i, label in enumerate(predictions, start=1))
    with atomic_write(args.output, "w", newline="") as handle:
        handle.write(buffer.getvalue())
    print(f"wrote {len(predictions)} predictions to {args.output}")
    return 0


def _cmd_gradcheck(args) -> int:
    from .gradcheck import main as gradcheck_main

    return gradcheck_main(seed=args.seed)


def _cmd_report(args) -> int:
    from .io import atomic_write
    from .report import build_report

    text = build_report(args.run_dir, fmt=args.format, heading_level=args.heading_level, output=args.output)
    if args.output:
        with atomic_write(args.output, "w") as handle:
            handle.write(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def _cmd_data(args) -> int:
    from . import datasets

    if args.action == "list":
        for row in datasets.list_datasets():
            print(datasets.format_dataset_row(row))
    elif args.action == "path":
        print(datasets.data_home())
    else:
        ok = True
        for name in [args.name] if args.name else datasets.VERIFIABLE:
            for line, passed in datasets.verify_dataset(name, path=args.path):
                print(line)
                ok = ok and passed
        return 0 if ok else 1
    return 0


def _add_tta_argument(parser) -> None:
    from .tta import TTA_MODES

    parser.add_argument(
        "--tta", choices=TTA_MODES, help="test-time augmentation (default: the run config's evaluation.tta)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-networks", description="Train, evaluate and inspect NumPy neural networks."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train the experiment described by a YAML config")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--epochs", type=int, help="override the config's epochs")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--out", default="experiments", help="parent folder of the run directory (default: experiments)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config value (dotted key); repeatable"
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last.npz (the config may differ only in epochs, evaluation.tta)",
    )
    again.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory (by default train refuses)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="loss and accuracy of a trained run on a split")
    p.add_argument("run_dir")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--checkpoint", choices=("best", "last"), default="last")
    _add_tta_argument(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="write a Kaggle submission (Id,Category)")
    p.add_argument("run_dir")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", help="an image, or a folder or archive (.tar, .tar.gz, .zip) of images, predicted in name order"
    )
    source.add_argument("--split", choices=("test",), help="the data set's test split")
    p.add_argument("--output", required=True, help="CSV file to write")
    p.add_argument("--checkpoint", choices=("best", "last"), default="last")
    _add_tta_argument(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("gradcheck", help="finite-difference check of every layer, activation and loss")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("report", help="markdown or LaTeX write-up of a run with its code")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=("markdown", "latex"), default="markdown")
    p.add_argument("--heading-level", "--heading_level", type=int, choices=(1, 2, 3), default=1, dest="heading_level")
    p.add_argument("--output", help="file to write (default: print)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("data", help="where data sets are, and checksum verification")
    p.add_argument("action", choices=("list", "path", "verify"))
    p.add_argument("name", nargs="?", help="data set to verify (default: all)")
    p.add_argument("--path", help="explicit file or folder to verify")
    p.set_defaults(func=_cmd_data)
    return parser


def main(argv=None) -> int:
    from . import allocator
    from .config import ConfigError
    from .experiment import RunInterrupted

    args = build_parser().parse_args(argv)
    allocator.apply_default()  # the commands train and predict: keep freed memory for reuse (allocator.py)
    try:
        return args.func(args)
    except RunInterrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ConfigError, ValueError, OSError) as err:  # bad arguments, configs or data files
        if os.environ.get("NEURAL_NETWORKS_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
