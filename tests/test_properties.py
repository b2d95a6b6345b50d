"""Property-based tests (hypothesis): untrusted files never hang and never raise anything but the
library's clear errors; config overrides end in success or ``ConfigError``; convolution and
pooling output shapes and gradients over random geometries.

Profiles: ``ci`` (25 examples a property, derandomized so a failure reproduces; chosen when
``$CI`` is set) and ``dev`` (100 examples, random; the default). ``HYPOTHESIS_PROFILE`` overrides the choice, e.g.
``HYPOTHESIS_PROFILE=hunt`` (2,000 examples) to search for bugs.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import yaml

from neural_networks.experiments import ConfigError, apply_overrides, dump_config, load_config, validate_config
from neural_networks.functional import reference
from neural_networks.datasets import DataFormatError, DataNotFoundError, fashion_mnist, idx, image_folder
from neural_networks.gradcheck import relative_error
from neural_networks.layers import Conv2D, FullyConnected, Pool2D
from neural_networks.models import NeuralNetwork
from neural_networks.optimizers import SGD

from .helpers import distinct_values, layer_to_float64, numerical_gradient, pytest_modules, pytest_only, randn
from .test_datasets import make_tree, tar_tree, write_idx, zip_tree

# pytest-style tests (fixtures, parametrize) using hypothesis (both in the test extra): skipped,
# naming the package and the extra, where either is missing
pytest, hypothesis, st = pytest_modules("hypothesis", "hypothesis.strategies")
HealthCheck, given, settings = hypothesis.HealthCheck, hypothesis.given, hypothesis.settings
load_tests = pytest_only(__name__)  # python -m unittest finds no test here: it reports a skip saying so

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("hunt", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

CALL_TIMEOUT = 20.0  # seconds one loader call may take on a mutated file before it counts as a hang
CLEAR_ERRORS = (DataFormatError, DataNotFoundError, ConfigError, ValueError)


def run_with_deadline(func, *args, timeout: float = CALL_TIMEOUT, **kwargs):
    """``("ok", result)`` or ``("error", exception)``; fails the test if ``func`` does not return
    within ``timeout`` seconds (run in a daemon thread so that a hang cannot block the suite)."""
    box = {}

    def target():
        try:
            box["result"] = ("ok", func(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - classified by the caller
            box["result"] = ("error", err)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        pytest.fail(f"{getattr(func, '__name__', func)} did not return within {timeout} s (a hang)")
    return box["result"]


def check_outcome(outcome, path: Path | None = None, allowed=CLEAR_ERRORS):
    """Success returns the result; an error must be one of ``allowed`` and (for a file) name it."""
    kind, value = outcome
    if kind == "ok":
        return value
    if not isinstance(value, allowed):
        raise AssertionError(f"{type(value).__name__} escaped instead of a clear error: {value}") from value
    if path is not None:
        assert str(path) in str(value) or path.name in str(value), f"the error does not name the file: {value}"
    return None


@st.composite
def mutations(draw, size: int):
    """A truncation point (or none) and a few byte flips (index, new value) for a file of ``size`` bytes."""
    cut = draw(st.one_of(st.none(), st.integers(0, size - 1)))
    flips = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), max_size=4))
    if cut is None and not flips:
        cut = draw(st.integers(0, size - 1))
    return cut, flips


def mutate(data: bytes, mutation) -> bytes:
    cut, flips = mutation
    buf = bytearray(data)
    for i, v in flips:
        buf[i] = v if buf[i] != v else v ^ 0xFF
    return bytes(buf if cut is None else buf[:cut])


class MutatedFile:
    """Writes mutated copies of ``original`` under one temporary folder (built once per test)."""

    def __init__(self, original: Path):
        self.original = original
        self.data = original.read_bytes()
        self.folder = Path(tempfile.mkdtemp(prefix="nn-prop-"))
        self.count = 0

    def write(self, mutation) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:05d}-{self.original.name}"
        path.write_bytes(mutate(self.data, mutation))
        return path


# ----------------------------------------------------------------------------- valid files, built once


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    labels = np.array([0, 1, 2], dtype=np.uint8)
    out = {
        "images": images,
        "labels": labels,
        "idx_images": write_idx(root / "images-idx3-ubyte", images, 2051, gz=False),
        "idx_images_gz": write_idx(root / "imagesgz-idx3-ubyte", images, 2051, gz=True),
        "idx_labels": write_idx(root / "labels-idx1-ubyte", labels, 2049, gz=False),
    }
    tree = make_tree(root / "tree", per_class={"train": 1, "test": 1}, size=(3, 2), classes=["a", "b"])
    out["tree_splits"], out["tree_classes"] = image_folder.read_image_folder(tree, progress=False, workers=1)
    out["tar_gz"] = tar_tree(tree, root / "tree.tar.gz")
    out["zip"] = zip_tree(tree, root / "tree.zip")
    model = NeuralNetwork(layers=[FullyConnected(3, "softmax")], optimizer=SGD(lr=0.1, momentum=0.9), seed=1)
    X = rng.standard_normal((4, 2))
    model.forward(X)
    out["model_X"] = X
    out["model_Y"] = model.forward(X)
    out["checkpoint"] = root / "model.npz"
    model.save(out["checkpoint"], extra={"epoch": 1})
    config_path = Path(__file__).resolve().parents[1] / "configs" / "iris.yaml"
    out["config"] = root / "config.yaml"
    out["config"].write_bytes(config_path.read_bytes())
    out["config_dict"] = load_config(config_path)
    return out


# ----------------------------------------------------------------------------- loaders on mutated files


def _idx_property(files, key, expected_magic, reader):
    source = MutatedFile(files[key])

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(mutation=mutations(len(source.data)))
    def prop(mutation):
        path = source.write(mutation)
        result = check_outcome(run_with_deadline(reader, path, expected_magic=expected_magic), path)
        if result is not None:
            assert isinstance(result, np.ndarray) and result.dtype == np.uint8
            if mutate(source.data, mutation) == source.data:
                np.testing.assert_array_equal(result, files["images" if "images" in key else "labels"])

    prop()


@pytest.mark.parametrize("key", ["idx_images", "idx_images_gz", "idx_labels"])
def test_read_idx_on_mutated_files(files, key):
    magic = 2049 if "labels" in key else 2051
    _idx_property(files, key, magic, idx.read_idx)


def test_fashion_mnist_read_idx_on_mutated_files(files):
    _idx_property(files, "idx_images_gz", 2051, fashion_mnist.read_idx)


@pytest.mark.parametrize("key", ["tar_gz", "zip"])
def test_image_folder_on_mutated_archives(files, key):
    source = MutatedFile(files[key])

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(mutation=mutations(len(source.data)))
    def prop(mutation):
        path = source.write(mutation)
        outcome = run_with_deadline(image_folder.read_image_folder, path, progress=False, workers=1)
        result = check_outcome(outcome, path)
        if result is not None:
            splits, classes = result
            assert all(X.dtype == np.uint8 and X.ndim == 4 and len(X) == len(y) for X, y in splits.values())
            if path.read_bytes() == source.data:
                assert classes == files["tree_classes"]

    prop()


def test_checkpoint_on_mutated_files(files):
    source = MutatedFile(files["checkpoint"])

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(mutation=mutations(len(source.data)))
    def prop(mutation):
        path = source.write(mutation)
        model = check_outcome(run_with_deadline(NeuralNetwork.load, path), path)
        if model is not None:  # only a change the checksum does not cover (zip metadata) may load
            np.testing.assert_allclose(model.forward(files["model_X"]), files["model_Y"])

    prop()


def test_config_file_on_mutated_files(files):
    source = MutatedFile(files["config"])

    @settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(mutation=mutations(len(source.data)))
    def prop(mutation):
        path = source.write(mutation)
        config = check_outcome(run_with_deadline(load_config, path), path, allowed=(ConfigError,))
        if config is not None:
            assert isinstance(config, dict)
            check_outcome(run_with_deadline(validate_config, config), allowed=(ConfigError,))

    prop()


# ----------------------------------------------------------------------------- config overrides

OVERRIDE_KEYS = [
    "name",
    "seed",
    "epochs",
    "data",
    "data.name",
    "data.batch_size",
    "data.validation",
    "model",
    "model.loss",
    "model.layers",
    "model.layers.0",
    "model.layers.0.n_out",
    "model.layers.0.activation",
    "model.layers.0.weight_init",
    "model.layers.1.name",
    "model.layers.5",
    "optimizer",
    "optimizer.name",
    "optimizer.lr",
    "optimizer.momentum",
    "optimizer.clip_norm",
    "optimizer.lr_scheduler",
    "callbacks",
    "callbacks.0",
    "evaluation",
    "evaluation.tta",
    "unknown_key",
    "seed.x",
]

yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["relu", "sgd", "adam", "iris", "cross_entropy", "softmax", "constant", "same", "model_checkpoint"]
    ),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["name", "lr", "n_out", "x", "activation", "monitor"]), children, max_size=3),
    ),
    max_leaves=6,
)
raw_values = st.one_of(
    yaml_values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()),
    st.text(max_size=20),
)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(st.tuples(st.sampled_from(OVERRIDE_KEYS), raw_values), min_size=1, max_size=3))
def test_config_overrides_end_in_success_or_config_error(files, overrides):
    items = [f"{key}={raw}" for key, raw in overrides]
    try:
        config = apply_overrides(files["config_dict"], items)
        validated = validate_config(config)
    except ConfigError:
        return
    assert isinstance(validated, dict)
    dump_config(validated)  # a valid config can be written back as YAML


# ----------------------------------------------------------------------------- layers

geometry = st.fixed_dictionaries(
    {
        "n": st.integers(1, 2),
        "h": st.integers(1, 6),
        "w": st.integers(1, 6),
        "c": st.integers(1, 2),
        "kh": st.integers(1, 3),
        "kw": st.integers(1, 3),
        "stride": st.integers(1, 3),
        "ph": st.integers(0, 2),
        "pw": st.integers(0, 2),
    }
).filter(lambda g: g["kh"] <= g["h"] + 2 * g["ph"] and g["kw"] <= g["w"] + 2 * g["pw"])

GRAD_TOL = 1e-6


def _expected_shape(g, channels):
    ho = (g["h"] + 2 * g["ph"] - g["kh"]) // g["stride"] + 1
    wo = (g["w"] + 2 * g["pw"] - g["kw"]) // g["stride"] + 1
    return (g["n"], ho, wo, channels)


def _gradient_errors(layer, X, rng):
    Y = layer.forward(X)
    dY = randn(rng, *Y.shape)
    dX = layer.backward(dY)
    analytic = {k: v.copy() for k, v in layer.gradients.items()}
    errors = {"X": relative_error(dX, numerical_gradient(layer.forward, X.copy(), dY))}
    for key in list(layer.parameters):
        num = numerical_gradient(layer.forward_with_param(key, X), layer.parameters[key], dY)
        errors[key] = relative_error(analytic[key], num)
    return errors


@given(g=geometry, f=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_conv2d_shape_and_gradients(g, f, seed):
    rng = np.random.default_rng(seed)
    X = randn(rng, g["n"], g["h"], g["w"], g["c"])
    layer = Conv2D(f, (g["kh"], g["kw"]), activation="linear", stride=g["stride"], pad=(g["ph"], g["pw"]))
    layer.rng = np.random.default_rng(seed)
    assert layer.forward(X).shape == _expected_shape(g, f)
    layer_to_float64(layer)
    layer.parameters["b"] = rng.standard_normal(layer.parameters["b"].shape)
    for key, err in _gradient_errors(layer, X, rng).items():
        assert err < GRAD_TOL, f"d{key}: relative error {err}"


@given(g=geometry, mode=st.sampled_from(Pool2D.MODES), seed=st.integers(0, 2**16))
def test_pool2d_shape_and_gradients(g, mode, seed):
    rng = np.random.default_rng(seed)
    X = distinct_values(rng, g["n"], g["h"], g["w"], g["c"])  # no ties, nothing near the zero padding
    layer = Pool2D((g["kh"], g["kw"]), mode=mode, stride=g["stride"], pad=(g["ph"], g["pw"]))
    assert layer.forward(X).shape == _expected_shape(g, g["c"])
    for key, err in _gradient_errors(layer, X, rng).items():
        assert err < GRAD_TOL, f"d{key}: relative error {err}"


# The plain tests for the inputs on which these properties found library bugs are in
# tests/test_properties_regressions.py, which needs neither pytest nor hypothesis.


# ----------------------------------------------------------------------------- fast kernels against the reference
# Each property runs one operation of neural_networks.functional through the fast kernels and
# through the reference (the kernel switch), forward and backward, on a random geometry, dtype
# and activation, and compares every output; the fusions (ReLU into the convolution and batch
# norm, GELU's slope, softmax with cross-entropy) are part of what is compared.

FAST_TOL = {np.float64: 1e-9, np.float32: 1e-4}  # relative to the reference's largest magnitude
ACTIVATIONS_TRIED = ("linear", "relu", "gelu", "tanh", "softmax")


def _assert_fast_matches(fast, ref, dtype):
    for i, (got, want) in enumerate(zip(fast, ref)):
        if want is None:
            assert got is None, f"output {i}: {got!r} where the reference gives None"
            continue
        want = np.asarray(want, dtype=np.float64)
        assert np.shape(got) == want.shape, f"output {i}: shape {np.shape(got)} vs {want.shape}"
        assert np.asarray(got).dtype == dtype, f"output {i}: dtype {np.asarray(got).dtype}, expected {dtype}"
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        np.testing.assert_allclose(
            np.asarray(got, np.float64), want, rtol=0, atol=FAST_TOL[dtype] * scale, err_msg=f"output {i}"
        )


KINK_MARGIN = {np.float64: 1e-9, np.float32: 1e-3}  # relative to the largest |Z|


def _away_from_the_kink(activation, Z, dtype):
    """Reject an example (``hypothesis.assume``) whose exact pre-activation ``Z`` (float64) lies
    within rounding of ReLU's kink: there the two kernels may rightly disagree on the mask."""
    if activation == "relu":
        Z = np.abs(np.asarray(Z, dtype=np.float64))
        hypothesis.assume(np.min(Z) > KINK_MARGIN[dtype] * max(1.0, float(np.max(Z))))


