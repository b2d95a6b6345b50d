"""Model export (neural_networks.export, ``neural-networks export``): ONNX graphs run in
onnxruntime against ``model.predict``, and safetensors files loaded back.

Every network here has random weights (and random batch-norm statistics), so a wrong layout,
padding or formula shows; inputs are small random batches (no data set is read, but for the
command-line test, which trains a tiny run on the Iris data shipped with the package).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from neural_networks import NeuralNetwork
from neural_networks.activations import ACTIVATIONS, Activation
from neural_networks.export import ExportError, export_bytes, export_model, load_safetensors
from neural_networks.layers import BatchNorm, Layer
from neural_networks.serialization import model_arrays, model_config

from .helpers import pytest_modules, pytest_only, require

# pytest-style tests (parametrize, tmp_path); each one requires the extra of its export format
(pytest,) = pytest_modules()
load_tests = pytest_only(__name__)  # python -m unittest finds no test here: it reports a skip saying so

ROOT = Path(__file__).resolve().parents[1]
ATOL = RTOL = 1e-5


# -- helpers ---------------------------------------------------------------------------------
def build(layers, X, seed=0, **model_kwargs) -> NeuralNetwork:
    """A model of ``layers`` (dicts) whose parameters are made by one forward pass on ``X``, with
    random batch-norm shifts, scales and running statistics (fresh ones are 0 and 1: too easy)."""
    model = NeuralNetwork(layer_args=layers, seed=seed, **model_kwargs)
    model.predict(X)
    rng = np.random.default_rng(seed + 1)
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            c = layer.n_in
            dtype = layer.parameters["beta"].dtype
            layer.buffers["running_mean"] = rng.normal(0.0, 0.5, (1, c)).astype(dtype)
            layer.buffers["running_var"] = rng.uniform(0.3, 2.0, (1, c)).astype(dtype)
            layer.parameters["beta"] = rng.normal(0.0, 0.3, (1, c)).astype(dtype)
            if layer.scale:
                layer.parameters["gamma"] = rng.uniform(0.5, 1.5, (1, c)).astype(dtype)
    return model


def onnx_session(data: bytes):
    onnx = require("onnx")
    ort = require("onnxruntime")
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def check_onnx(model, X, input_shape=None) -> np.ndarray:
    """Export ``model`` to ONNX, run ``X`` through onnxruntime, compare with ``model.predict``."""
    require("onnx")  # before exporting, which without onnx is an ExportError
    require("onnxruntime")
    session = onnx_session(export_bytes(model, "onnx", input_shape=input_shape))
    (got,) = session.run(None, {"input": X})
    expected = model.predict(X)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    return got


def images(shape=(3, 7, 9, 3), seed=0, shift=0.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) + shift).astype(np.float32)


def features(shape=(6, 5), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def config_layers(name: str, n_out: int = 3) -> list[dict]:
    layers = yaml.safe_load((ROOT / "configs" / name).read_text())["model"]["layers"]
    return [{**layer, "n_out": n_out} if layer.get("n_out", 0) is None else layer for layer in layers]


# -- ONNX: the configs' architectures ----------------------------------------------------------
def test_iris_mlp_matches_predict():
    X = features((10, 4))
    check_onnx(build(config_layers("iris.yaml"), X), X)


@pytest.mark.parametrize("config", ["cifar10_cnn.yaml", "cifar10_fast.yaml"])
def test_cifar10_cnns_match_predict(config):
    X = images((3, 32, 32, 3))
    model = build(config_layers(config), X)
    free = check_onnx(model, X)  # image rows and cols symbolic
    fixed = check_onnx(model, X, input_shape=(32, 32, 3))
    np.testing.assert_array_equal(free, fixed)
    np.testing.assert_allclose(free.sum(axis=1), 1.0, atol=1e-5)  # class probabilities, not logits


# -- ONNX: every layer kind and option ---------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_activation_after_a_dense_layer(activation):
    X = features() * 3  # wide enough for the tails of sigmoid / gelu
    layers = [{"name": "fully_connected", "n_out": 7, "activation": activation}]
    check_onnx(build(layers + [{"name": "fully_connected", "n_out": 4, "activation": "linear"}], X), X)
    check_onnx(build(layers, X), X)  # as the output layer too


@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_activation_on_image_maps(activation):
    # Ends on NHWC maps: checks the element-wise forms in NCHW, softmax over the channels, and
    # the transpose back to the library's layout at the output.
    X = images()
    layers = [{"name": "conv2d", "n_out": 4, "kernel_shape": 3, "activation": activation, "pad": "same"}]
    assert check_onnx(build(layers, X), X).shape == (3, 7, 9, 4)


def test_gelu_far_tails():
    X = np.linspace(-12, 12, 97, dtype=np.float32).reshape(-1, 1)
    for name in ("gelu", "gelu_tanh"):
        model = NeuralNetwork(layer_args=[{"name": "fully_connected", "n_out": 1, "activation": name}], seed=0)
        model.predict(X)
        model.layers[0].parameters["W"][...] = 1.0
        check_onnx(model, X)


@pytest.mark.parametrize(
    "options",
    [
        {"use_bias": False},
        {"output_scale": 1 / 9},
        {"output_scale": 2.5, "use_bias": False, "activation": "softmax"},
    ],
)
def test_dense_options(options):
    X = features()
    layers = [{"name": "fully_connected", "n_out": 6, "activation": "relu"}, {"name": "fully_connected", "n_out": 3}]
    layers[1].update(options)
    check_onnx(build(layers, X), X)


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_shape": [3, 3], "pad": "same"},
        {"kernel_shape": [3, 3], "pad": "valid"},
        {"kernel_shape": [5, 3], "pad": "same"},
        {"kernel_shape": [4, 4], "pad": "same"},  # even kernel: (k - 1) // 2 per side, not SAME_UPPER
        {"kernel_shape": [2, 2], "pad": "same"},
        {"kernel_shape": [3, 3], "pad": 2},
        {"kernel_shape": [3, 3], "pad": [2, 0]},  # different padding for rows and columns
        {"kernel_shape": [3, 2], "pad": [0, 1], "stride": 2},
        {"kernel_shape": [3, 3], "pad": "same", "stride": 2},
        {"kernel_shape": [1, 1], "pad": "valid", "stride": 3},
        {"kernel_shape": [3, 3], "use_bias": False},
    ],
)
def test_conv2d_options(options):
    X = images()
    layers = [
        {"name": "conv2d", "n_out": 5, "activation": "linear", **options},
        {"name": "conv2d", "n_out": 4, "kernel_shape": 3, "activation": "relu"},
        {"name": "flatten"},
        {"name": "fully_connected", "n_out": 3, "activation": "linear"},
    ]
    check_onnx(build(layers, X), X)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize(
    "options",
    [
        {"kernel_shape": [2, 2], "stride": 2},
        {"kernel_shape": [3, 3], "stride": 1, "pad": 1},
        {"kernel_shape": [3, 2], "stride": 2, "pad": [1, 0]},
        {"kernel_shape": [2, 3], "stride": 3, "pad": "same"},
        {"kernel_shape": [3, 3], "stride": 2, "pad": "same"},
    ],
)
def test_pool2d_options(mode, options):
    # Inputs mostly negative: a max-pooling window over the zero padding then gives 0 (the
    # library's padding), where ONNX MaxPool's own padding would give the largest negative value;
    # average pooling divides by the whole window, padding included.
    X = images(shift=-2.0)
    layers = [{"name": "pool2d", "mode": mode, **options}]
    check_onnx(build(layers, X), X)
    deeper = [
        {"name": "conv2d", "n_out": 4, "kernel_shape": 3, "activation": "linear"},
        *layers,
        {"name": "flatten"},
        {"name": "fully_connected", "n_out": 3},
    ]
    check_onnx(build(deeper, X), X)


@pytest.mark.parametrize(
    "options",
    [{}, {"scale": False}, {"eps": 1e-2}, {"activation": "relu"}, {"activation": "gelu", "scale": False}],
)
def test_batchnorm_on_features_and_maps(options):
    X = features()
    dense = [
        {"name": "fully_connected", "n_out": 6},
        {"name": "batchnorm", **options},
        {"name": "fully_connected", "n_out": 3},
    ]
    check_onnx(build(dense, X), X)
    X = images()
    conv = [
        {"name": "conv2d", "n_out": 4, "kernel_shape": 3, "activation": "linear", "use_bias": False},
        {"name": "batchnorm", **options},
        {"name": "pool2d", "kernel_shape": 2, "stride": 2},
        {"name": "batchnorm"},
        {"name": "flatten"},
        {"name": "fully_connected", "n_out": 3, "activation": "softmax"},
    ]
    check_onnx(build(conv, X), X)


def test_batchnorm_and_pooling_first():
    # No convolution or dense layer first: the input shape comes from batch norm's features.
    X = images()
    check_onnx(build([{"name": "batchnorm"}, {"name": "pool2d", "kernel_shape": 2, "stride": 2}], X), X)
    X = features()
    check_onnx(build([{"name": "batchnorm", "activation": "tanh"}, {"name": "fully_connected", "n_out": 2}], X), X)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_dropout_is_left_out(p):
    X = images()
    layers = [
        {"name": "conv2d", "n_out": 4, "kernel_shape": 3},
        {"name": "dropout", "p": p},
        {"name": "flatten"},
        {"name": "dropout", "p": p},
        {"name": "fully_connected", "n_out": 3, "activation": "softmax"},
    ]
    model = build(layers, X)
    check_onnx(model, X)
    onnx = require("onnx")
    ops = {node.op_type for node in onnx.load_from_string(export_bytes(model, "onnx")).graph.node}
    assert "Dropout" not in ops and "RandomUniformLike" not in ops


def test_dropout_only_network_is_the_identity():
    X = features()
    np.testing.assert_array_equal(check_onnx(build([{"name": "dropout"}], X), X, input_shape=(5,)), X)


def test_flatten_keep_last():
    # (batch, rows, cols, c) -> (batch * rows * cols, c): a dense layer per pixel.
    X = images()
    layers = [
        {"name": "conv2d", "n_out": 4, "kernel_shape": 3},
        {"name": "flatten", "keep_dim": "last"},
        {"name": "fully_connected", "n_out": 2, "activation": "softmax"},
    ]
    assert check_onnx(build(layers, X), X).shape == (3 * 7 * 9, 2)


def test_flatten_order_is_the_library_nhwc_order():
    # A flatten straight after the input, without a transpose, and one after convolutions (with one).
    X = images()
    check_onnx(build([{"name": "flatten"}, {"name": "fully_connected", "n_out": 3}], X), X, input_shape=(7, 9, 3))
    layers = [{"name": "conv2d", "n_out": 2, "kernel_shape": 1, "activation": "linear"}, {"name": "flatten"}]
    assert check_onnx(build(layers, X), X).shape == (3, 7 * 9 * 2)


def test_float64_parameters_are_exported_as_float32():
    X = features()
    model = build(
        [{"name": "fully_connected", "n_out": 4, "activation": "tanh"}, {"name": "batchnorm"}], X.astype(np.float64)
    )
    assert model.layers[0].parameters["W"].dtype == np.float64
    check_onnx(model, X)


def test_graph_interface():
    onnx = require("onnx")
    X = images((2, 8, 8, 3))
    model = build(
        config_layers("cifar10_cnn.yaml", n_out=10)[:3]
        + [{"name": "flatten"}, {"name": "fully_connected", "n_out": 10, "activation": "softmax"}],
        X,
    )

    def dims(value_info):
        return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]

    proto = onnx.load_from_string(export_bytes(model, "onnx"))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("input", "output")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(inp) == ["batch", "rows", "cols", 3]
    assert dims(out) == ["batch", 10]
    assert [op.version for op in proto.opset_import] == [17]
    assert json.loads(dict((p.key, p.value) for p in proto.metadata_props)["neural_networks.config"]) == model_config(
        model
    )
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("Transpose") == 2  # into NCHW at the first convolution, back before the flatten
    fixed = onnx.load_from_string(export_bytes(model, "onnx", input_shape=(8, 8, 3)))
    assert dims(fixed.graph.input[0]) == ["batch", 8, 8, 3]


# -- ONNX: what cannot be exported -------------------------------------------------------------
class Cube(Activation):
    name = "cube"

    def forward(self, Z):
        return Z**3

    def backward(self, Z, dY):
        return 3 * Z**2 * dY


class Double(Layer):
    name = "double"

    def forward(self, X):
        return 2 * X

    def backward(self, dLdY):
        return 2 * dLdY


def export_error(model, format="onnx", **kwargs) -> str:
    require("onnx" if format == "onnx" else "safetensors")
    with pytest.raises(ExportError) as caught:
        export_bytes(model, format, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_unsupported_layers_and_options_name_themselves():
    X = features()
    from neural_networks.layers import FullyConnected

    model = NeuralNetwork(layers=[FullyConnected(3)], seed=0)
    model.predict(X)
    model.layers[0].activation = Cube()  # after the weights: their initializer knows no gain for it
    message = export_error(model)
    assert "FullyConnected (layer 0)" in message and "'cube'" in message

    model = NeuralNetwork(layers=[FullyConnected(3), Double()], seed=0)
    model.predict(X)
    message = export_error(model)
    assert "Double (layer 1)" in message and "has no ONNX export" in message

    model = build([{"name": "flatten", "keep_dim": -1}, {"name": "fully_connected", "n_out": 2}], X[:1])
    message = export_error(model, input_shape=(5,))
    assert "Flatten (layer 0)" in message and "keep_dim=-1" in message


def test_ill_formed_networks_and_input_shapes():
    X = images()
    model = build([{"name": "conv2d", "n_out": 2, "kernel_shape": 3}], X)
    assert "input_shape must be positive ints" in export_error(model, input_shape=(0, 7, 3))
    assert "rank 4" in export_error(model, input_shape=(5,))
    assert "3 input channels" in export_error(model, input_shape=(7, 9, 4))
    valid = build([{"name": "conv2d", "n_out": 2, "kernel_shape": 3, "pad": "valid"}], X)
    assert "larger than the padded input" in export_error(valid, input_shape=(2, 9, 3))
    model = build([{"name": "fully_connected", "n_out": 2}], features())
    assert "5 input features" in export_error(model, input_shape=(6,))
    model = build([{"name": "flatten"}, {"name": "fully_connected", "n_out": 2}], X)
    assert "cannot tell the network's input shape" in export_error(model)


def test_models_without_weights_are_refused():
    unbuilt = NeuralNetwork(layer_args=[{"name": "fully_connected", "n_out": 2}], seed=0)
    assert "no parameters yet" in export_error(unbuilt)
    assert "no parameters yet" in export_error(unbuilt, "safetensors")
    X = images((2, 6, 6, 1))
    whitening = NeuralNetwork(
        layer_args=[
            {"name": "conv2d", "n_out": 9, "kernel_shape": 3, "weight_init": "patch_whitening", "pad": "valid"}
        ],
        seed=0,
    )
    whitening.layers[0]._init_parameters(X.shape, np.float32)
    assert "train the model" in export_error(whitening)


def test_unknown_format():
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_bytes(build([{"name": "fully_connected", "n_out": 2}], features()), "tflite")


def test_missing_packages_name_the_extra(monkeypatch):
    model = build([{"name": "fully_connected", "n_out": 2}], features())
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an uninstalled package looks like to import
    with pytest.raises(
        ExportError, match=r'needs the onnx package, which is not installed: pip install "neural_networks\[onnx\]"'
    ):
        export_bytes(model, "onnx")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ExportError, match=r"neural_networks\[safetensors\]"):
        export_bytes(model, "safetensors")


def test_importing_the_package_imports_no_export_dependency():
    code = (
        "import sys, neural_networks, neural_networks.cli, neural_networks.export, "
        "neural_networks.export.onnx, neural_networks.export.safetensors\n"
        "print(sorted(m for m in ('onnx', 'onnxruntime', 'safetensors') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


# -- safetensors -----------------------------------------------------------------------------
def test_safetensors_round_trip(tmp_path):
    numpy_io = require("safetensors.numpy")
    X = images((3, 32, 32, 3))
    model = build(config_layers("cifar10_fast.yaml"), X, optimizer_args={"name": "sgd", "lr": 0.1, "momentum": 0.9})
    model.train_step(X, np.eye(10, dtype=np.float32)[[0, 1, 2]], 0.0)  # some optimizer state, left out
    path = export_model(model, tmp_path / "model.safetensors", "safetensors")

    tensors = numpy_io.load_file(path)
    expected = {key: value for key, value in model_arrays(model).items() if not key.startswith("optimizer.")}
    assert any(key.startswith("optimizer.") for key in model_arrays(model))
    assert sorted(tensors) == sorted(expected)
    assert "layers.0.W" in tensors and "buffers.2.running_var" in tensors
    for key, value in expected.items():
        assert tensors[key].dtype == value.dtype
        np.testing.assert_array_equal(tensors[key], value)

    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        assert json.loads(handle.metadata()["config"]) == model_config(model)

    loaded = load_safetensors(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert model_config(loaded) == model_config(model)
    loaded.train_step(X, np.eye(10, dtype=np.float32)[[0, 1, 2]], 0.0)  # writable arrays: it trains on


def test_safetensors_dense_round_trip_keeps_float64(tmp_path):
    require("safetensors")
    X = features().astype(np.float64)
    model = build(
        [
            {"name": "fully_connected", "n_out": 4, "activation": "gelu", "use_bias": False, "output_scale": 0.5},
            {"name": "batchnorm", "scale": False},
        ],
        X,
    )
    loaded = load_safetensors(export_model(model, tmp_path / "m.safetensors", "safetensors"))
    assert loaded.layers[0].parameters["W"].dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_safetensors_files_that_are_not_exports(tmp_path):
    numpy_io = require("safetensors.numpy")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="garbage.safetensors: unreadable safetensors file"):
        load_safetensors(garbage)
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(numpy_io.save({"weight": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match="not a neural_networks safetensors export"):
        load_safetensors(foreign)
    model = build([{"name": "fully_connected", "n_out": 2}], features())
    partial = tmp_path / "partial.safetensors"
    partial.write_bytes(
        numpy_io.save(
            {"layers.0.W": model.layers[0].parameters["W"]}, metadata={"config": json.dumps(model_config(model))}
        )
    )
    with pytest.raises(ValueError, match="partial.safetensors: no array 'layers.0.b'"):
        load_safetensors(partial)
    # every tensor is checked against the architecture: dtype, and nothing the model does not have
    arrays = {"layers.0.W": model.layers[0].parameters["W"], "layers.0.b": model.layers[0].parameters["b"]}
    metadata = {"config": json.dumps(model_config(model))}
    for name, tensors in {
        "integer": {**arrays, "layers.0.W": arrays["layers.0.W"].astype(np.int64)},
        "extra": {**arrays, "layers.7.W": arrays["layers.0.W"]},
    }.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(numpy_io.save(tensors, metadata=metadata))
        with pytest.raises(ValueError, match=rf"{name}.safetensors: .*'layers\.[07]\.W'"):
            load_safetensors(path)


def test_a_failed_export_leaves_the_old_file(tmp_path):
    require("onnx")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    model = build([{"name": "flatten", "keep_dim": -1}], features())
    with pytest.raises(ExportError):
        export_model(model, path, "onnx", input_shape=(5,))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


# -- the command line ------------------------------------------------------------------------
def test_cli_export_of_a_trained_iris_run(tmp_path, monkeypatch, capsys):
    require("onnx")
    require("safetensors")
    from neural_networks.cli import main
    from neural_networks.experiments import build_dataset, load_run, split_inputs

    monkeypatch.setenv("NEURAL_NETWORKS_DATA", str(tmp_path / "cache"))
    config = yaml.safe_load((ROOT / "configs" / "iris.yaml").read_text())
    config["epochs"] = 3
    config_path = tmp_path / "iris.yaml"
    config_path.write_text(yaml.safe_dump(config))
    assert main(["train", str(config_path), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    run = tmp_path / "runs" / "iris"

    run_config, model = load_run(run, which="last")
    X = split_inputs(build_dataset(run_config).test)
    expected = model.predict(X)

    onnx_path = tmp_path / "out" / "iris.onnx"
    assert main(["export", str(run), "--format", "onnx", "--output", str(onnx_path)]) == 0
    assert f"to {onnx_path}" in capsys.readouterr().out
    (got,) = onnx_session(onnx_path.read_bytes()).run(None, {"input": X})
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(got.argmax(axis=1), model.predict_classes(X))

    st_path = tmp_path / "out" / "iris.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "--output", str(st_path), "--checkpoint", "best"]) == 0
    best = load_run(run, which="best")[1]
    np.testing.assert_array_equal(load_safetensors(st_path).predict(X), best.predict(X))

    capsys.readouterr()
    assert main(["export", str(tmp_path / "nowhere"), "--format", "onnx", "--output", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["export", str(run), "--format", "safetensors", "--output", str(st_path), "--input-shape", "4"]) == 2
    assert "onnx format only" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "onnx", "--output", str(onnx_path), "--input-shape", "5"]) == 2
    assert "4 input features" in capsys.readouterr().err
