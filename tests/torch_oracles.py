"""PyTorch as an independent oracle: all the torch reference code of the tests and benchmarks.

A hand-written expected value can share a bug with the code it checks, torch cannot. The tests
(``test_torch_parity``, ``test_normalization``, ``test_layers``) compare the library with what
the functions here return; the benchmarks (``benchmarks/bench_layers.py``, and through it
``bench_gflops.py``) take the layout conversions and the ``torch.nn`` translation of a network
from here. ``benchmarks/_common.py`` puts the repository root on ``sys.path``, so the scripts
import this module as ``tests.torch_oracles`` whether they are run from the root or from
``benchmarks/``.

- **torch is optional.** ``torch`` and ``TF`` (``torch.nn.functional``) are ``None`` when it is
  not installed; :data:`requires_torch` skips a test class then (reason :data:`SKIP_REASON`).
- **Settings.** :func:`push_torch_settings` / :func:`pop_torch_settings` set and restore
  torch's thread count and default dtype (for a test module's ``setUpModule`` /
  ``tearDownModule``).
- **Layouts.** The library is NHWC, with conv weights ``(kh, kw, c_in, c_out)`` (HWIO), biases
  ``(1, n)`` and dense weights ``(n_in, n_out)``; torch is NCHW, with conv weights
  ``(c_out, c_in, kh, kw)`` (OIHW), biases ``(n,)`` and linear weights ``(n_out, n_in)``. The
  converters take a NumPy array (and return a contiguous one) or a tensor (and permute it
  inside the autograd graph).
- **Functional oracles** (:func:`conv2d`, :func:`pool2d`, :func:`dense`, :func:`softmax`,
  :func:`cross_entropy`, :func:`nll_of_probabilities`, :class:`BatchNormOracle`): forward and,
  given an upstream gradient, backward of one op, from NumPy arrays in the library's layouts to
  NumPy arrays in the library's layouts. Their torch leaves are built in the library's layout
  and permuted inside the graph, so autograd hands back gradients already in the library's
  shapes. The ``*_nhwc`` functions are the same ops on tensors, inside a graph.
- **Networks.** :func:`torch_network` translates our layers (or a model) to a ``torch.nn``
  ``Sequential``, :func:`copy_weights` gives it our parameters, :func:`torch_gradients` reads
  its gradients back in our layouts; :func:`network` does the three around one forward and
  backward pass.
- :func:`assert_close`: the comparison of the parity tests (a relative tolerance per dtype).
"""

from __future__ import annotations

import unittest
from types import SimpleNamespace

import numpy as np

from neural_networks.layers import BatchNorm, Conv2D, Dropout, Flatten, FullyConnected, Pool2D

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
    TF = None

SKIP_REASON = 'needs torch: pip install -e ".[torch]"'  # the format of tests.helpers.missing
requires_torch = unittest.skipIf(torch is None, SKIP_REASON)

# ----------------------------------------------------------------------------- settings

_saved_settings: list[tuple] = []


def torch_dtype(dtype):
    """torch's dtype for a NumPy (or torch) floating dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]


def push_torch_settings(threads: int | None = None, default_dtype=None) -> None:
    """Set torch's intra-op thread count and default dtype (each only if given), keeping the
    current ones for :func:`pop_torch_settings`. Does nothing without torch."""
    if torch is None:
        return
    _saved_settings.append((torch.get_default_dtype(), torch.get_num_threads()))
    if default_dtype is not None:
        torch.set_default_dtype(torch_dtype(default_dtype))
    if threads is not None:
        torch.set_num_threads(int(threads))


def pop_torch_settings() -> None:
    """Restore the settings the last :func:`push_torch_settings` replaced."""
    if torch is None or not _saved_settings:
        return
    dtype, threads = _saved_settings.pop()
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- layouts

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
HWIO_TO_OIHW = (3, 2, 0, 1)
OIHW_TO_HWIO = (2, 3, 1, 0)


def _is_tensor(value) -> bool:
    return torch is not None and isinstance(value, torch.Tensor)


def _permute(value, axes):
    """A tensor permuted inside the graph, or a NumPy array transposed and made contiguous."""
    if _is_tensor(value):
        return value.permute(*axes)
    return np.ascontiguousarray(np.asarray(value).transpose(axes))


def to_numpy(value) -> np.ndarray:
    """A tensor's values (detached) or ``np.asarray(value)``."""
    if _is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def leaf(array):
    """A torch leaf tensor (a copy, same dtype) that records its gradient."""
    return torch.tensor(np.array(array), requires_grad=True)


