"""TensorBoard logging: a callback that writes a run's curves, pictures and hyperparameters as
TensorBoard event files, with neither TensorFlow nor PyTorch: the ``tensorboard`` package alone
(``pip install "neural_networks[tensorboard]"``) supplies the protocol buffers and the record
format. It is imported when a :class:`TensorBoard` is built, never by ``import neural_networks``.

Turn it on with ``tensorboard: true`` in a config, ``neural-networks train --tensorboard``, or a
``callbacks: [{name: tensorboard, update_freq: 10}]`` entry (to set its arguments). A run then
writes into ``<run_dir>/tensorboard/`` (``experiments/<name>/tensorboard/``), one TensorBoard run
per experiment, so that ``tensorboard --logdir experiments`` shows every run side by side.

Every value shares one axis, the global iteration ``step = epoch * steps_per_epoch + batch``
(epoch and batch counted from 0; ``steps_per_epoch`` is the number of training batches):

* ``iteration/loss``, ``iteration/accuracy``, ``iteration/lr``: every ``update_freq``-th
  mini-batch's training loss, the epoch's running training accuracy and the learning rate of
  that step (the schedule at ``epoch + batch / steps_per_epoch``, as the optimizer used it, before
  any parameter group's ``lr_multiplier``), at the batch's step;
* ``epoch/loss``, ``epoch/accuracy``, ``epoch/val_loss``, ``epoch/val_accuracy`` (when the data
  set holds validation examples) and ``epoch/lr``: the epoch's figures, as in ``metrics.csv``, at
  the step of the epoch's last batch, ``(epoch + 1) * steps_per_epoch - 1``;
* ``images/first_layer``: the first layer's weights as :func:`neural_networks.plots.plot_first_layer`
  draws them (the run's ``first_layer.png``), every ``filters_every`` epochs (at the epoch's step;
  ``0``: never) and once training has ended;
* ``images/confusion_matrix`` (runs of :func:`neural_networks.experiments.run_experiment` only):
  the run's ``confusion_matrix.png`` of the test split;
* ``final/test_accuracy``, ``final/test_loss``, ``final/val_accuracy``, ``final/val_loss`` (runs
  only; no validation figures where the run holds none out): the figures of ``metrics.json``;
* the hyperparameters for TensorBoard's HParams dashboard: the flattened config
  (``optimizer.lr``, ``model.layers.0.n_out``, ...) as the session's hparams, written when
  training begins, and the ``final/*`` scalars as its metrics. No experiment summary is
  written: TensorBoard then builds the table's columns from the sessions of every run under
  ``--logdir`` (it would take one run's experiment summary for all of them).

The end-of-training values (images, ``final/*``, the session's end) are at step
``epochs_done * steps_per_epoch``, one past the last batch.

Resuming: a fit that starts at ``initial_epoch`` (``--resume`` continues from ``last.npz``, at an
epoch boundary) first writes TensorBoard's purge marker, a ``SessionLog`` ``START`` event at
its first step ``initial_epoch * steps_per_epoch``, as ``torch.utils.tensorboard.SummaryWriter(
purge_step=...)`` does; readers then drop every event at or after that step written before it
(the batches of an epoch that crashed, an end-of-training summary that the resumed run replaces).
Each fit appends a new events file whose name sorts after those already there, which is the
order readers take them in. Event files are appended as training goes (not written atomically):
readers ignore a truncated last record.

Cost: per-iteration values are kept in memory and written at the end of each epoch, or once
``flush_secs`` seconds have passed since the last write (long epochs); pictures are drawn only
when training ends unless ``filters_every`` asks for more.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import socket
import struct
import tempfile
import time
from itertools import count
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .callbacks import CALLBACKS, Callback

__all__ = ["TensorBoard", "check_available", "INSTALL_HINT"]

#: What to install for :class:`TensorBoard` (the ``tensorboard`` package, an optional extra).
INSTALL_HINT = 'pip install "neural_networks[tensorboard]"'

_file_numbers = count()


def _modules() -> SimpleNamespace:
    """The parts of the ``tensorboard`` package this module uses, imported on first use; an
    ``ImportError`` with one line saying what to install when it is missing."""
    try:
        importlib.import_module("tensorboard")  # first, so that a blocked package fails here
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError as err:
        # one message for the three ways to ask (the CLI's --tensorboard reaches the config as
        # tensorboard=true), so that it names none as the one the user took
        raise ImportError(
            "TensorBoard logging needs the tensorboard package, whether asked for with --tensorboard, "
            f"`tensorboard: true` or the tensorboard callback ({err}); install it with {INSTALL_HINT}"
        ) from None
    return SimpleNamespace(
        event_pb2=event_pb2,
        summary_pb2=summary_pb2,
        api_pb2=api_pb2,
        metadata=metadata,
        plugin_data_pb2=plugin_data_pb2,
        summary_v2=summary_v2,
        RecordWriter=RecordWriter,
    )


def check_available() -> None:
    """Raise ``ImportError`` (one line, with :data:`INSTALL_HINT`) unless TensorBoard logging can run."""
    _modules()


def _png_size(data: bytes) -> tuple[int, int, int]:
    """``(width, height, channels)`` of a PNG image, read from its header."""
    if len(data) < 26 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(data[25], 4)  # PNG colour type -> channels
    return width, height, channels


def _hparam(value):
    """A config value as an HParams value: booleans, numbers and strings as they are, anything
    else (``null``, empty lists and mappings) as its JSON text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    return json.dumps(value, default=str)