def _both_ways(run):
    from neural_networks import functional as F

    with F.kernels("fast"):
        fast = run()
    with F.kernels("reference"):
        ref = run()
    return fast, ref


@given(
    g=geometry,
    c=st.sampled_from([1, 3, 6]),  # thin inputs take the channel planes, wider ones im2col
    f=st.integers(1, 4),
    activation=st.sampled_from(ACTIVATIONS_TRIED),
    dtype=st.sampled_from([np.float64, np.float32]),
    training=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fast_conv2d_matches_the_reference(g, c, f, activation, dtype, training, bias, seed):
    from neural_networks import functional as F
    from neural_networks.activations import initialize_activation

    rng = np.random.default_rng(seed)
    act = initialize_activation(activation)
    X = randn(rng, g["n"], g["h"], g["w"], c).astype(dtype)
    W = randn(rng, g["kh"], g["kw"], c, f).astype(dtype)
    b = randn(rng, 1, f).astype(dtype) if bias else None
    pad, stride = (g["ph"], g["pw"]), g["stride"]
    ho = (g["h"] + 2 * g["ph"] - g["kh"]) // stride + 1
    wo = (g["w"] + 2 * g["pw"] - g["kw"]) // stride + 1
    dY = randn(rng, g["n"], ho, wo, f).astype(dtype)
    f64 = lambda A: None if A is None else A.astype(np.float64)  # noqa: E731
    _away_from_the_kink(activation, reference.conv2d_forward(f64(X), f64(W), f64(b), stride, pad), dtype)

    def run():
        Y, cache = F.conv2d(X, W, b, stride, pad, act, training=training)
        dX, dW, db = F.conv2d_backward(dY, W, cache, stride, pad, act, need_db=bias)
        dZ = F.conv2d_backward(dY, W, cache, stride, pad, None, need_db=bias)  # from dL/dZ
        return (Y, dX, dW, db, *dZ)

    _assert_fast_matches(*_both_ways(run), dtype)


@given(
    g=geometry,
    mode=st.sampled_from(Pool2D.MODES),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_fast_pool2d_matches_the_reference(g, mode, dtype, seed):
    from neural_networks import functional as F

    rng = np.random.default_rng(seed)
    X = randn(rng, g["n"], g["h"], g["w"], g["c"]).astype(dtype)
    X[..., 0] = np.round(X[..., 0])  # ties: both send the gradient to the first maximum
    pad, stride, kernel = (g["ph"], g["pw"]), g["stride"], (g["kh"], g["kw"])
    Y = None

    def run():
        nonlocal Y
        out, cache = F.pool2d(X, kernel, stride, pad, mode)
        Y = out if Y is None else Y
        dY = np.linspace(-1, 1, Y.size, dtype=dtype).reshape(Y.shape)
        return out, F.pool2d_backward(dY, cache, kernel, stride, pad, mode)

    _assert_fast_matches(*_both_ways(run), dtype)


@given(
    shape=st.sampled_from([(5, 3), (4, 1), (3, 4, 5, 2), (2, 3, 3, 7)]),  # M >= 4: M = 2 is degenerate (dX = 0)
    activation=st.sampled_from(ACTIVATIONS_TRIED),
    dtype=st.sampled_from([np.float64, np.float32]),
    training=st.booleans(),
    offset=st.sampled_from([0.0, 1e3]),  # a mean that dwarfs the spread: the two-pass variance
    seed=st.integers(0, 2**16),
)
def test_fast_batchnorm_matches_the_reference(shape, activation, dtype, training, offset, seed):
    from neural_networks import functional as F
    from neural_networks.activations import initialize_activation

    rng = np.random.default_rng(seed)
    act = initialize_activation(activation)
    c = shape[-1]
    X = (randn(rng, *shape) + offset).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, (1, c)).astype(dtype), randn(rng, 1, c).astype(dtype)
    mean, var = (randn(rng, 1, c) + offset).astype(dtype), rng.uniform(0.5, 2.0, (1, c)).astype(dtype)
    dY = randn(rng, *shape).astype(dtype)
    tol = {np.float64: 1e-9, np.float32: 1e-4 if offset == 0 else 3e-3}  # float32 statistics of a shifted X
    X2 = X.reshape(-1, c).astype(np.float64)
    if training:
        Z = reference.batchnorm_train_forward(X2, gamma.astype(np.float64), beta.astype(np.float64), 1e-5)[0]
    else:
        Z = reference.batchnorm_eval_forward(X2, *(a.astype(np.float64) for a in (gamma, beta, mean, var)), 1e-5)
    _away_from_the_kink(activation, Z, dtype)

    def run():
        if training:
            Y, cache = F.batchnorm_train(X, gamma, beta, 1e-5, act)
            stats = (cache["mean"], cache["var"])
        else:
            Y, cache = F.batchnorm_eval(X, gamma, beta, mean, var, 1e-5, act)
            stats = ()
        upstream = dY.copy()
        grads = F.batchnorm_backward(upstream, cache, act)
        assert np.array_equal(upstream, dY), "the upstream gradient was overwritten"
        return (Y, *grads, *F.batchnorm_backward(dY, cache, None), *stats)

    saved = dict(FAST_TOL)
    FAST_TOL.update(tol)
    try:
        _assert_fast_matches(*_both_ways(run), dtype)
    finally:
        FAST_TOL.update(saved)


@given(
    m=st.integers(1, 6),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
    activation=st.sampled_from(ACTIVATIONS_TRIED),
    dtype=st.sampled_from([np.float64, np.float32]),
    training=st.booleans(),
    scale=st.sampled_from([1.0, 1 / 9]),
    seed=st.integers(0, 2**16),
)
def test_fast_dense_matches_the_reference(m, n_in, n_out, activation, dtype, training, scale, seed):
    from neural_networks import functional as F
    from neural_networks.activations import initialize_activation

    rng = np.random.default_rng(seed)
    act = initialize_activation(activation)
    X, W, b = (randn(rng, *s).astype(dtype) for s in ((m, n_in), (n_in, n_out), (1, n_out)))
    dY = randn(rng, m, n_out).astype(dtype)
    _away_from_the_kink(activation, reference.dense_forward(X.astype(np.float64), W, b), dtype)

    def run():
        Y, cache = F.dense(X, W, b, act, training=training, scale=scale)
        return (
            Y,
            *F.dense_backward(dY, W, cache, act, scale=scale),
            *F.dense_backward(dY, W, cache, None, scale=scale),
        )

    _assert_fast_matches(*_both_ways(run), dtype)


@given(
    shape=st.sampled_from([(7,), (3, 5), (2, 3, 4)]),
    spread=st.sampled_from([1.0, 4.0, 20.0]),  # float32 GELU leaves its tables beyond |z| = 6
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_fast_gelu_and_softmax_cross_entropy_match_the_reference(shape, spread, dtype, seed):
    from neural_networks import functional as F

    rng = np.random.default_rng(seed)
    Z, dY = (spread * randn(rng, *shape)).astype(dtype), randn(rng, *shape).astype(dtype)
    logits = Z.reshape(-1, shape[-1])
    Y = np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], logits.shape[0])]
    Y = 0.9 * Y + 0.1 / shape[-1]  # label smoothing: rows still sum to one

    def run():
        loss, dZ, P = F.softmax_cross_entropy(logits, Y)
        return F.gelu(Z), F.gelu_backward(Z, dY), np.float64(loss), dZ, P

    fast, ref = _both_ways(run)
    assert fast[2].dtype == ref[2].dtype
    _assert_fast_matches(fast[:2] + fast[3:], ref[:2] + ref[3:], dtype)
    assert abs(fast[2] - ref[2]) <= FAST_TOL[dtype] * max(1.0, abs(ref[2]))
