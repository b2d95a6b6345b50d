"""Time each layer's forward+backward, and full training steps, against PyTorch CPU.

One process, same thread count for both libraries, float32. Every case is timed interleaved:
after a warm-up, repetitions alternate between this library and torch (the order flips every
round) and each side's median is reported, with the ratio ours/torch (below 1: we are faster).

Before timing, each case runs once on both sides with the same weights and compares the
results (the ``check`` column: the largest error relative to the largest reference value, or the
two losses of a training step), so the table compares the same computation.

    .venv/bin/python benchmarks/bench_layers.py [--repeats 10] [--threads K] [--only NAME[,NAME]] [--json PATH]

``--only`` takes case names or prefixes (``conv`` selects every convolution case); the names
are printed in the first column.

The layout conversions and the translation of a network to ``torch.nn`` (``torch_network``,
``copy_weights``) come from ``tests/torch_oracles.py``, where the parity tests check them.
"""

from __future__ import annotations

import argparse
import inspect
import json

import _common as C  # first: puts the repository root on sys.path
import numpy as np

from tests import torch_oracles as O

TARGET_CONV = 1.25  # issue 4: Conv2D (batch 128, 16x16x32 -> 64) fwd+bwd at most 1.25x torch
TARGET_STEP = 1.5  # issue 4: a cifar10_cnn training step at most 1.5x torch
# issue 13: every conv case and every config's training step at most 1.0x torch, the target conv 0.9x
ISSUE13_TARGETS = {"conv_target": 0.9, "conv1": 1.0, "conv2": 1.0, "conv3": 1.0}
ISSUE13_TARGETS.update({step: 1.0 for step in ("cifar10_cnn", "cifar10_fast", "airbench")})


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """``||ours - ref|| / ||ref||`` (Frobenius). A norm, not a maximum: with ReLU, an element whose
    pre-activation is within rounding of 0 may land on the other side of the kink in one library,
    which moves that one gradient element by O(1) and says nothing about the kernels."""
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.linalg.norm(ref)) or 1.0
    return float(np.linalg.norm(np.asarray(ours, dtype=np.float64) - ref) / scale)


# ----------------------------------------------------------------------------- layer cases


def conv_case(torch, n, h, w, cin, cout, activation="relu", seed=0):
    """Conv2D 3x3 'same' (+ activation) forward+backward; torch: nn.Conv2d(padding=1) (+ relu)."""
    from neural_networks.layers import Conv2D

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, h, w, cin), dtype=np.float32)
    layer = Conv2D(cout, (3, 3), activation=activation, stride=1, pad="same")
    layer.rng = np.random.default_rng(seed + 1)
    Y = layer.forward(X)
    dY = rng.standard_normal(Y.shape, dtype=np.float32)

    conv = torch.nn.Conv2d(cin, cout, 3, stride=1, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(O.conv_weight_to_torch(layer.parameters["W"])))
        conv.bias.copy_(torch.from_numpy(O.bias_to_torch(layer.parameters["b"])))
    x = O.nchw(X, requires_grad=True)
    dy = O.nchw(dY)
    relu = activation == "relu"

    def ours():
        layer.forward(X)
        return layer.backward(dY)

    def theirs():
        x.grad = None
        conv.zero_grad(set_to_none=True)
        y = conv(x)
        if relu:
            y = torch.relu(y)
        y.backward(dy)
        return y

    def check():
        Y_o = layer.forward(X)
        dX_o = layer.backward(dY)
        y = theirs()
        return max(
            rel_err(Y_o, O.to_nhwc(y)),
            rel_err(dX_o, O.to_nhwc(x.grad)),
            rel_err(layer.gradients["W"], O.conv_weight_from_torch(conv.weight.grad.numpy())),
        )

    return ours, theirs, check


