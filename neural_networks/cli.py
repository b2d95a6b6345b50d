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
    from .experiments import load_valid_config, run_experiment

    overrides = list(args.set or [])
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.tensorboard:
        overrides.append("tensorboard=true")
    config = load_valid_config(args.config, overrides)  # validated once: run_experiment trusts a ValidConfig
    resume = args.resume if args.resume is not None else False
    figures = run_experiment(
        config, out_dir=args.out, resume=resume, overwrite=args.overwrite, verbose=0 if args.quiet else 1
    )
    val = "none held out" if figures["val_accuracy"] is None else f"{figures['val_accuracy']:.4f}"
    print(
        f"test accuracy {figures['test_accuracy']:.4f}  val accuracy {val}  "
        f"epochs {figures['epochs']}  train time {figures['train_seconds']:.1f}s  -> {figures['run_dir']}"
    )
    return 0


def _split_loader(dataset, split: str):
    return {"test": dataset.test, "val": dataset.validate, "train": dataset.train}[split]


def _tta(args, config: dict) -> str:
    """``--tta`` if given, else the run config's ``evaluation.tta`` (what its figures used)."""
    if args.tta is not None:
        return args.tta
    return (config.get("evaluation") or {}).get("tta") or "none"


def _load_run(args) -> tuple[dict, object]:
    """The run's config and the checkpoint asked for, after a note on stderr if the run is
    unfinished (still training, failed, interrupted: the weights are not a finished run's)."""
    from .experiments import load_run, unfinished_note

    config, model = load_run(args.run_dir, which=args.checkpoint)
    note = unfinished_note(args.run_dir, config, which=args.checkpoint, model=model)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    return config, model


def _cmd_evaluate(args) -> int:
    from .experiments import build_dataset

    config, model = _load_run(args)
    dataset = build_dataset(config)
    tta = _tta(args, config)
    result = model.evaluate(_split_loader(dataset, args.split), tta=tta)
    print(
        f"{args.split}: loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  "
        f"({_split_loader(dataset, args.split).n_examples} examples, {args.checkpoint} checkpoint, tta {tta})"
    )
    return 0


def _cmd_predict(args) -> int:
    from .experiments import build_dataset, split_inputs
    from .io import atomic_write

    config, model = _load_run(args)
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

    text = build_report(
        args.run_dir,
        fmt=args.format,
        heading_level=args.heading_level,
        output=args.output,
        include_fast=args.include_fast,
    )
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
        # the configs run from here (./configs/*.yaml) may read a data set elsewhere than its
        # default location: list their data.path too, or "missing" would mislead
        from .experiments import config_data_paths

        config_paths, problems = config_data_paths("configs")
        for row in datasets.list_datasets(config_paths=config_paths):
            print(datasets.format_dataset_row(row))
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
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


def _input_shape(text: str) -> tuple[int, ...]:
    """``--input-shape``: positive ints separated by commas (``32,32,3``)."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive ints separated by commas, e.g. 32,32,3; got {text!r}")
    return shape


def _cmd_export(args) -> int:
    from .export import export_model

    config, model = _load_run(args)
    path = export_model(model, args.output, args.format, input_shape=args.input_shape)
    tta = (config.get("evaluation") or {}).get("tta") or "none"
    # predict and evaluate apply the run's test-time augmentation; an exported model cannot.
    note = f" (without the run's test-time augmentation, {tta})" if tta != "none" else ""
    print(f"wrote the {args.checkpoint} checkpoint of {args.run_dir} as {args.format} to {path}{note}")
    return 0


def _cmd_tune(args) -> int:
    from .experiments import ConfigError, apply_overrides, load_config, validate_file_config
    from .tune.space import check_validation_split, load_space
    from .tune.study import StudySettings, check_study_name, require_optuna, run_study

    require_optuna()  # before anything else: without the extra, one line saying how to install it
    # trials get the config as written (with --set), validated per trial: values derived from
    # others at validation (a schedule's total_epochs from epochs) then follow the searched ones
    base = apply_overrides(load_config(args.config), list(args.set or []))
    config = validate_file_config(base, args.config, list(args.set or []))  # errors naming the file
    space = load_space(args.space, base, sampler=args.sampler)
    check_validation_split(config, str(args.config), space)
    study = check_study_name(args.study or config["name"])
    trials = args.trials
    if trials is None:
        if args.sampler != "grid":
            raise ConfigError("--trials is required (a grid study defaults to the size of its grid)")
        trials = 1
        for values in space.grid().values():
            trials *= len(values)
    settings = StudySettings(
        study=study,
        study_dir=str(Path(args.out) / study),
        storage=args.storage,
        sampler=args.sampler,
        pruner=args.pruner,
        trials=trials,
        base_config=base,
        space=space.to_dict(),
    )
    run_study(settings, jobs=args.jobs, config_path=args.config, space_path=args.space)
    return 0


def _cmd_tune_report(args) -> int:
    from .tune.report import report_from_folder

    report_from_folder(args.study_dir, storage=args.storage)
    return 0


def _tune_count(text: str) -> int:
    """``--trials`` / ``--jobs``: a positive int."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_tta_argument(parser) -> None:
    from .tta import TTA_MODES

    parser.add_argument(
        "--tta", choices=TTA_MODES, help="test-time augmentation (default: the run config's evaluation.tta)"
    )


