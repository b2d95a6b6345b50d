"""Wide 3x3 "same" convolutions: the Winograd paths against the im2col paths, in one process.

    .venv/bin/python benchmarks/bench_winograd.py [--rounds 6] [--threads K]

For each shape (airbench's 256-wide layers at batch 512 and the shapes of ``bench_layers.py``),
times Conv2D's backward pass (weight, bias and input gradients, ReLU mask) with the weight
gradient through :func:`neural_networks.functional.winograd.weight_gradient3x3_same` (``WEIGHT_GRADIENT``)
against the same pass with the weight gradient through im2col (patches regathered, as a 256-wide
layer's forward pass keeps none), and the forward pass through Winograd against im2col. Calls
alternate in blocks of back-to-back calls without pauses, as a training loop runs them
(``time_interleaved`` with ``settle_s=0``); medians and spreads of ``--rounds`` samples.
"""

from __future__ import annotations

import argparse
from unittest import mock

import _common as C  # first: puts the repository root on sys.path

import numpy as np

from neural_networks.functional import conv, winograd

SHAPES = [  # (batch, rows, cols, c_in, c_out)
    (512, 7, 7, 256, 256),
    (512, 3, 3, 256, 256),
    (128, 8, 8, 256, 256),
    (128, 16, 16, 256, 256),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    k, how, torch = C.setup_threads(args.threads)
    C.header("Winograd against im2col, 3x3 'same' layers", k, how, torch)
    rng = np.random.default_rng(0)
    rows = []
    for n, h, w, c, f in SHAPES:
        X = rng.standard_normal((n, h, w, c)).astype(np.float32)
        W = (rng.standard_normal((3, 3, c, f)) * 0.05).astype(np.float32)
        b = np.zeros((1, f), dtype=np.float32)
        Y, cache = conv.conv2d_forward(X, W, b, 1, (1, 1), relu=True)
        dY = rng.standard_normal(Y.shape).astype(np.float32)

        def backward(winograd_dW: bool):
            with mock.patch.object(winograd, "WEIGHT_GRADIENT", winograd_dW):
                return conv.conv2d_backward(dY, W, cache, 1, (1, 1), relu_output=Y)

        def forward(use_winograd: bool):
            with mock.patch.object(winograd, "MIN_CHANNELS", 256 if use_winograd else 10**9):
                return conv.conv2d_forward(X, W, b, 1, (1, 1), relu=True)

        shape = f"b{n} {h}x{w} {c}->{f}"
        for what, fn in (("backward", backward), ("forward", forward)):
            t = C.time_interleaved(lambda: fn(True), lambda: fn(False), args.rounds, settle_s=0.0)
            s = t["samples_s"]
            rows.append(
                [
                    f"{shape} {what}",
                    C.fmt_ms(t["ours_s"]),
                    f"{C.spread(s['ours']):.0%}",
                    C.fmt_ms(t["torch_s"]),
                    f"{C.spread(s['torch']):.0%}",
                    f"{t['ours_s'] / t['torch_s']:.2f}",
                ]
            )
    C.print_table(["case", "Winograd", "spread", "im2col", "spread", "ratio"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