def pool_case(torch, n, h, w, c, mode, seed=0):
    """Pool2D 2x2 stride 2; torch: F.max_pool2d / F.avg_pool2d."""
    from neural_networks.layers import Pool2D

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, h, w, c), dtype=np.float32)
    layer = Pool2D((2, 2), mode=mode, stride=2, pad=0)
    Y = layer.forward(X)
    dY = rng.standard_normal(Y.shape, dtype=np.float32)
    x = O.nchw(X, requires_grad=True)
    dy = O.nchw(dY)
    fn = torch.nn.functional.max_pool2d if mode == "max" else torch.nn.functional.avg_pool2d

    def ours():
        layer.forward(X)
        return layer.backward(dY)

    def theirs():
        x.grad = None
        y = fn(x, 2, 2)
        y.backward(dy)
        return y

    def check():
        Y_o = layer.forward(X)
        dX_o = layer.backward(dY)
        y = theirs()
        return max(rel_err(Y_o, O.to_nhwc(y)), rel_err(dX_o, O.to_nhwc(x.grad)))

    return ours, theirs, check


def fc_case(torch, n, n_in, n_out, seed=0):
    """FullyConnected + ReLU; torch: nn.Linear + relu."""
    from neural_networks.layers import FullyConnected

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in), dtype=np.float32)
    layer = FullyConnected(n_out, activation="relu")
    layer.rng = np.random.default_rng(seed + 1)
    Y = layer.forward(X)
    dY = rng.standard_normal(Y.shape, dtype=np.float32)
    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(O.fc_weight_to_torch(layer.parameters["W"])))
        lin.bias.copy_(torch.from_numpy(O.bias_to_torch(layer.parameters["b"])))
    x = torch.from_numpy(X.copy()).requires_grad_(True)
    dy = torch.from_numpy(dY)

    def ours():
        layer.forward(X)
        return layer.backward(dY)

    def theirs():
        x.grad = None
        lin.zero_grad(set_to_none=True)
        y = torch.relu(lin(x))
        y.backward(dy)
        return y

    def check():
        Y_o = layer.forward(X)
        dX_o = layer.backward(dY)
        y = theirs()
        return max(
            rel_err(Y_o, y.detach().numpy()),
            rel_err(dX_o, x.grad.numpy()),
            rel_err(layer.gradients["W"], O.fc_weight_from_torch(lin.weight.grad.numpy())),
        )

    return ours, theirs, check


def softmax_ce_case(torch, n, n_in, n_out, seed=0):
    """FullyConnected(softmax) output with cross-entropy, through the model's fused gradient
    (a one-layer NeuralNetwork: forward, then backward(Y, Y_hat)); torch: nn.Linear then
    F.cross_entropy on the logits, backward from the loss."""
    from neural_networks.layers import FullyConnected
    from neural_networks.models import NeuralNetwork

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in), dtype=np.float32)
    labels = rng.integers(0, n_out, n)
    Y = np.eye(n_out, dtype=np.float32)[labels]
    layer = FullyConnected(n_out, activation="softmax")
    model = NeuralNetwork(layers=[layer], loss="cross_entropy", seed=seed)
    model.forward(X)
    lin = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(O.fc_weight_to_torch(layer.parameters["W"])))
        lin.bias.copy_(torch.from_numpy(O.bias_to_torch(layer.parameters["b"])))
    x = torch.from_numpy(X.copy()).requires_grad_(True)
    t = torch.from_numpy(labels)

    def ours():
        return model.backward(Y, model.forward(X))

    def theirs():
        x.grad = None
        lin.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(lin(x), t)
        loss.backward()
        return loss

    def check():
        loss_o = ours()
        loss_t = theirs()
        loss_t = float(loss_t.detach())
        return max(
            abs(loss_o - loss_t) / abs(loss_t),
            rel_err(layer.gradients["W"], O.fc_weight_from_torch(lin.weight.grad.numpy())),
        )

    return ours, theirs, check