def nhwc_to_nchw(value):
    """``(n, h, w, c)`` -> ``(n, c, h, w)``: array (made contiguous) or tensor (permuted)."""
    return _permute(value, NHWC_TO_NCHW)


def nchw_to_nhwc(value):
    """``(n, c, h, w)`` -> ``(n, h, w, c)``: array (made contiguous) or tensor (permuted)."""
    return _permute(value, NCHW_TO_NHWC)


def nchw(X: np.ndarray, requires_grad: bool = False):
    """NHWC NumPy array -> NCHW tensor in torch's default contiguous layout."""
    return torch.from_numpy(nhwc_to_nchw(X)).requires_grad_(requires_grad)


def to_nhwc(t) -> np.ndarray:
    """NCHW tensor -> NHWC NumPy array."""
    return nchw_to_nhwc(to_numpy(t))


def conv_weight_to_torch(W):
    """The library's ``(kh, kw, c_in, c_out)`` -> torch's ``(c_out, c_in, kh, kw)``."""
    return _permute(W, HWIO_TO_OIHW)


def conv_weight_from_torch(W):
    """torch's ``(c_out, c_in, kh, kw)`` -> the library's ``(kh, kw, c_in, c_out)``."""
    return _permute(W, OIHW_TO_HWIO)


def fc_weight_to_torch(W, flatten_from=None):
    """The library's ``(n_in, n_out)`` -> torch's ``(n_out, n_in)``. ``flatten_from=(h, w, c)``:
    the layer follows a Flatten of an NHWC map, while torch flattens NCHW: reorder the inputs."""
    if flatten_from is None:
        return _permute(W, (1, 0))
    h, w, c = flatten_from
    return _permute(W.reshape(h, w, c, -1), (3, 2, 0, 1)).reshape(W.shape[1], -1)


def fc_weight_from_torch(W, flatten_from=None):
    """The inverse of :func:`fc_weight_to_torch`: torch's ``(n_out, n_in)`` -> ``(n_in, n_out)``."""
    if flatten_from is None:
        return _permute(W, (1, 0))
    h, w, c = flatten_from
    return _permute(W.reshape(-1, c, h, w), (2, 3, 1, 0)).reshape(h * w * c, -1)


def bias_to_torch(b):
    """The library's ``(1, n)`` bias -> torch's ``(n,)`` (``None`` stays ``None``)."""
    if b is None:
        return None
    return b.reshape(-1) if _is_tensor(b) else np.ascontiguousarray(np.asarray(b).reshape(-1))


# ----------------------------------------------------------------------------- ops on tensors


def conv2d_nhwc(x, W, b, stride, pad):
    """``F.conv2d`` on library-layout tensors: ``x (n, h, w, c)``, ``W (kh, kw, c, f)``,
    ``b (1, f)`` or ``None``; ``pad`` explicit ``(rows, cols)`` per side, or a torch padding
    string (torch's ``"same"`` differs from the spec's for even kernels); returns NHWC. The
    weight is made contiguous inside the graph (torch's float64 kernel rejects some permuted
    ones, e.g. with one output channel: "slow_conv2d: grad_weight must be contiguous")."""
    out = TF.conv2d(nhwc_to_nchw(x), conv_weight_to_torch(W).contiguous(), bias_to_torch(b), stride=stride, padding=pad)
    return nchw_to_nhwc(out)


