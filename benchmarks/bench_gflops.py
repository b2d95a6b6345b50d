"""Achieved GFLOP/s of the convolution layers against this machine's measured float32 matmul peak.

1. The peak: numpy float32 ``(n, n) @ (n, n)`` (default n = 2048), best of several runs,
   GFLOP/s = 2*m*n*k / seconds; then the three GEMMs each 3x3 conv layer needs, in the layouts
   the library's im2col kernel uses (forward ``cols @ W``, ``dW = cols.T @ dZ``,
   ``dcols = dZ @ W.T``), each best of several runs. Their summed time is the layer's "GEMM
   bound": what a kernel that spends nothing outside the matrix products would take. The same
   three products through ``torch.mm`` (the BLAS torch is built with, MKL in the CPU wheels), on
   the same operands, give torch's GEMM bound: where it is close to ours the BLAS is not what
   separates the libraries, and where PyTorch's whole layer takes less than either bound its
   convolution kernels (oneDNN's direct convolutions, no im2col) do.
2. For each conv layer of the two CIFAR-10 networks (and the issue's target layer), the layer's
   FLOPs (forward ``2*N*Ho*Wo*kh*kw*Cin*Cout``, backward twice that: dW and dX) divided by the
   median time of our forward+backward, as GFLOP/s and as a fraction of the peak; the same for
   PyTorch CPU (same threads, timed interleaved in the same process) for reference.

    .venv/bin/python benchmarks/bench_gflops.py [--repeats 10] [--threads K] [--size 2048] [--json PATH]
"""

from __future__ import annotations

import argparse
import json

import _common as C
import numpy as np


def conv_gemms(n, h, w, cin, cout, k=3):
    """The three GEMM shapes ``(m, k, n)`` of a 3x3 'same' stride-1 conv, in the library's layouts:
    ``M = N*Ho*Wo``, ``K = kh*kw*Cin``, ``F = Cout``."""
    M, K, F = n * h * w, k * k * cin, cout
    return {"forward cols@W": (M, K, F), "dW cols.T@dZ": (K, M, F), "dX dZ@W.T": (M, F, K)}


def time_conv_gemms(n, h, w, cin, cout, runs, rng, torch=None):
    """Best seconds of each of the layer's three GEMMs, with operands laid out as the library has
    them: ``{product: seconds}`` through numpy, and with ``torch`` a second dict of the same
    products through ``torch.mm`` on the same memory (the transposes are views on both sides)."""
    M, K, F = n * h * w, 9 * cin, cout
    cols = rng.standard_normal((M, K), dtype=np.float32)
    W = rng.standard_normal((K, F), dtype=np.float32)
    dZ = rng.standard_normal((M, F), dtype=np.float32)
    ours = {
        "forward cols@W": C.best_time(lambda: cols @ W, runs),
        "dW cols.T@dZ": C.best_time(lambda: cols.T @ dZ, runs),
        "dX dZ@W.T": C.best_time(lambda: dZ @ W.T, runs),
    }
    if torch is None:
        return ours, None
    tc, tW, tdZ = (torch.from_numpy(a) for a in (cols, W, dZ))
    with torch.no_grad():
        theirs = {
            "forward cols@W": C.best_time(lambda: torch.mm(tc, tW), runs),
            "dW cols.T@dZ": C.best_time(lambda: torch.mm(tc.t(), tdZ), runs),
            "dX dZ@W.T": C.best_time(lambda: torch.mm(tdZ, tW.t()), runs),
        }
    return ours, theirs


