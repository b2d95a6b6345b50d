"""ONNX export: a :class:`~neural_networks.models.NeuralNetwork` as an ONNX graph, built node by
node with ``onnx.helper`` (no deep-learning framework involved).

The graph (opset :data:`OPSET`, IR version :data:`IR_VERSION`, so that runtimes a few years old
load it too) computes what :meth:`NeuralNetwork.predict` returns for a float32 batch:

* input ``input``: float32 in the library's own layout, ``(batch, features)`` for a network that
  starts with a dense layer, NHWC ``(batch, rows, cols, channels)`` for one that starts with a
  convolution or pooling. ``batch`` is symbolic; so are ``rows`` and ``cols`` unless
  ``input_shape`` fixes them (a model file does not record its image size, only its channels);
* output ``output``: the last layer's output exactly as ``predict`` gives it, in the library's
  layout: for the usual classifier, which ends in a softmax layer, the class probabilities
  ``(batch, classes)`` (not logits); a network ending on image maps gives NHWC maps.

Layouts. ONNX's ``Conv``, ``MaxPool``, ``AveragePool`` and 4-D ``BatchNormalization`` work on NCHW.
The graph transposes NHWC -> NCHW once, before the first such layer, keeps NCHW through the
convolution / pooling / batch-norm / activation layers that follow, and transposes back to NHWC
before a flatten (the library flattens in NHWC order, rows then columns then channels, and the
dense weights after it expect that order) or before the output.

One function per layer kind (:data:`_LAYERS`) and one per activation (:data:`_ACTIVATIONS`)
appends its nodes; a layer type, activation or option without an ONNX form raises a one-line
:class:`~neural_networks.export.ExportError` naming it. Left out of the graph, as ``predict`` in
evaluation mode does: dropout (the identity there) and batch norm's batch statistics (the
running ones are used). Not part of the model, so not in the graph either: the data set's input
preprocessing (e.g. standardisation) and test-time augmentation (``tta``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..activations import ACTIVATIONS, GELUTanh
from ..layers import BatchNorm, Conv2D, Dropout, Flatten, FullyConnected, Pool2D
from ..serialization import model_config
from ._common import ExportError, check_exportable, require

__all__ = ["OPSET", "IR_VERSION", "INPUT", "OUTPUT", "to_onnx", "onnx_bytes"]

#: Opset 17 has every operator used here (Softmax over one axis: 13; Pad with a pads input: 11;
#: BatchNormalization without training outputs: 15). ONNX's own Gelu operator needs opset 20,
#: so GELU is built from Erf / Tanh formulas instead.
OPSET = 17
#: The IR version that goes with opset 17 (onnx.helper would stamp its own, newer one, which
#: older runtimes refuse).
IR_VERSION = 8
#: The name of the graph's input.
INPUT = "input"
#: The name of the graph's output.
OUTPUT = "output"
BATCH = "batch"  # the symbolic batch axis in the tracked shapes and the graph's input / output
_TO_NCHW = (0, 3, 1, 2)
_TO_NHWC = (0, 2, 3, 1)
_MAX_BYTES = 2**31 - 1  # protobuf's limit on one serialised message


@dataclass
class _Tensor:
    """A tensor of the graph being built: its ``name``, its ``shape`` in the library's layout
    (NHWC for images; each axis :data:`BATCH`, an int, or ``None`` when not known here) and
    whether the ONNX tensor holds that rank-4 shape in NCHW order instead (``nchw``)."""

    name: str
    shape: tuple
    nchw: bool = False


class _Graph:
    """The nodes and initializers of the graph being built, with unique tensor names."""

    def __init__(self, onnx) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = {INPUT, OUTPUT}

    def unique(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._names:
            name, n = f"{hint}.{n}", n + 1
        self._names.add(name)
        return name

    def constant(self, hint: str, value, dtype=np.float32, doc: str = "") -> str:
        """An initializer holding ``value`` as ``dtype`` (the graph computes in float32, as
        ``predict`` does on float32 input whatever the parameters' dtype); returns its name."""
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        tensor = self.onnx.numpy_helper.from_array(array, name=self.unique(hint))
        if doc:
            tensor.doc_string = doc
        self.initializers.append(tensor)
        return tensor.name

    def node(self, op: str, inputs: list[str], hint: str, **attributes) -> str:
        """Append one ``op`` node; returns the name of its (single) output, also the node's name."""
        output = self.unique(hint)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


# -- shapes and layouts ------------------------------------------------------------------------
def _format_shape(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _product(dims) -> int | None:
    return math.prod(dims) if all(isinstance(d, int) for d in dims) else None


def _check_rank(x: _Tensor, rank: int, layout: str, where: str) -> None:
    if len(x.shape) != rank:
        raise ExportError(
            f"{where}: expects input of rank {rank} {layout}, but the layers before it give {_format_shape(x.shape)}"
        )


def _check_size(got, expected: int, what: str, where: str) -> None:
    if got is not None and got != expected:
        raise ExportError(f"{where}: its parameters are for {expected} {what}, but its input has {got}")


def _window_output(x: _Tensor, kernel_shape, pad, stride: int, where: str) -> tuple:
    """Output rows and columns of a sliding window, as the library computes them (floor), with
    its check that the kernel fits the padded input; ``None`` for an axis not known here."""
    out = []
    for axis, (size, k, p) in enumerate(zip(x.shape[1:3], kernel_shape, pad)):
        if size is None:
            out.append(None)
            continue
        if k > size + 2 * p:
            what = "rows" if axis == 0 else "cols"
            raise ExportError(
                f"{where}: kernel {tuple(kernel_shape)} is larger than the padded input: {size} {what} + 2*{p} padding"
            )
        out.append((size + 2 * p - k) // stride + 1)
    return tuple(out)


def _to_nchw(g: _Graph, x: _Tensor, hint: str) -> _Tensor:
    if x.nchw:
        return x
    return _Tensor(g.node("Transpose", [x.name], f"{hint}.to_nchw", perm=list(_TO_NCHW)), x.shape, nchw=True)


def _to_nhwc(g: _Graph, x: _Tensor, hint: str) -> _Tensor:
    if not x.nchw:
        return x
    return _Tensor(g.node("Transpose", [x.name], f"{hint}.to_nhwc", perm=list(_TO_NHWC)), x.shape, nchw=False)


def _parameter(layer, key: str) -> np.ndarray:
    try:
        return np.asarray(layer.parameters[key])
    except KeyError:
        raise ExportError(f"{layer.where}: has no parameter {key!r} (it is made on the first forward pass)") from None


def _buffer(layer, key: str) -> np.ndarray:
    try:
        return np.asarray(layer.buffers[key])
    except KeyError:
        raise ExportError(f"{layer.where}: has no {key} (batch norm's running statistics)") from None


# -- activations: (graph, x, hint) -> output name; element-wise but softmax -----------------
def _same(op: str):
    def build(g: _Graph, x: _Tensor, hint: str) -> str:
        return g.node(op, [x.name], f"{hint}.{op.lower()}")

    return build


def _softmax(g: _Graph, x: _Tensor, hint: str) -> str:
    # The library's softmax runs over its layout's last axis: the channels of NHWC maps, which are
    # axis 1 of the NCHW tensor here.
    return g.node("Softmax", [x.name], f"{hint}.softmax", axis=1 if x.nchw else -1)


def _gelu(g: _Graph, x: _Tensor, hint: str) -> str:
    """Exact GELU, ``x * (1 + erf(x / sqrt(2))) / 2`` (ONNX's Gelu operator needs opset 20)."""
    scaled = g.node("Mul", [x.name, g.constant(f"{hint}.sqrt1_2", math.sqrt(0.5))], f"{hint}.gelu_scaled")
    erf = g.node("Erf", [scaled], f"{hint}.gelu_erf")
    one_plus = g.node("Add", [erf, g.constant(f"{hint}.one", 1.0)], f"{hint}.gelu_one_plus")
    half_x = g.node("Mul", [x.name, g.constant(f"{hint}.half", 0.5)], f"{hint}.gelu_half_x")
    return g.node("Mul", [half_x, one_plus], f"{hint}.gelu")


def _gelu_tanh(g: _Graph, x: _Tensor, hint: str) -> str:
    """GELU's tanh approximation as the library computes it: ``x * sigmoid(2u)`` with
    ``u = sqrt(2/pi) (z + 0.044715 z^3)`` and ``z = clip(x, -1e4, 1e4)`` (``sigmoid(2u)`` equals
    ``(1 + tanh(u)) / 2`` but does not cancel for negative ``x``; the clip keeps ``z^3`` finite)."""
    cap = GELUTanh._CAP
    bounds = [g.constant(f"{hint}.clip_min", -cap), g.constant(f"{hint}.clip_max", cap)]
    z = g.node("Clip", [x.name, *bounds], f"{hint}.gelu_tanh_clip")
    z2 = g.node("Mul", [z, z], f"{hint}.gelu_tanh_z2")
    cz2 = g.node("Mul", [z2, g.constant(f"{hint}.c", GELUTanh._C)], f"{hint}.gelu_tanh_cz2")
    poly = g.node("Add", [cz2, g.constant(f"{hint}.one", 1.0)], f"{hint}.gelu_tanh_poly")  # 1 + c z^2
    cubic = g.node("Mul", [z, poly], f"{hint}.gelu_tanh_cubic")  # z + c z^3
    two_u = g.node("Mul", [cubic, g.constant(f"{hint}.two_k", 2.0 * GELUTanh._K)], f"{hint}.gelu_tanh_2u")
    s = g.node("Sigmoid", [two_u], f"{hint}.gelu_tanh_sigmoid")
    return g.node("Mul", [x.name, s], f"{hint}.gelu_tanh")


#: Every activation of :data:`~neural_networks.activations.ACTIVATIONS` by name; ``None``: the
#: identity, no node.
_ACTIVATIONS = {
    "linear": None,
    "sigmoid": _same("Sigmoid"),
    "tanh": _same("Tanh"),
    "arctan": _same("Atan"),
    "relu": _same("Relu"),
    "softmax": _softmax,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
}


def _activation(g: _Graph, activation, x: _Tensor, hint: str, where: str) -> _Tensor:
    name = getattr(activation, "name", "") or type(activation).__name__
    # Only the registered class itself: a subclass (or an unregistered activation) may compute
    # something else under the same name.
    known = name in _ACTIVATIONS and name in ACTIVATIONS and type(activation) is ACTIVATIONS.get(name)
    if not known:
        raise ExportError(
            f"{where}: activation {name!r} ({type(activation).__name__}) has no ONNX export "
            f"(supported: {', '.join(sorted(_ACTIVATIONS))})"
        )
    build = _ACTIVATIONS[name]
    if build is None:
        return x
    return _Tensor(build(g, x, hint), x.shape, x.nchw)


# -- layers: (graph, layer, x, hint) -> output ----------------------------------------------
def _fully_connected(g: _Graph, layer: FullyConnected, x: _Tensor, hint: str) -> _Tensor:
    """``activation(s * (X @ W + b))``: ``X (batch, n_in), W (n_in, n_out)`` as one Gemm (the
    library's ``W`` is already ONNX's ``B`` layout), then the output scale, then the activation."""
    _check_rank(x, 2, "(batch, features)", layer.where)
    W = _parameter(layer, "W")
    _check_size(x.shape[1], W.shape[0], "input features", layer.where)
    inputs = [x.name, g.constant(f"{hint}.W", W)]
    if layer.use_bias:
        inputs.append(g.constant(f"{hint}.b", _parameter(layer, "b").reshape(-1)))
    y = g.node("Gemm", inputs, f"{hint}.gemm")
    if layer.output_scale != 1.0:
        # A Mul after the bias, in the library's order (Gemm's alpha would scale before it).
        y = g.node("Mul", [y, g.constant(f"{hint}.output_scale", layer.output_scale)], f"{hint}.output_scale")
    return _activation(g, layer.activation, _Tensor(y, (x.shape[0], int(W.shape[1]))), hint, layer.where)


def _conv2d(g: _Graph, layer: Conv2D, x: _Tensor, hint: str) -> _Tensor:
    """Cross-correlation with the layer's resolved padding: ``W (kh, kw, c_in, c_out)`` becomes
    ONNX's ``(c_out, c_in, kh, kw)``, ``pad (rows, cols)`` the explicit ``pads`` (``'same'`` is
    resolved as the library does, ``(k - 1) // 2`` per side, which is not ONNX's ``SAME_UPPER``
    for even kernels)."""
    _check_rank(x, 4, "(batch, rows, cols, channels)", layer.where)
    W = _parameter(layer, "W")
    _check_size(x.shape[3], W.shape[2], "input channels", layer.where)
    out_hw = _window_output(x, layer.kernel_shape, layer.pad, layer.stride, layer.where)
    x = _to_nchw(g, x, hint)
    inputs = [
        x.name,
        g.constant(
            f"{hint}.W", W.transpose(3, 2, 0, 1), doc="the library's W (kh, kw, c_in, c_out) as (c_out, c_in, kh, kw)"
        ),
    ]
    if layer.use_bias:
        inputs.append(g.constant(f"{hint}.b", _parameter(layer, "b").reshape(-1)))
    ph, pw = layer.pad
    y = g.node(
        "Conv",
        inputs,
        f"{hint}.conv",
        kernel_shape=list(layer.kernel_shape),
        strides=[layer.stride, layer.stride],
        pads=[ph, pw, ph, pw],  # [top, left, bottom, right]: the library pads each axis symmetrically
    )
    out = _Tensor(y, (x.shape[0], *out_hw, int(W.shape[3])), nchw=True)
    return _activation(g, layer.activation, out, hint, layer.where)


def _pool2d(g: _Graph, layer: Pool2D, x: _Tensor, hint: str) -> _Tensor:
    """Max or average pooling with the library's zero padding (see the two comments below)."""
    _check_rank(x, 4, "(batch, rows, cols, channels)", layer.where)
    out_hw = _window_output(x, layer.kernel_shape, layer.pad, layer.stride, layer.where)
    x = _to_nchw(g, x, hint)
    ph, pw = layer.pad
    window = {"kernel_shape": list(layer.kernel_shape), "strides": [layer.stride, layer.stride]}
    if layer.mode == "max":
        source = x.name
        if ph or pw:
            # The library pads max-pooling windows with zeros (as the spec does), so a border window
            # of negative values gives 0; ONNX MaxPool's own padding never wins (it acts as -inf).
            # Hence an explicit zero Pad (NCHW: [n, c, top, left, n, c, bottom, right]).
            pads = g.constant(f"{hint}.pads", [0, 0, ph, pw, 0, 0, ph, pw], dtype=np.int64)
            source = g.node("Pad", [source, pads], f"{hint}.pad", mode="constant")
        y = g.node("MaxPool", [source], f"{hint}.maxpool", **window)
    elif layer.mode == "average":
        # The library divides every window by kh*kw, padded zeros included: count_include_pad=1.
        y = g.node("AveragePool", [x.name], f"{hint}.avgpool", pads=[ph, pw, ph, pw], count_include_pad=1, **window)
    else:
        raise ExportError(f"{layer.where}: pooling mode {layer.mode!r} has no ONNX export (supported: max, average)")
    return _Tensor(y, (x.shape[0], *out_hw, x.shape[3]), nchw=True)


def _batchnorm(g: _Graph, layer: BatchNorm, x: _Tensor, hint: str) -> _Tensor:
    """Evaluation-mode batch norm, ``gamma * (X - running_mean) / sqrt(running_var + eps) + beta``
    per feature (2-D input) or channel (NHWC maps, NCHW here); ``scale=False`` has no ``gamma``:
    ones. ``momentum`` only matters while training."""
    rank = len(x.shape)
    if rank not in (2, 4):
        raise ExportError(
            f"{layer.where}: batch norm of rank-{rank} input {_format_shape(x.shape)} has no ONNX export "
            "(supported: (batch, features) and (batch, rows, cols, channels))"
        )
    beta = _parameter(layer, "beta").reshape(-1)
    c = beta.size
    _check_size(x.shape[-1], c, "features (last axis)", layer.where)
    gamma = _parameter(layer, "gamma").reshape(-1) if layer.scale else np.ones(c)
    mean = _buffer(layer, "running_mean").reshape(-1)
    var = _buffer(layer, "running_var").reshape(-1)
    if rank == 4:
        x = _to_nchw(g, x, hint)
    inputs = [
        x.name,
        g.constant(f"{hint}.gamma" if layer.scale else f"{hint}.ones", gamma),
        g.constant(f"{hint}.beta", beta),
        g.constant(f"{hint}.running_mean", mean),
        g.constant(f"{hint}.running_var", var),
    ]
    y = g.node("BatchNormalization", inputs, f"{hint}.batchnorm", epsilon=float(layer.eps))
    return _activation(g, layer.activation, _Tensor(y, x.shape, x.nchw), hint, layer.where)


def _flatten(g: _Graph, layer: Flatten, x: _Tensor, hint: str) -> _Tensor:
    """``keep_dim="first"``: ``(batch, ...) -> (batch, prod(...))``; ``"last"``:
    ``(..., c) -> (prod(...), c)``; both in NHWC order (see the module docstring)."""
    if layer.keep_dim == -1:
        raise ExportError(
            f"{layer.where}: Flatten keep_dim=-1 folds the whole batch into one row, so its output depends on "
            "how many examples are predicted together; it has no per-example ONNX export"
        )
    if layer.keep_dim not in ("first", "last"):
        raise ExportError(f"{layer.where}: Flatten keep_dim={layer.keep_dim!r} has no ONNX export")
    x = _to_nhwc(g, x, hint)
    rank = len(x.shape)
    if rank <= 2:  # already 2-D: both forms are the identity
        return x
    if layer.keep_dim == "first":
        y = g.node("Flatten", [x.name], f"{hint}.flatten", axis=1)
        return _Tensor(y, (x.shape[0], _product(x.shape[1:])))
    y = g.node("Flatten", [x.name], f"{hint}.flatten", axis=rank - 1)
    return _Tensor(y, (None, x.shape[-1]))  # the first axis mixes the batch with the others


def _dropout(g: _Graph, layer: Dropout, x: _Tensor, hint: str) -> _Tensor:
    return x  # the identity in evaluation mode, where predict runs


#: The exporter of each layer class (the exact class: a subclass may compute something else).
_LAYERS = {
    FullyConnected: _fully_connected,
    Conv2D: _conv2d,
    Pool2D: _pool2d,
    BatchNorm: _batchnorm,
    Flatten: _flatten,
    Dropout: _dropout,
}


# -- the model -----------------------------------------------------------------------------
def infer_input_shape(model) -> tuple:
    """The input shape (without the batch axis) that the first layers fix: ``(n_in,)`` before a
    dense layer, ``(None, None, channels)`` before convolutions / pooling (the image size is not
    recorded in a model; channels ``None`` too for pooling only). Dropout and batch norm keep
    their input's shape and are looked through."""
    channels, image = None, False
    for layer in model.layers:
        if type(layer) is FullyConnected and not image:
            return (_parameter(layer, "W").shape[0],)
        if type(layer) is Conv2D:
            return (None, None, int(_parameter(layer, "W").shape[2]))
        if type(layer) is Pool2D:
            image = True
        elif type(layer) is BatchNorm:
            channels = channels or layer.n_in
        elif type(layer) is not Dropout:
            break
    if image:  # pooling only: any channel count goes, unless batch norm fixed it
        return (None, None, None if channels is None else int(channels))
    raise ExportError(
        "cannot tell the network's input shape from its first layers; pass input_shape "
        "(e.g. (rows, cols, channels) or (features,))"
    )


def _check_input_shape(input_shape) -> tuple:
    shape = tuple(input_shape)
    if not shape or not all(
        d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0) for d in shape
    ):
        raise ExportError(
            f"input_shape must be positive ints (None for a free axis) without the batch axis; got {input_shape!r}"
        )
    return tuple(None if d is None else int(d) for d in shape)


def _input_dims(shape: tuple) -> list:
    """Graph input dimensions: the symbolic batch, and free image axes named ``rows``, ``cols``
    (and ``channels`` for a network of pooling only)."""
    names = ("rows", "cols", "channels") if len(shape) == 4 else ()
    return [BATCH] + [
        d if d is not None else (names[i] if i < len(names) else f"dim{i + 1}") for i, d in enumerate(shape[1:])
    ]


def to_onnx(model, input_shape=None):
    """The ``onnx.ModelProto`` of ``model`` (see the module docstring), checked with
    ``onnx.checker.check_model(full_check=True)``. ``input_shape``: the input without the batch
    axis, e.g. ``(32, 32, 3)`` to fix the image size (default: from the first layers, with free
    rows and cols). Raises :class:`~neural_networks.export.ExportError` for what ONNX cannot
    represent, naming the layer and option."""
    onnx = require("onnx", "onnx", "ONNX export")
    require("onnx.numpy_helper", "onnx", "ONNX export")
    from .. import __version__

    check_exportable(model)
    shape = (BATCH, *(_check_input_shape(input_shape) if input_shape is not None else infer_input_shape(model)))
    g = _Graph(onnx)
    x = _Tensor(INPUT, shape)
    for i, layer in enumerate(model.layers):
        build = _LAYERS.get(type(layer))
        if build is None:
            raise ExportError(
                f"{layer.where}: layer type {type(layer).__name__} has no ONNX export "
                f"(supported: {', '.join(cls.name for cls in _LAYERS)})"
            )
        x = build(g, layer, x, f"layers.{i}")
    x = _to_nhwc(g, x, "output")
    if g.nodes and g.nodes[-1].output[0] == x.name:
        g.nodes[-1].output[0] = OUTPUT
    else:  # the network is the identity on this input (dropout only, ...)
        g.nodes.append(onnx.helper.make_node("Identity", [x.name], [OUTPUT], name="output"))

    float32 = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        g.nodes,
        "neural_networks",
        [onnx.helper.make_tensor_value_info(INPUT, float32, _input_dims(shape))],
        [onnx.helper.make_tensor_value_info(OUTPUT, float32, list(x.shape))],
        initializer=g.initializers,
    )
    layout = "(batch, rows, cols, channels) NHWC" if len(shape) == 4 else "(batch, features)"
    proto = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="neural_networks",
        producer_version=__version__,
        doc_string=(
            f"neural_networks network: input {INPUT!r} float32 {layout}; output {OUTPUT!r}: what "
            "NeuralNetwork.predict returns (a softmax output layer's class probabilities)"
        ),
    )
    onnx.helper.set_model_props(proto, {"neural_networks.config": json.dumps(model_config(model))})
    if proto.ByteSize() > _MAX_BYTES:
        raise ExportError(f"the network's ONNX graph is {proto.ByteSize()} bytes, over protobuf's 2 GiB limit")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def onnx_bytes(model, input_shape=None) -> bytes:
    """:func:`to_onnx` serialised: the bytes of a ``.onnx`` file."""
    return to_onnx(model, input_shape=input_shape).SerializeToString()