def pool2d_nhwc(x, mode, kernel, stride, pad, padding: str = "zeros"):
    """Max or average pooling of a library-layout tensor ``x (n, h, w, c)``, ``pad`` explicit
    ``(rows, cols)`` per side. ``padding="zeros"`` pads with zeros first and pools without
    padding: the library's (the spec's) semantics. ``padding="torch"`` passes ``pad`` to torch:
    max pooling then pads with -inf (it agrees with the library where a padded zero never wins,
    e.g. on positive input), average pooling counts the padding in the divisor
    (``count_include_pad=True``), as the library does."""
    xc = nhwc_to_nchw(x)
    if padding == "zeros":
        rows, cols = pad
        if (rows, cols) != (0, 0):
            xc = TF.pad(xc, (cols, cols, rows, rows))
        pad = 0
    elif padding != "torch":
        raise ValueError(f"padding must be 'zeros' or 'torch'; got {padding!r}")
    if mode == "max":
        out = TF.max_pool2d(xc, kernel, stride=stride, padding=pad)
    else:
        out = TF.avg_pool2d(xc, kernel, stride=stride, padding=pad, count_include_pad=True)
    return nchw_to_nhwc(out)


def linear(x, W, b):
    """``x @ W + b`` with the library's ``W (n_in, n_out)`` and ``b (1, n_out)`` (or ``None``)."""
    return TF.linear(x, fc_weight_to_torch(W), bias_to_torch(b))


def batch_norm_nhwc(x, gamma, beta, running_mean, running_var, training: bool, momentum: float, eps: float):
    """``F.batch_norm`` on a library-layout tensor (``(m, c)`` or NHWC, channels last), with
    ``gamma``/``beta`` ``(1, c)``; ``running_mean``/``running_var`` ``(c,)`` are updated in place
    in training mode."""
    xt = nhwc_to_nchw(x) if x.ndim == 4 else x
    out = TF.batch_norm(
        xt,
        running_mean,
        running_var,
        gamma.reshape(-1),
        beta.reshape(-1),
        training=training,
        momentum=momentum,
        eps=eps,
    )
    return nchw_to_nhwc(out) if x.ndim == 4 else out


# The library's activations with a torch counterpart: ``torch.<name>`` and a ``torch.nn`` module.
ACTIVATION_MODULES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def activate(z, activation: str | None):
    """The library's activation ``activation`` (by name) on a tensor, softmax over the last axis."""
    if activation in (None, "linear"):
        return z
    if activation == "softmax":
        return torch.softmax(z, dim=-1)
    if activation in ACTIVATION_MODULES:
        return getattr(torch, activation)(z)
    if activation in ("gelu", "gelu_tanh"):
        return TF.gelu(z, approximate="tanh" if activation == "gelu_tanh" else "none")
    raise ValueError(f"no torch oracle for activation {activation!r}")


# ----------------------------------------------------------------------------- functional oracles


def _backward(out, dY) -> None:
    if dY is not None:
        out.backward(torch.from_numpy(np.asarray(dY)))


def _grad(t):
    return None if t is None or t.grad is None else to_numpy(t.grad)


def conv2d(X, W, b, dY=None, stride: int = 1, pad=(0, 0), activation: str = "linear") -> SimpleNamespace:
    """Conv2D (+ activation) from library-layout arrays (``b`` may be ``None``): ``Y``, and with an
    upstream gradient ``dY`` on ``Y`` also ``dX``, ``dW``, ``db``. ``pad`` as in :func:`conv2d_nhwc`."""
    x, w = leaf(X), leaf(W)
    bias = None if b is None else leaf(b)
    out = activate(conv2d_nhwc(x, w, bias, stride, pad), activation)
    _backward(out, dY)
    return SimpleNamespace(Y=to_numpy(out), dX=_grad(x), dW=_grad(w), db=_grad(bias))