def batchnorm_case(torch, BatchNorm, n, h, w, c, seed=0):
    """BatchNorm(activation="relu") in training mode on NHWC maps; torch: BatchNorm2d + relu."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, h, w, c), dtype=np.float32) * 2 + 0.5
    layer = _make_batchnorm(BatchNorm)
    layer.rng = np.random.default_rng(seed + 1)
    layer.train(True)
    Y = layer.forward(X)
    dY = rng.standard_normal(Y.shape, dtype=np.float32)
    bn = torch.nn.BatchNorm2d(c)
    bn.train()
    x = O.nchw(X, requires_grad=True)
    dy = O.nchw(dY)

    def ours():
        layer.forward(X)
        return layer.backward(dY)

    def theirs():
        x.grad = None
        bn.zero_grad(set_to_none=True)
        y = torch.relu(bn(x))
        y.backward(dy)
        return y

    def check():
        Y_o = layer.forward(X)
        dX_o = layer.backward(dY)
        y = theirs()
        return max(rel_err(Y_o, O.to_nhwc(y)), rel_err(dX_o, O.to_nhwc(x.grad)))

    return ours, theirs, check


def gelu_case(torch, n, h, w, c, seed=0):
    """The exact GELU (erf form) forward+backward on NHWC maps; torch: ``F.gelu`` + autograd."""
    from neural_networks.activations import GELU

    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, h, w, c), dtype=np.float32)
    dY = rng.standard_normal(Z.shape, dtype=np.float32)
    gelu = GELU()
    z = torch.from_numpy(Z).requires_grad_(True)
    dy = torch.from_numpy(dY)

    def ours():
        gelu.forward(Z)
        return gelu.backward(Z, dY)

    def theirs():
        z.grad = None
        y = torch.nn.functional.gelu(z)
        y.backward(dy)
        return y

    def check():
        y = theirs()
        return max(rel_err(gelu.forward(Z), y.detach().numpy()), rel_err(gelu.backward(Z, dY), z.grad.numpy()))

    return ours, theirs, check


def _make_batchnorm(BatchNorm):
    """``BatchNorm(activation="relu")``; raises TypeError if the class takes no activation."""
    if "activation" not in inspect.signature(BatchNorm).parameters:
        raise TypeError("BatchNorm takes no 'activation' argument; this benchmark builds BatchNorm(activation='relu')")
    return BatchNorm(activation="relu")


# ----------------------------------------------------------------------------- training steps


def cifar10_cnn_layers():
    from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D

    return [
        Conv2D(32, (3, 3), activation="relu", pad="same"),
        Pool2D((2, 2), mode="max", stride=2),
        Conv2D(64, (3, 3), activation="relu", pad="same"),
        Pool2D((2, 2), mode="max", stride=2),
        Conv2D(128, (3, 3), activation="relu", pad="same"),
        Pool2D((2, 2), mode="max", stride=2),
        Flatten(),
        FullyConnected(256, activation="relu"),
        FullyConnected(10, activation="softmax"),
    ]


def vgg_bn_layers(BatchNorm):
    from neural_networks.layers import Conv2D, Flatten, FullyConnected, Pool2D

    layers = []
    for block in ((32, 32), (64, 64), (128, 128)):
        for width in block:
            layers += [Conv2D(width, (3, 3), activation="linear", pad="same"), _make_batchnorm(BatchNorm)]
        layers.append(Pool2D((2, 2), mode="max", stride=2))
    return layers + [Flatten(), FullyConnected(10, activation="softmax")]


def config_batch_size(path: str) -> int:
    """The batch size of a shipped config (its data section's, else the loaders' default 128)."""
    from neural_networks.experiments import load_config

    return int(load_config(C.ROOT / path)["data"].get("batch_size", 128))


def config_layers(path: str) -> tuple[list, int]:
    """Fresh layers of a shipped config's model and the config's batch size."""
    from neural_networks.experiments import load_config
    from neural_networks.layers import initialize_layer

    config = load_config(C.ROOT / path)
    return [initialize_layer(**spec) for spec in config["model"]["layers"]], config_batch_size(path)


def train_step_case(torch, our_layers, batch, seed=0):
    """One training step (forward, backward, SGD momentum 0.9 update) of our layers in a model
    and of their translation to ``torch.nn`` (``torch_oracles.torch_network``), same weights."""
    from neural_networks.models import NeuralNetwork
    from neural_networks.optimizers import SGD

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, batch)
    Y = np.eye(10, dtype=np.float32)[labels]
    model = NeuralNetwork(layers=our_layers, loss="cross_entropy", optimizer=SGD(lr=0.01, momentum=0.9), seed=seed)
    model.fit_to_data([(X, Y)])  # a patch-whitening layer's filters, from this batch
    model.forward(X)  # creates the parameters (no update)
    net = O.torch_network(our_layers, X.shape[1:])
    O.copy_weights(our_layers, net)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = O.nchw(X)
    t = torch.from_numpy(labels)

    def ours():
        return model.train_step(X, Y, epoch=0)[0]

    def theirs():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), t)
        loss.backward()
        opt.step()
        return loss

    def check():  # the first step's loss, from identical weights
        loss_o, loss_t = ours(), float(theirs().detach())
        return abs(loss_o - loss_t) / abs(loss_t), f"loss {loss_o:.4f} vs {loss_t:.4f}"

    return ours, theirs, check


# ----------------------------------------------------------------------------- driver


def cases(torch, BatchNorm):
    """``(name, op, shape, builder)`` for every case, in table order."""
    out = [
        (
            "conv_target",
            "Conv2D 3x3 same +ReLU (issue target)",
            "b128 16x16x32 -> 64",
            lambda: conv_case(torch, 128, 16, 16, 32, 64),
        ),
        (
            "conv1",
            "Conv2D 3x3 same +ReLU (first layer)",
            "b64 32x32x3 -> 32",
            lambda: conv_case(torch, 64, 32, 32, 3, 32),
        ),
        ("conv2", "Conv2D 3x3 same +ReLU", "b64 16x16x32 -> 64", lambda: conv_case(torch, 64, 16, 16, 32, 64)),
        ("conv3", "Conv2D 3x3 same +ReLU", "b64 8x8x64 -> 128", lambda: conv_case(torch, 64, 8, 8, 64, 128)),
        ("maxpool", "Pool2D max 2x2 stride 2", "b64 32x32x32", lambda: pool_case(torch, 64, 32, 32, 32, "max")),
        ("avgpool", "Pool2D average 2x2 stride 2", "b64 32x32x32", lambda: pool_case(torch, 64, 32, 32, 32, "average")),
        ("fc_relu", "FullyConnected +ReLU", "b64 2048 -> 256", lambda: fc_case(torch, 64, 2048, 256)),
        (
            "fc_softmax_ce",
            "FullyConnected softmax + cross-entropy",
            "b64 256 -> 10",
            lambda: softmax_ce_case(torch, 64, 256, 10),
        ),
    ]
    if BatchNorm is not None:
        out.append(
            (
                "batchnorm",
                "BatchNorm +ReLU (train mode)",
                "b128 16x16x64",
                lambda: batchnorm_case(torch, BatchNorm, 128, 16, 16, 64),
            )
        )
    out.append(("gelu", "GELU (erf) forward+backward", "b128 32x32x64", lambda: gelu_case(torch, 128, 32, 32, 64)))
    out.append(
        (
            "cifar10_cnn",
            "train step cifar10_cnn (SGD momentum)",
            "b64 32x32x3",
            lambda: train_step_case(torch, cifar10_cnn_layers(), 64),
        )
    )
    if BatchNorm is not None:
        out.append(
            (
                "vgg_bn",
                "train step, issue's VGG net (6 conv+BN)",
                "b128 32x32x3",
                lambda: train_step_case(torch, vgg_bn_layers(BatchNorm), 128),
            )
        )
        out.append(
            (
                "cifar10_fast",
                "train step configs/cifar10_fast.yaml",
                f"b{config_batch_size('configs/cifar10_fast.yaml')} 32x32x3",
                lambda: config_step_case(torch, "configs/cifar10_fast.yaml"),
            )
        )
        out.append(
            (
                "airbench",
                "train step configs/cifar10_airbench.yaml",
                f"b{config_batch_size('configs/cifar10_airbench.yaml')} 32x32x3",
                lambda: config_step_case(torch, "configs/cifar10_airbench.yaml"),
            )
        )
    return out


def config_step_case(torch, path: str):
    """A training step of a shipped config's network (both sides: plain cross-entropy, SGD momentum)."""
    layers, batch = config_layers(path)
    return train_step_case(torch, layers, batch)


