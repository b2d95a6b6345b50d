"""Plots of training runs, written as PNG files (atomically, with the Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .io import atomic_write

__all__ = [
    "save_figure",
    "plot_curves",
    "plot_iteration_loss",
    "plot_parameter_ranges",
    "plot_confusion_matrix",
    "plot_first_layer",
    "confusion_matrix",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Render ``fig`` to PNG and write it atomically to ``path``; closes the figure."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


# Up to this many points a curve shows a marker at each one (a short run's few epochs, each a
# measurement; a single point would be invisible without one). Beyond it the markers of a 6-inch
# figure overlap into a band that hides the other curve, so lines alone are drawn.
MARKERS_UP_TO = 30


def _marker(n_points: int, marker: str) -> str:
    return marker if n_points <= MARKERS_UP_TO else "None"


def _whole_number_ticks(axis) -> None:
    """Ticks at whole numbers only: epochs and iterations are counts (matplotlib's default puts
    ticks at 0.5, 1.0, 1.5... on a 3-epoch run). ``min_n_ticks=1``: a one-epoch run's axis spans
    less than one whole number around its point, and gets the single tick there, not fractions.
    ``steps``: multiples of 1, 2 and 5 (0, 20, 40 on 100 epochs; the default also allows 15s)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1, steps=[1, 2, 5, 10]))


def plot_curves(history: dict, metric: str, path, title: str | None = None) -> Path:
    """Training and validation ``metric`` (``"loss"`` or ``"accuracy"``) per epoch.

    ``history`` maps ``metric`` and optionally ``val_<metric>`` to per-epoch lists. Points get
    markers on runs of at most :data:`MARKERS_UP_TO` epochs; the training curve is drawn over the
    validation curve, so neither hides it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history[metric]) + 1)
    # zorder 3 (lines default to 2): training stays visible where the validation curve crosses it.
    ax.plot(epochs, history[metric], marker=_marker(epochs.size, "o"), label=f"train {metric}", zorder=3)
    if f"val_{metric}" in history:
        ax.plot(epochs, history[f"val_{metric}"], marker=_marker(epochs.size, "s"), label=f"validation {metric}")
    _whole_number_ticks(ax.xaxis)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_iteration_loss(losses, path, title: str = "training loss per iteration", smooth: int = 0) -> Path:
    """Loss of every mini-batch, with an optional moving average over ``smooth`` iterations."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    losses = np.asarray(losses, dtype=float)
    ax.plot(
        np.arange(1, losses.size + 1),
        losses,
        marker=_marker(losses.size, "."),
        alpha=0.4 if smooth > 1 else 1.0,
        label="mini-batch loss",
    )
    if smooth > 1 and losses.size >= smooth:
        kernel = np.ones(smooth) / smooth
        ax.plot(
            np.arange(smooth, losses.size + 1),
            np.convolve(losses, kernel, mode="valid"),
            label=f"moving average ({smooth})",
        )
        ax.legend()
    _whole_number_ticks(ax.xaxis)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_parameter_ranges(rows, path, title: str = "parameter range per epoch") -> Path:
    """One small panel per parameter array with its min and max after each epoch (the course's
    logger plots these). ``rows``: dicts with ``epoch``, ``parameter``, ``min`` and ``max``."""
    plt = _pyplot()
    series: dict[str, list] = {}
    for row in rows:
        series.setdefault(row["parameter"], []).append((row["epoch"], row["min"], row["max"]))
    n = len(series)
    cols = min(4, n)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (name, points) in zip(axes.ravel(), series.items()):
        epochs, lows, highs = zip(*points)
        ax.plot(epochs, highs, marker=_marker(len(epochs), "."), label="max")
        ax.plot(epochs, lows, marker=_marker(len(epochs), "."), label="min")
        _whole_number_ticks(ax.xaxis)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[true, predicted]``, shape ``(n_classes, n_classes)``."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def plot_confusion_matrix(counts: np.ndarray, class_names, path, title: str = "confusion matrix") -> Path:
    """Heat map of a confusion matrix with the count in each cell."""
    plt = _pyplot()
    k = counts.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if counts[i, j] > threshold else "black",
            )
    return save_figure(fig, path)


def plot_first_layer(W: np.ndarray, path, input_shape=None, max_units: int = 64, feature_names=None) -> Path:
    """Picture of first-layer weights: conv filters ``(kh, kw, c, f)`` as small images (RGB
    when ``c == 3``), or dense weights ``(n_in, n_out)`` reshaped to ``input_shape`` images when
    the input was an image (e.g. 784 -> 28x28), else as a matrix with a row per input feature,
    labelled by ``feature_names`` when given (e.g. Iris's ``"sepal length (cm)"``...; ignored for
    the image views, whose inputs are pixels) and numbered otherwise. The matrix's colour scale is
    centred on zero, so white is a zero weight, red a positive and blue a negative one."""
    plt = _pyplot()
    W = np.asarray(W, dtype=np.float64)
    tiles = None
    if W.ndim == 4:
        tiles = np.moveaxis(W, 3, 0)  # (f, kh, kw, c)
    elif W.ndim == 2 and input_shape is not None and int(np.prod(input_shape)) == W.shape[0] and len(input_shape) >= 2:
        tiles = W.T.reshape(W.shape[1], *input_shape)
    if tiles is None:
        return _plot_weight_matrix(plt, W, path, feature_names)
    tiles = tiles[:max_units]
    if tiles.ndim == 3:
        tiles = tiles[..., None]
    n = tiles.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, tile in zip(axes.ravel(), tiles):
        lo, hi = tile.min(), tile.max()
        tile = (tile - lo) / (hi - lo) if hi > lo else np.zeros_like(tile)
        ax.imshow(
            tile if tile.shape[-1] == 3 else tile[..., 0],
            cmap=None if tile.shape[-1] == 3 else "gray",
            interpolation="nearest",
        )
    fig.suptitle(f"first-layer weights ({n} units)")
    return save_figure(fig, path)


def _plot_weight_matrix(plt, W: np.ndarray, path, feature_names) -> Path:
    """Dense weights ``(n_in, n_out)`` as a heat map, a row per input feature."""
    W = np.atleast_2d(W)
    if feature_names is not None and len(feature_names) != W.shape[0]:
        raise ValueError(
            f"plot_first_layer: {len(feature_names)} feature names for weights of {W.shape[0]} rows (one per input)"
        )
    # About half an inch a row, so a few rows (Iris's 4) are bands with room for a label, not blocks.
    fig, ax = plt.subplots(figsize=(6, max(2.5, min(8.0, 1.2 + 0.45 * W.shape[0]))))
    # A symmetric colour scale puts zero at the diverging map's white.
    limit = float(np.abs(W).max()) or 1.0
    image = ax.imshow(W, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax)
    _whole_number_ticks(ax.xaxis)
    if feature_names is not None:
        ax.set_yticks(range(W.shape[0]), labels=[str(name) for name in feature_names])
    else:
        _whole_number_ticks(ax.yaxis)
    ax.set_xlabel("unit")
    ax.set_ylabel("input feature")
    ax.set_title("first-layer weights")
    return save_figure(fig, path)