def pool2d(
    X, dY=None, mode: str = "max", kernel=(2, 2), stride: int = 2, pad=(0, 0), padding: str = "zeros"
) -> SimpleNamespace:
    """Pool2D of a library-layout array: ``Y`` and, given ``dY``, ``dX``. ``pad`` explicit
    ``(rows, cols)``; ``padding`` as in :func:`pool2d_nhwc` (default: the library's zeros)."""
    x = leaf(X)
    out = pool2d_nhwc(x, mode, kernel, stride, pad, padding=padding)
    _backward(out, dY)
    return SimpleNamespace(Y=to_numpy(out), dX=_grad(x))


def dense(X, W, b, dY=None, activation: str = "linear") -> SimpleNamespace:
    """FullyConnected (+ activation, softmax included): ``Y`` and, given ``dY``, ``dX``, ``dW``, ``db``."""
    x, w = leaf(X), leaf(W)
    bias = None if b is None else leaf(b)
    out = activate(linear(x, w, bias), activation)
    _backward(out, dY)
    return SimpleNamespace(Y=to_numpy(out), dX=_grad(x), dW=_grad(w), db=_grad(bias))


def softmax(Z, dY=None) -> SimpleNamespace:
    """Softmax over the last axis: ``Y`` and, given ``dY``, ``dX`` (the gradient at ``Z``)."""
    z = leaf(Z)
    out = torch.softmax(z, dim=-1)
    _backward(out, dY)
    return SimpleNamespace(Y=to_numpy(out), dX=_grad(z))


def cross_entropy(Z, labels, label_smoothing: float = 0.0) -> SimpleNamespace:
    """Mean cross-entropy of the softmax of logits ``Z (m, k)`` against integer ``labels``
    (``F.cross_entropy``): ``loss`` and ``dZ``."""
    z = leaf(Z)
    loss = TF.cross_entropy(z, torch.from_numpy(np.asarray(labels)), label_smoothing=label_smoothing)
    loss.backward()
    return SimpleNamespace(loss=to_numpy(loss), dZ=_grad(z))


def nll_of_probabilities(P, labels) -> SimpleNamespace:
    """Mean ``-log P[i, labels[i]]`` (``F.nll_loss`` of ``log P``): ``loss`` and ``dP``."""
    p = leaf(P)
    loss = TF.nll_loss(torch.log(p), torch.from_numpy(np.asarray(labels)))
    loss.backward()
    return SimpleNamespace(loss=to_numpy(loss), dP=_grad(p))


class BatchNormOracle:
    """``F.batch_norm`` over channels last with its own running statistics, which start as
    torch's do (mean 0, variance 1) and follow every training-mode call."""

    def __init__(self, channels: int, dtype, momentum: float = 0.1, eps: float = 1e-5) -> None:
        self.running_mean = torch.zeros(channels, dtype=torch_dtype(dtype))
        self.running_var = torch.ones(channels, dtype=torch_dtype(dtype))
        self.momentum, self.eps = momentum, eps

    def __call__(self, X, gamma, beta, dY=None, training: bool = True) -> SimpleNamespace:
        """``Y``, and given ``dY`` ``dX``, ``dgamma``, ``dbeta``, with the running statistics
        after the call (``running_mean``, ``running_var``, copies of shape ``(c,)``)."""
        x, g, b = leaf(X), leaf(gamma), leaf(beta)
        out = batch_norm_nhwc(x, g, b, self.running_mean, self.running_var, training, self.momentum, self.eps)
        _backward(out, dY)
        return SimpleNamespace(
            Y=to_numpy(out),
            dX=_grad(x),
            dgamma=_grad(g),
            dbeta=_grad(b),
            running_mean=to_numpy(self.running_mean).copy(),
            running_var=to_numpy(self.running_var).copy(),
        )


# ----------------------------------------------------------------------------- networks


def _layers_of(layers) -> list:
    """A model's layers, or the list given."""
    return list(getattr(layers, "layers", layers))


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return activation.name if activation is not None else "linear"