def _add_run_arguments(parser) -> None:
    """The run directory and which of its checkpoints (evaluate, predict, export)."""
    parser.add_argument("run_dir", help="the run directory that train wrote (e.g. experiments/iris)")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="last",
        help="last: the weights after the last finished epoch; best: the epoch with the best monitored "
        "value, by default validation accuracy (default: last)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of ``neural-networks`` and its commands (``train``, ``evaluate``,
    ``predict``, ``gradcheck``, ``report``, ``data``, ``export``, ``tune``, ``tune-report``); each
    command's ``func`` runs it."""
    parser = argparse.ArgumentParser(
        prog="neural-networks", description="Train, evaluate and inspect NumPy neural networks."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train the experiment described by a YAML config")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--epochs", type=float, help="override the config's epochs (a fraction trains part of the last one)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--out", default="experiments", help="parent folder of the run directory (default: experiments)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config value (dotted key); repeatable"
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="RUN_DIR",
        help="continue a run from its last.npz: RUN_DIR, or without it the newest run of the config's name "
        "(the config may differ only in epochs, evaluation.tta, tensorboard)",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT/NAME itself (by default a run whose name is taken goes to NAME-2, NAME-3, ...)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="write TensorBoard event files to the run's tensorboard/ folder (config tensorboard: true; "
        'needs pip install "neural_networks[tensorboard]")',
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="loss and accuracy of a trained run on a split")
    _add_run_arguments(p)
    p.add_argument("--split", choices=("test", "val"), default="test", help="the split to evaluate (default: test)")
    _add_tta_argument(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="write a Kaggle submission (Id,Category)")
    _add_run_arguments(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", help="an image, or a folder or archive (.tar, .tar.gz, .zip) of images, predicted in name order"
    )
    source.add_argument("--split", choices=("test",), help="predict the data set's test split (the run's data)")
    p.add_argument("--output", required=True, help="CSV file to write")
    _add_tta_argument(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("gradcheck", help="finite-difference check of every layer, activation and loss")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("report", help="markdown or LaTeX write-up of a run with its code")
    p.add_argument("run_dir", help="the run directory (e.g. experiments/iris)")
    p.add_argument("--format", choices=("markdown", "latex"), default="markdown", help="default: markdown")
    p.add_argument(
        "--heading-level",
        "--heading_level",
        type=int,
        choices=(1, 2, 3),
        default=1,
        dest="heading_level",
        help="level of the report's top heading (default: 1)",
    )
    p.add_argument("--output", help="file to write (default: print)")
    p.add_argument(
        "--include-fast",
        action="store_true",
        help="also show the fast kernels (the dispatch and each module of neural_networks.functional)",
    )
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("data", help="where data sets are, and checksum verification")
    p.add_argument("action", choices=("list", "path", "verify"))
    p.add_argument("name", nargs="?", help="data set to verify (default: all)")
    p.add_argument("--path", help="explicit file or folder to verify")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("export", help="write a trained run's model as ONNX or safetensors")
    _add_run_arguments(p)
    p.add_argument("--format", choices=("onnx", "safetensors"), required=True, help="the file format")
    p.add_argument("--output", required=True, help="file to write (.onnx or .safetensors)")
    p.add_argument(
        "--input-shape",
        "--input_shape",
        type=_input_shape,
        dest="input_shape",
        metavar="DIMS",
        help="onnx: the input without its batch axis, e.g. 32,32,3 (default: from the model, image rows and cols free)",
    )
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("tune", help="hyper-parameter study on Optuna (needs neural_networks[tune])")
    p.add_argument("config", help="YAML config of the runs (see configs/)")
    p.add_argument("--space", required=True, help="YAML search space: dotted config keys -> distributions")
    p.add_argument(
        "--trials",
        type=_tune_count,
        help="finished trials the study should reach, counting earlier runs of it (grid default: the grid's size)",
    )
    p.add_argument("--jobs", type=_tune_count, default=1, help="worker processes on this machine (default: 1)")
    p.add_argument(
        "--storage", metavar="URL", help="postgresql://... or mysql://... (default: a journal file in the study folder)"
    )
    p.add_argument("--study", help="study name (default: the config's name)")
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    p.add_argument("--pruner", choices=("median", "none"), default="median")
    p.add_argument("--out", default="experiments/tune", help="parent of the study folder (default: experiments/tune)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a base config value (dotted key); repeatable"
    )
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("tune-report", help="rewrite a study's trials.csv, best_config.yaml and plots")
    p.add_argument("study_dir", help="the study folder (<out>/<study>)")
    p.add_argument("--storage", metavar="URL", help="the study's database (default: what its study.yaml names)")
    p.set_defaults(func=_cmd_tune_report)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit status:
    0 on success (``data verify`` and ``gradcheck``: 1 when a check fails); 2 after a one-line ``error: ...``
    for a bad argument, config or data file (a ``ConfigError``, ``ValueError``, ``OSError`` or
    ``MemoryError``; with ``NEURAL_NETWORKS_DEBUG`` set the exception propagates); 130 when
    interrupted. ``--help`` and argument errors exit through ``argparse`` (``SystemExit``)."""
    from .functional import allocator
    from .experiments import ConfigError, RunInterrupted
    from .io import quiet_broken_pipe

    args = build_parser().parse_args(argv)
    allocator.apply_default()  # every command of the CLI keeps freed memory for reuse (allocator.py); importing the library does not
    try:
        status = args.func(args)
        sys.stdout.flush()  # here, not at exit, so that a reader gone away is caught below
        return status
    except BrokenPipeError:
        return quiet_broken_pipe()
    except RunInterrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ConfigError, ValueError, OSError, MemoryError) as err:  # bad arguments, configs, data files, sizes
        if os.environ.get("NEURAL_NETWORKS_DEBUG"):
            raise
        hint = " (lower the model's sizes or data.batch_size)" if isinstance(err, MemoryError) else ""
        print(f"error: {'out of memory: ' if isinstance(err, MemoryError) else ''}{err}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