def selected(name: str, only: list[str] | None) -> bool:
    return only is None or any(name == token or name.startswith(token) for token in only)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed repetitions per side (default 10)")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for numpy's BLAS and torch (default: numpy's)"
    )
    parser.add_argument("--only", default=None, help="comma-separated case names or prefixes")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    C.add_timing_flags(parser)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per side before timing (default 2)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    only = [token.strip() for token in args.only.split(",") if token.strip()] if args.only else None

    k, how, torch = C.setup_threads(args.threads)
    info = C.header("bench_layers: forward+backward and training steps, ours vs PyTorch CPU", k, how, torch)
    BatchNorm, why = C.load_batchnorm()
    if BatchNorm is None:
        print(f"note: BatchNorm benchmarks skipped (neural_networks.layers.BatchNorm not importable: {why})")
    print(
        f"timing: {args.warmup} warm-up calls per side, then the "
        + C.timing_method(args.repeats, args.lead_in, args.settle)
    )
    print()

    torch.manual_seed(0)
    rows, results = [], []
    for name, op, shape, build in cases(torch, BatchNorm):
        if not selected(name, only):
            continue
        try:
            ours, theirs, check = build()
            checked = check()
        except Exception as err:  # e.g. a BatchNorm whose API differs from what this script assumes
            print(f"note: {name} skipped: {type(err).__name__}: {err}")
            results.append({"name": name, "op": op, "shape": shape, "skipped": f"{type(err).__name__}: {err}"})
            continue
        err, detail = checked if isinstance(checked, tuple) else (checked, f"{checked:.1e}")
        timing = C.time_interleaved(
            ours, theirs, args.repeats, warmup=args.warmup, lead_in_s=args.lead_in, settle_s=args.settle
        )
        ratio = timing["ours_s"] / timing["torch_s"]
        noise = max(C.spread(timing["samples_s"]["ours"]), C.spread(timing["samples_s"]["torch"]))
        ratio_min = timing["ours_min_s"] / timing["torch_min_s"]
        rows.append(
            [
                name,
                op,
                shape,
                C.fmt_ms(timing["ours_s"]),
                C.fmt_ms(timing["torch_s"]),
                f"{ratio:.2f}",
                f"{ratio_min:.2f}",
                str(timing["inner"]),
                f"{noise * 100:.0f}%",
                detail,
            ]
        )
        results.append(
            {
                "name": name,
                "op": op,
                "shape": shape,
                "ours_ms": timing["ours_s"] * 1e3,
                "torch_ms": timing["torch_s"] * 1e3,
                "ratio": ratio,
                "ours_min_ms": timing["ours_min_s"] * 1e3,
                "torch_min_ms": timing["torch_min_s"] * 1e3,
                "ratio_of_minima": ratio_min,
                "calls_per_rep": timing["inner"],
                "check_rel_err": err,
                "check": detail,
                "samples_ms": {key: [s * 1e3 for s in v] for key, v in timing["samples_s"].items()},
            }
        )
        print(
            f"  {name:<14} ours {C.fmt_ms(timing['ours_s']):>9} ms  torch {C.fmt_ms(timing['torch_s']):>9} ms  "
            f"ratio {ratio:.2f}",
            flush=True,
        )

    print()
    C.print_table(
        ["case", "op", "shape", "ours ms", "torch ms", "ours/torch", "min/min", "calls/rep", "spread", "check"], rows
    )
    print()
    print(
        "ratio = median ours / median torch (below 1: ours faster); min/min = the same from each side's fastest "
        "repetition (less sensitive to other processes on the machine). spread = (max-min)/median of the worse side. "
        "check = largest of ||ours - torch|| / ||torch|| over output, dX, dW (loss and dW for softmax+CE), or the first step's losses."
    )
    by_name = {r["name"]: r for r in results if "ratio" in r}
    for name, target, what in (
        ("conv_target", TARGET_CONV, "Conv2D b128 16x16x32->64 fwd+bwd"),
        ("cifar10_cnn", TARGET_STEP, "cifar10_cnn training step"),
    ):
        if name in by_name:
            ratio = by_name[name]["ratio"]
            print(
                f"target (issue 4): {what} <= {target}x torch: measured {ratio:.2f}x -> "
                f"{'met' if ratio <= target else 'NOT met'}"
            )
    for name, target in ISSUE13_TARGETS.items():
        if name in by_name:
            ratio = by_name[name]["ratio"]
            print(
                f"target (issue 13): {name} <= {target}x torch: measured {ratio:.2f}x -> {'met' if ratio <= target else 'NOT met'}"
            )
    info["loadavg_end"] = C.load_average()
    print(f"load average at end {info['loadavg_end']}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"info": info, "repeats": args.repeats, "warmup": args.warmup, "results": results}, handle, indent=1
            )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
