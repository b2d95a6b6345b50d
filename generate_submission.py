#!/usr/bin/env python3
"""Gather the code of your implementations into a markdown or LaTeX appendix (spec section 3.3).

Run ``python3 generate_submission.py --help`` from the repository root. The document has one
section per part -- activations, layers, losses and the model -- and in it the source of every
function named in ``student_implementations`` below; the work is done by
:func:`neural_networks.appendix.code_appendix`.
"""

from __future__ import annotations

import argparse
import sys

from neural_networks.io import atomic_write, quiet_broken_pipe
from neural_networks.appendix import (
    DEFAULT_IMPLEMENTATIONS,
    FAST_IMPLEMENTATIONS,
    UnknownImplementation,
    code_appendix,
    resolve_implementation,
)

# The functions and classes whose code goes into the appendix, as dotted names. If you change
# a function that is not listed, add its name here to have its code gathered too, e.g.
#     "neural_networks.layers.Flatten.forward",
#     "neural_networks.layers.BatchNorm",                (a whole class)
# A kernel of neural_networks.functional.reference goes into the group of the layer that calls it.
student_implementations = [
    *DEFAULT_IMPLEMENTATIONS,  # the spec's functions and the reference kernels that compute them
]

EPILOG = """\
examples:
  LaTeX, each part (activations, layers, losses, model) in its own subsection:
    python3 generate_submission.py --format latex --heading_level 2 --output submission.tex
  markdown, each part in its own subsubsection:
    python3 generate_submission.py --format markdown --heading_level 3 --output submission.md

The markdown document stands by itself: paste it into a markdown cell of a Jupyter notebook.
The LaTeX document does not compile by itself: \\input{submission.tex} it into your write-up,
whose preamble needs \\usepackage{listings} (\\lstset{breaklines=true} wraps long lines).

--list shows what is gathered. To gather a function that is not in the list, add its
dotted name (for instance "neural_networks.layers.Flatten.forward") to the list
student_implementations at the top of this file. --include-fast appends the library's fast
kernels (each module whole, in a section of their own) to the textbook code.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``--format``, ``--heading_level``, ``--output``, ``--include-fast`` and ``--list``."""
    parser = argparse.ArgumentParser(
        prog="generate_submission.py",
        description="Extract the code of your implementations into a markdown or LaTeX document, "
        "with separate sections for activation functions, layers, losses and the model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f", "--format", choices=("markdown", "latex"), default="markdown", help="output format (default: markdown)"
    )
    parser.add_argument(
        "--heading_level",
        "--heading-level",
        type=int,
        choices=(1, 2, 3),
        default=1,
        dest="heading_level",
        help="make each part a section (1), subsection (2) or subsubsection (3); "
        "each function is one level below (default: 1)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="file to write (default: print to standard output)")
    parser.add_argument(
        "--include-fast",
        "--include_fast",
        action="store_true",
        dest="include_fast",
        help="also gather the dispatch and the fast kernels of neural_networks.functional, each module whole",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the names in student_implementations with the part each goes to, and exit",
    )
    return parser


def main(argv=None, implementations=None) -> int:
    """Write the appendix; ``implementations`` (dotted names) defaults to
    ``student_implementations`` as it is when called. Returns the exit status."""
    args = build_parser().parse_args(argv)
    names = list(student_implementations if implementations is None else implementations)
    if args.include_fast:
        names += [name for name in FAST_IMPLEMENTATIONS if name not in names]
    try:
        status = _run(args, names)
        sys.stdout.flush()  # here, not at exit, so that a reader gone away is caught below
        return status
    except BrokenPipeError:  # the reader went away (--list | head): end quietly, as Unix tools do
        return quiet_broken_pipe()


def _run(args, names) -> int:
    try:
        if args.list:
            for name in names:
                print(f"{resolve_implementation(name).group:<12} {name}")
            return 0
        text = code_appendix(fmt=args.format, heading_level=args.heading_level, implementations=names)
    except UnknownImplementation as err:  # a typo in the list: say which entry, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        with atomic_write(args.output, "w") as handle:
            handle.write(text)
    except OSError as err:
        print(f"error: cannot write {args.output}: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