def _window_output(layer, h: int, w: int) -> tuple[int, int]:
    """Rows and columns out of a Conv2D's or Pool2D's sliding window."""
    return tuple(
        (size + 2 * pad - k) // layer.stride + 1 for size, pad, k in zip((h, w), layer.pad, layer.kernel_shape)
    )


if torch is not None:

    class _Scale(torch.nn.Module):
        """``x * factor``: a FullyConnected's ``output_scale``."""

        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = float(factor)

        def forward(self, x):
            return x * self.factor


def torch_network(layers, input_shape=(32, 32, 3), dtype=None):
    """The ``torch.nn.Sequential`` computing what our layers (a list, or a model) compute on one
    example of ``input_shape`` (``(h, w, c)``, or ``(n_features,)``), taking NCHW input.

    Conv2D -> ``Conv2d``; BatchNorm -> ``BatchNorm2d`` (``BatchNorm1d`` on flat input); Pool2D ->
    ``MaxPool2d`` / ``AvgPool2d``, after a ``ZeroPad2d`` where it pads (zeros, as the library
    does); Flatten -> ``Flatten``; FullyConnected -> ``Linear``. Activations relu, tanh and
    sigmoid become modules; Dropout -> ``Dropout`` (its own masks); softmax only as the last layer's and left out (the net returns the
    logits, which ``F.cross_entropy`` takes). A Linear after the Flatten of an ``(h, w, c)`` map
    keeps that shape in ``nhwc_flatten_from``: torch flattens NCHW, so :func:`copy_weights` and
    :func:`torch_gradients` reorder its inputs. ``dtype``: the parameters' (default torch's).
    """
    nn = torch.nn
    layers = _layers_of(layers)
    modules, shape, flatten_from = [], tuple(int(s) for s in input_shape), None

    def spatial(layer):
        if len(shape) != 3:
            raise ValueError(f"{layer!r} needs an (h, w, c) input; got one of shape {shape}")
        return shape

    for i, layer in enumerate(layers):
        if isinstance(layer, Conv2D):
            h, w, c = spatial(layer)
            modules.append(
                nn.Conv2d(
                    c, layer.n_out, layer.kernel_shape, stride=layer.stride, padding=layer.pad, bias=layer.use_bias
                )
            )
            shape = _window_output(layer, h, w) + (layer.n_out,)
        elif isinstance(layer, BatchNorm):
            if flatten_from is not None:  # its features would be in another order than torch's
                raise ValueError("no torch counterpart for a BatchNorm right after the Flatten of an (h, w, c) map")
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            module = norm(shape[-1], eps=layer.eps, momentum=layer.momentum)
            if not getattr(layer, "scale", True):  # no gamma: torch's weight stays 1, untrained (as airbench does)
                module.weight.requires_grad_(False)
            modules.append(module)
        elif isinstance(layer, Pool2D):
            h, w, c = spatial(layer)
            rows, cols = layer.pad
            if (rows, cols) != (0, 0):  # torch's own padding of max pooling is -inf
                modules.append(nn.ZeroPad2d((cols, cols, rows, rows)))
            pool = nn.MaxPool2d if layer.mode == "max" else nn.AvgPool2d
            modules.append(pool(layer.kernel_shape, stride=layer.stride))
            shape = _window_output(layer, h, w) + (c,)
        elif isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.p))  # other random masks than ours: same work, other bits
        elif isinstance(layer, Flatten):
            if layer.keep_dim != "first":
                raise ValueError(f"no torch counterpart for Flatten(keep_dim={layer.keep_dim!r})")
            modules.append(nn.Flatten())
            flatten_from = shape if len(shape) == 3 else None
            shape = (int(np.prod(shape)),)
        elif isinstance(layer, FullyConnected):
            if len(shape) != 1:
                raise ValueError(f"{layer!r} needs a flat input; got one of shape {shape}")
            module = nn.Linear(shape[0], layer.n_out, bias=layer.use_bias)
            module.nhwc_flatten_from = flatten_from
            modules.append(module)
            if getattr(layer, "output_scale", 1.0) != 1.0:
                modules.append(_Scale(layer.output_scale))
            flatten_from, shape = None, (layer.n_out,)
        else:
            raise ValueError(f"no torch counterpart for {layer!r}")
        activation = _activation_name(layer)
        if activation in ACTIVATION_MODULES:
            modules.append(getattr(nn, ACTIVATION_MODULES[activation])())
        elif activation in ("gelu", "gelu_tanh"):
            modules.append(nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none"))
        elif activation == "softmax" and i != len(layers) - 1:
            raise ValueError("softmax only as the last layer's activation (F.cross_entropy applies it)")
        elif activation not in ("linear", "softmax"):
            raise ValueError(f"no torch counterpart for activation {activation!r}")
    net = nn.Sequential(*modules)
    return net if dtype is None else net.to(torch_dtype(dtype))


def _stateful_pairs(layers, net) -> list[tuple]:
    """``(index, our layer, torch module)`` of every Conv2D, FullyConnected and BatchNorm, in order."""
    nn = torch.nn
    ours = [
        (i, layer)
        for i, layer in enumerate(_layers_of(layers))
        if isinstance(layer, (Conv2D, FullyConnected, BatchNorm))
    ]
    theirs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d))]
    if len(ours) != len(theirs):
        raise ValueError(
            f"the networks differ in their number of conv/linear/batch-norm layers: "
            f"{len(ours)} ours, {len(theirs)} torch"
        )
    return [(i, layer, module) for (i, layer), module in zip(ours, theirs)]