class _EventFile:
    """One events file, written synchronously: a record per ``Event``, in TensorFlow's record
    format (``tensorboard``'s ``RecordWriter``)."""

    def __init__(self, log_dir: Path, tb: SimpleNamespace) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.path = log_dir / self._name(log_dir)
        self._tb = tb
        self._file = open(self.path, "xb")
        self._records = tb.RecordWriter(self._file)
        self.write(
            tb.event_pb2.Event(
                wall_time=time.time(),
                file_version="brain.Event:2",  # readers purge on SessionLog START (not on step order) from version 2
                source_metadata=tb.event_pb2.SourceMetadata(writer="neural_networks.tensorboard"),
            )
        )

    @staticmethod
    def _name(log_dir: Path) -> str:
        """TensorBoard's ``events.out.tfevents.<seconds>.<host>.<pid>.<n>``, with ``<seconds>``
        raised past every events file already in ``log_dir``: readers take a directory's files in
        name order, and a resumed run's purge marker must come after the events it drops (two
        fits within one second, or in processes whose ids sort the other way, would not)."""
        stamp = int(time.time())
        for existing in log_dir.glob("events.out.tfevents.*"):
            field = existing.name.split(".")[3]
            if field.isdigit():
                stamp = max(stamp, int(field) + 1)
        return f"events.out.tfevents.{stamp:010d}.{socket.gethostname()}.{os.getpid()}.{next(_file_numbers)}"

    def write(self, event) -> None:
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        if not self._records.closed:
            self._records.close()