# (name, network, batch, h, w, cin, cout, activation): the activation the network puts after the
# conv (cifar10_fast's convs are linear, followed by BatchNorm).
LAYERS = [
    ("target", "issue 4 target", 128, 16, 16, 32, 64, "relu"),
    ("cnn.conv1", "cifar10_cnn", 64, 32, 32, 3, 32, "relu"),
    ("cnn.conv2", "cifar10_cnn", 64, 16, 16, 32, 64, "relu"),
    ("cnn.conv3", "cifar10_cnn", 64, 8, 8, 64, 128, "relu"),
    ("fast.conv1", "cifar10_fast", 128, 32, 32, 3, 32, "linear"),
    ("fast.conv2", "cifar10_fast", 128, 32, 32, 32, 32, "linear"),
    ("fast.conv3", "cifar10_fast", 128, 16, 16, 32, 64, "linear"),
    ("fast.conv4", "cifar10_fast", 128, 16, 16, 64, 64, "linear"),
    ("fast.conv5", "cifar10_fast", 128, 8, 8, 64, 128, "linear"),
    ("fast.conv6", "cifar10_fast", 128, 8, 8, 128, 128, "linear"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="interleaved repetitions per conv layer (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="runs per GEMM, the best is kept (default 5)")
    parser.add_argument("--size", type=int, default=2048, help="n of the square peak matmul (default 2048)")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for numpy's BLAS and torch (default: numpy's)"
    )
    parser.add_argument("--only", default=None, help="comma-separated layer names or prefixes (e.g. target,cnn)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    C.add_timing_flags(parser)
    args = parser.parse_args(argv)
    only = [t.strip() for t in args.only.split(",") if t.strip()] if args.only else None
    layers = [spec for spec in LAYERS if only is None or any(spec[0] == t or spec[0].startswith(t) for t in only)]

    k, how, torch = C.setup_threads(args.threads)
    info = C.header("bench_gflops: conv layers' achieved GFLOP/s vs the float32 matmul peak", k, how, torch)
    import bench_layers  # the conv cases (same layer, same torch module, same weights)

    rng = np.random.default_rng(0)
    n = args.size
    square_s, square = C.square_matmul_gflops(n, args.runs)

    # GEMM shapes (m, k, n) of each distinct layer shape; several layers share shapes.
    gemm_results, bound, torch_bound = [], {}, {}
    for name, _, nb, h, w, cin, cout, _ in layers:
        key = (nb, h, w, cin, cout)
        if key in bound:
            continue
        times, torch_times = time_conv_gemms(nb, h, w, cin, cout, args.runs, rng, torch)
        bound[key] = sum(times.values())
        torch_bound[key] = sum(torch_times.values())
        for what, (m, kk, nn) in conv_gemms(nb, h, w, cin, cout).items():
            gemm_results.append(
                {
                    "layer": name,
                    "gemm": what,
                    "m": m,
                    "k": kk,
                    "n": nn,
                    "ms": times[what] * 1e3,
                    "gflops": 2 * m * kk * nn / times[what] / 1e9,
                    "torch_mm_ms": torch_times[what] * 1e3,
                }
            )
    # The peak: the fastest matmul measured, square or conv-shaped.
    peak = max([square] + [g["gflops"] for g in gemm_results])
    peak_from = (
        f"({n}x{n}) @ ({n}x{n})"
        if peak == square
        else next(f"{g['layer']} {g['gemm']}" for g in gemm_results if g["gflops"] == peak)
    )
    print()
    print(f"numpy float32 ({n}x{n}) @ ({n}x{n}), best of {args.runs}: {square_s * 1e3:.1f} ms = {square:.1f} GFLOP/s")
    print(f"matmul peak (fastest of that and the conv GEMMs below): {peak:.1f} GFLOP/s, from {peak_from}")
    print()
    print(f"GEMMs of the conv layers (library layouts; best of {args.runs}):")
    C.print_table(
        ["layer", "product", "(m x k) @ (k x n)", "ms", "GFLOP/s", "of peak", "torch.mm ms", "numpy/torch.mm"],
        [
            [
                g["layer"],
                g["gemm"],
                f"({g['m']}x{g['k']}) @ ({g['k']}x{g['n']})",
                f"{g['ms']:.2f}",
                f"{g['gflops']:.1f}",
                f"{g['gflops'] / peak * 100:.0f}%",
                f"{g['torch_mm_ms']:.2f}",
                f"{g['ms'] / g['torch_mm_ms']:.2f}",
            ]
            for g in gemm_results
        ],
    )
    print()

    rows, results = [], []
    print(
        "conv layers, forward+backward (" + C.timing_method(args.repeats, args.lead_in, args.settle) + "):",
        flush=True,
    )
    for name, net, nb, h, w, cin, cout, act in layers:
        ours, theirs, check = bench_layers.conv_case(torch, nb, h, w, cin, cout, activation=act)
        err = check()
        timing = C.time_interleaved(ours, theirs, args.repeats, lead_in_s=args.lead_in, settle_s=args.settle)
        flops = 3 * 2 * nb * h * w * 9 * cin * cout  # forward + (dW + dX)
        g_ours = flops / timing["ours_s"] / 1e9
        g_torch = flops / timing["torch_s"] / 1e9
        gemm_ms = bound[(nb, h, w, cin, cout)]
        torch_gemm_ms = torch_bound[(nb, h, w, cin, cout)]
        rows.append(
            [
                name,
                f"b{nb} {h}x{w}x{cin} -> {cout} {act}",
                f"{flops / 1e9:.2f}",
                f"{gemm_ms * 1e3:.2f}",
                f"{torch_gemm_ms * 1e3:.2f}",
                C.fmt_ms(timing["ours_s"]),
                f"{g_ours:.1f}",
                f"{g_ours / peak * 100:.0f}%",
                f"{timing['ours_s'] / gemm_ms:.2f}",
                C.fmt_ms(timing["torch_s"]),
                f"{g_torch:.1f}",
                f"{g_torch / peak * 100:.0f}%",
                f"{timing['ours_s'] / timing['torch_s']:.2f}",
            ]
        )
        results.append(
            {
                "layer": name,
                "network": net,
                "batch": nb,
                "in": [h, w, cin],
                "out_channels": cout,
                "activation": act,
                "gflop": flops / 1e9,
                "gemm_bound_ms": gemm_ms * 1e3,
                "torch_mm_bound_ms": torch_gemm_ms * 1e3,
                "ours_ms": timing["ours_s"] * 1e3,
                "torch_ms": timing["torch_s"] * 1e3,
                "ours_gflops": g_ours,
                "torch_gflops": g_torch,
                "ours_of_peak": g_ours / peak,
                "torch_of_peak": g_torch / peak,
                "check_rel_err": err,
                "ours_min_ms": timing["ours_min_s"] * 1e3,
                "torch_min_ms": timing["torch_min_s"] * 1e3,
            }
        )
        print(
            f"  {name:<11} ours {C.fmt_ms(timing['ours_s']):>8} ms {g_ours:6.1f} GFLOP/s   "
            f"torch {C.fmt_ms(timing['torch_s']):>8} ms {g_torch:6.1f} GFLOP/s",
            flush=True,
        )
    print()
    C.print_table(
        [
            "layer",
            "shape",
            "GFLOP",
            "GEMM-bound ms",
            "torch.mm bound ms",
            "ours ms",
            "ours GFLOP/s",
            "ours of peak",
            "ours/GEMM-bound",
            "torch ms",
            "torch GFLOP/s",
            "torch of peak",
            "ours/torch",
        ],
        rows,
    )
    print()
    print(
        "GFLOP counts forward + backward (dW and dX) = 3 x 2*N*Ho*Wo*9*Cin*Cout, also for the first layer, "
        "whose dX a training step does not need. GEMM-bound = the three GEMMs alone at the speeds above; "
        "torch.mm bound = the same three through torch's BLAS."
    )
    info["loadavg_end"] = C.load_average()
    print(f"load average at end {info['loadavg_end']}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "info": info,
                    "peak_gflops": peak,
                    "peak_from": peak_from,
                    "square_size": n,
                    "square_ms": square_s * 1e3,
                    "square_gflops": square,
                    "gemms": gemm_results,
                    "layers": results,
                    "repeats": args.repeats,
                },
                handle,
                indent=1,
            )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