def _weight_to_torch(layer, module, W):
    if isinstance(layer, Conv2D):
        return conv_weight_to_torch(W)
    return fc_weight_to_torch(W, getattr(module, "nhwc_flatten_from", None))


def copy_weights(layers, net) -> None:
    """Copy our parameters (after a forward pass created them) into the torch network made by
    :func:`torch_network`: conv and dense weights and biases in torch's layouts, batch norm's
    ``gamma``/``beta`` and running statistics."""
    with torch.no_grad():
        for _, layer, module in _stateful_pairs(layers, net):
            params = layer.parameters
            if isinstance(layer, BatchNorm):
                gamma = params["gamma"] if "gamma" in params else np.ones_like(params["beta"])
                module.weight.copy_(torch.from_numpy(bias_to_torch(gamma)))
                module.bias.copy_(torch.from_numpy(bias_to_torch(params["beta"])))
                module.running_mean.copy_(torch.from_numpy(bias_to_torch(layer.buffers["running_mean"])))
                module.running_var.copy_(torch.from_numpy(bias_to_torch(layer.buffers["running_var"])))
                continue
            module.weight.copy_(torch.from_numpy(_weight_to_torch(layer, module, params["W"])))
            b = params.get("b")
            if (module.bias is None) != (b is None):
                raise ValueError(f"{layer!r}: one side has a bias, the other not")
            if b is not None:
                module.bias.copy_(torch.from_numpy(bias_to_torch(b)))


def torch_gradients(layers, net) -> dict[int, dict[str, np.ndarray]]:
    """The torch network's parameter gradients in our layouts and names, by our layer's index:
    ``{i: {"W": ..., "b": ...}}`` (``{"gamma": ..., "beta": ...}`` for batch norm)."""
    out = {}
    for i, layer, module in _stateful_pairs(layers, net):
        keys = ("gamma", "beta") if isinstance(layer, BatchNorm) else ("W", "b")
        grads = {}
        if module.weight.grad is not None:
            weight = to_numpy(module.weight.grad)
            if isinstance(layer, BatchNorm):
                grads[keys[0]] = weight.reshape(1, -1)
            elif isinstance(layer, Conv2D):
                grads[keys[0]] = conv_weight_from_torch(weight)
            else:
                grads[keys[0]] = fc_weight_from_torch(weight, getattr(module, "nhwc_flatten_from", None))
        if module.bias is not None and module.bias.grad is not None:
            grads[keys[1]] = to_numpy(module.bias.grad).reshape(1, -1)
        out[i] = grads
    return out