# Registered here, where it is defined: the callbacks package cannot import this module, which imports it.
@CALLBACKS.register("tensorboard")
class TensorBoard(Callback):
    """Write TensorBoard event files to ``log_dir`` (see the module docstring for what, and at
    which steps).

    ``update_freq``: ``"batch"`` (a point per mini-batch, the default), ``"epoch"`` (no
    ``iteration/*`` values) or ``n``, every ``n``-th step. ``flush_secs``: write the buffered
    per-iteration values within an epoch once this many seconds have passed since the last write
    (they are written at every epoch's end regardless). ``filters_every``: also draw the first
    layer every this many epochs (``0``: when training ends only; each picture takes a fraction
    of a second). ``hparams``: ``{name: value}`` for the HParams dashboard (booleans, numbers
    and strings; other values are written as their JSON text), or ``None``. ``input_shape``: the shape
    of an input image, for drawing a dense first layer as images (as ``first_layer.png``).

    :meth:`for_run` builds the callback of an experiment's run; :func:`run_experiment` then
    calls :meth:`write_run_end` with the run's final figures and pictures. Used on its own
    (``fit(..., callbacks=[TensorBoard("logs")])``), the callback draws the first layer when
    training ends and closes its file. ``ImportError`` (one line) without the ``tensorboard``
    package.
    """

    def __init__(
        self,
        log_dir,
        update_freq="batch",
        flush_secs: float = 30.0,
        filters_every: int = 0,
        hparams=None,
        input_shape=None,
    ) -> None:
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ValueError(f"TensorBoard: log_dir must be a folder path; got {log_dir!r}")
        if update_freq in ("batch", "epoch"):
            every = 1 if update_freq == "batch" else None
        elif isinstance(update_freq, (int, np.integer)) and not isinstance(update_freq, bool) and update_freq >= 1:
            every = int(update_freq)
        else:
            raise ValueError(
                f"TensorBoard: update_freq must be 'batch', 'epoch' or a positive integer; got {update_freq!r}"
            )
        if isinstance(flush_secs, bool) or not isinstance(flush_secs, (int, float)) or not flush_secs >= 0:
            raise ValueError(f"TensorBoard: flush_secs must be a non-negative number; got {flush_secs!r}")
        if isinstance(filters_every, bool) or not isinstance(filters_every, (int, np.integer)) or filters_every < 0:
            raise ValueError(f"TensorBoard: filters_every must be a non-negative integer; got {filters_every!r}")
        if hparams is not None and not isinstance(hparams, dict):
            raise ValueError(f"TensorBoard: hparams must be a mapping of names to values; got {hparams!r}")
        self._tb = _modules()
        self.log_dir = Path(log_dir)
        self.update_freq = update_freq
        self._every = every
        self.flush_secs = float(flush_secs)
        self.filters_every = int(filters_every)
        self.hparams = None if hparams is None else {str(key): _hparam(value) for key, value in hparams.items()}
        self.input_shape = None if input_shape is None else tuple(int(n) for n in input_shape)
        self._run_end_follows = False  # set by for_run: write_run_end draws the pictures
        self._file: _EventFile | None = None
        self._pending: list[tuple] = []  # (step, wall time, loss, accuracy, schedule time) per kept batch
        self._steps = 1
        self._epoch = 0
        self._epochs_done = 0
        self._last_write = 0.0

    @classmethod
    def for_run(cls, run_dir, hparams: dict | None = None, **kwargs) -> TensorBoard:
        """The callback of the run in ``run_dir``: events in ``run_dir/tensorboard``, and the
        run's end (pictures, final figures) left to :meth:`write_run_end`."""
        callback = cls(Path(run_dir) / "tensorboard", hparams=hparams, **kwargs)
        callback._run_end_follows = True
        return callback

    # -- steps ---------------------------------------------------------------------------
    @property
    def end_step(self) -> int:
        """The step of the end-of-training values: one past the last batch trained so far."""
        return self._epochs_done * self._steps

    # -- hooks ---------------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        """Open a new events file in ``log_dir`` and write the purge marker at the fit's first
        step and, if given, the hparams."""
        params = self.params or {}
        self._steps = max(int(params.get("steps") or 1), 1)
        self._epochs_done = self._epoch = int(params.get("initial_epoch") or 0)
        self._pending = []
        self.close()
        self._file = _EventFile(self.log_dir, self._tb)
        first = self._epochs_done * self._steps
        tb = self._tb
        # the purge marker: readers drop what an earlier fit wrote at or after this fit's first step
        self._file.write(
            tb.event_pb2.Event(
                wall_time=time.time(),
                step=first,
                session_log=tb.event_pb2.SessionLog(status=tb.event_pb2.SessionLog.START),
            )
        )
        if self.hparams:
            self._summary(tb.summary_v2.hparams_pb(self.hparams), first)
        self._file.flush()
        self._last_write = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """Note the epoch, for the steps of its batches."""
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Buffer every ``update_freq``-th batch's ``iteration/*`` values (written at the
        epoch's end or after ``flush_secs``)."""
        if self._every is None:
            return
        step = self._epoch * self._steps + batch
        if step % self._every:
            return
        self._pending.append((step, time.time(), logs["loss"], logs["accuracy"], self._epoch + batch / self._steps))
        if time.monotonic() - self._last_write >= self.flush_secs:
            self._write_pending()
            self._file.flush()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Write the buffered batches and the ``epoch/*`` values (and the first layer every ``filters_every`` epochs)."""
        logs = logs or {}
        self._write_pending()
        step = (epoch + 1) * self._steps - 1
        values = {
            f"epoch/{key}": logs[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr") if key in logs
        }
        self._scalars(values, step)
        self._epochs_done = epoch + 1
        if self.filters_every and self._epochs_done % self.filters_every == 0:
            self._first_layer(step)
        self._file.flush()

    def on_train_end(self, logs=None) -> None:
        """Write what is buffered; used on its own, also the first layer's picture and the
        session's end, then close the file (a run's callback waits for :meth:`write_run_end`)."""
        if self._file is None:
            return
        self._write_pending()
        if not self._run_end_follows:
            self._first_layer(self.end_step)
            self._session_end()
            self.close()
        else:
            self._file.flush()

    def write_run_end(self, figures: dict, images: dict | None = None) -> None:
        """The end of a run, once its final figures are known: ``images`` (``{name: PNG file}``,
        missing files skipped) as ``images/<name>``, the ``test_*`` / ``val_*`` figures of
        ``figures`` (``metrics.json``) as ``final/*`` (the HParams metrics), and the session's
        end; then the file is closed."""
        if self._file is None:
            raise RuntimeError("TensorBoard: write_run_end needs a fit first (no events file is open)")
        step = self.end_step
        for name, path in (images or {}).items():
            if Path(path).is_file():
                self._image(f"images/{name}", Path(path).read_bytes(), step)
        keys = ("test_accuracy", "test_loss", "val_accuracy", "val_loss")
        self._scalars({f"final/{key}": figures[key] for key in keys if figures.get(key) is not None}, step)
        self._session_end()
        self.close()

    def close(self) -> None:
        """Write what is buffered, then close the events file (a later fit opens a new one)."""
        if self._file is not None:
            self._write_pending()
            self._file.close()
            self._file = None

    # -- writing ---------------------------------------------------------------------------
    def _event(self, summary, step: int, wall_time: float | None = None):
        return self._tb.event_pb2.Event(
            wall_time=time.time() if wall_time is None else wall_time, step=int(step), summary=summary
        )

    def _summary(self, summary, step: int) -> None:
        self._file.write(self._event(summary, step))

    def _scalars(self, values: dict, step: int, wall_time: float | None = None) -> None:
        if values:
            Value = self._tb.summary_pb2.Summary.Value
            summary = self._tb.summary_pb2.Summary(
                value=[Value(tag=tag, simple_value=float(value)) for tag, value in values.items()]
            )
            self._file.write(self._event(summary, step, wall_time))

    def _write_pending(self) -> None:
        """Write the buffered per-iteration values (one event per step)."""
        schedule = getattr(getattr(self.model, "optimizer", None), "lr_scheduler", None)
        for step, wall_time, loss, accuracy, t in self._pending:
            values = {"iteration/loss": loss, "iteration/accuracy": accuracy}
            if schedule is not None:
                values["iteration/lr"] = schedule(t)
            self._scalars(values, step, wall_time)
        self._pending = []
        self._last_write = time.monotonic()

    def _image(self, tag: str, png: bytes, step: int) -> None:
        width, height, channels = _png_size(png)
        Summary = self._tb.summary_pb2.Summary
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
        self._summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def _first_layer(self, step: int) -> None:
        """``images/first_layer``: the first layer with weights, drawn by plots.plot_first_layer."""
        from . import plots

        layer = next((layer for layer in self.model.layers if "W" in layer.parameters), None)
        if layer is None:
            return
        with tempfile.TemporaryDirectory(prefix="tensorboard-") as tmp:
            path = plots.plot_first_layer(layer.parameters["W"], Path(tmp) / "first_layer.png", self.input_shape)
            self._image("images/first_layer", path.read_bytes(), step)

    def _session_end(self) -> None:
        if not self.hparams:
            return
        tb = self._tb
        info = tb.plugin_data_pb2.SessionEndInfo(status=tb.api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
        metadata = tb.metadata.create_summary_metadata(tb.plugin_data_pb2.HParamsPluginData(session_end_info=info))
        Value = tb.summary_pb2.Summary.Value
        value = Value(tag=tb.metadata.SESSION_END_INFO_TAG, metadata=metadata, tensor=tb.metadata.NULL_TENSOR)
        self._summary(tb.summary_pb2.Summary(value=[value]), self.end_step)