def network(layers, X, labels=None, dY=None, label_smoothing: float = 0.0, training: bool = True) -> SimpleNamespace:
    """One forward and backward pass of our layers' (or model's) torch translation, with our
    current parameters, on ``X`` (NHWC or ``(m, n)``, its dtype the parameters'): backward from
    the mean cross-entropy of the logits against integer ``labels`` or, without labels, from
    ``dY`` on the output.

    Returns ``output`` (softmax probabilities if the last layer's activation is softmax, else the
    net's output), ``loss`` (``None`` without labels), ``dX`` (library layout) and
    ``gradients`` (see :func:`torch_gradients`).
    """
    layers = _layers_of(layers)
    X = np.asarray(X)
    net = torch_network(layers, X.shape[1:], dtype=X.dtype)
    copy_weights(layers, net)
    net.train(training)
    x = nchw(X, requires_grad=True) if X.ndim == 4 else torch.tensor(X, requires_grad=True)
    logits = net(x)
    out = torch.softmax(logits, dim=-1) if layers and _activation_name(layers[-1]) == "softmax" else logits
    loss = None
    if labels is not None:
        loss = TF.cross_entropy(logits, torch.from_numpy(np.asarray(labels)), label_smoothing=label_smoothing)
        loss.backward()
    else:
        _backward(out, dY)
    dX = None if x.grad is None else (to_nhwc(x.grad) if X.ndim == 4 else to_numpy(x.grad))
    return SimpleNamespace(
        output=to_numpy(out),
        loss=None if loss is None else to_numpy(loss),
        dX=dX,
        gradients=torch_gradients(layers, net),
    )


# ----------------------------------------------------------------------------- comparison

RTOL = {np.float64: 1e-10, np.float32: 1e-5}


def assert_close(actual, expected, dtype=np.float64, what: str = "", reshape: bool = False) -> None:
    """``actual`` (the library's) against ``expected`` (torch's, an array or a tensor): relative
    tolerance ``RTOL[dtype]`` plus an absolute floor of the same times the largest expected
    magnitude (at least 1), so that entries that cancel to ~0 are not judged relatively. The
    shapes must agree, unless ``reshape``: then ``expected`` is reshaped to ``actual``'s shape."""
    actual = np.asarray(actual)
    expected = to_numpy(expected)
    if reshape:
        expected = expected.reshape(actual.shape)
    elif actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != torch shape {expected.shape}")
    rtol = RTOL[np.dtype(dtype).type]
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


# ----------------------------------------------------------------------------- optimizers


def optimizer_steps(make_optimizer, params: dict, grads_per_step: list, groups: list) -> dict:
    """``params`` (name -> float64 array) after one ``torch.optim`` step per entry of
    ``grads_per_step`` (name -> gradient). ``groups``: torch param-group dicts whose ``"params"``
    are parameter names (other keys are the group's options); ``make_optimizer(torch_groups)``
    builds the optimizer. Returns name -> NumPy array."""
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    torch_groups = [{**g, "params": [tensors[name] for name in g["params"]]} for g in groups]
    optimizer = make_optimizer(torch_groups)
    for grads in grads_per_step:
        optimizer.zero_grad()
        for name, tensor in tensors.items():
            tensor.grad = torch.tensor(grads[name])
        optimizer.step()
    return {k: t.detach().numpy() for k, t in tensors.items()}


def scheduled_lrs(lr: float, make_scheduler, steps: int) -> list[float]:
    """The learning rate a ``torch.optim.lr_scheduler`` (``make_scheduler(optimizer)``) gives an
    SGD optimizer with base ``lr`` before each of ``steps`` steps."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs
