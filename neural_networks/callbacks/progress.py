"""What ``verbose=1`` shows: a progress bar per epoch and a one-line summary after it."""

from __future__ import annotations

from ..epochs import epoch_batches, epoch_count
from ..progress import progress_bar
from .base import Callback

__all__ = ["ProgressBar", "summary_line"]


def summary_line(epoch: int, epochs: int, logs: dict) -> str:
    """The one-line epoch summary :class:`ProgressBar` prints (``epoch`` counted from 1)."""
    parts = [f"epoch {epoch}/{epochs}", f"loss {logs['loss']:.4f}", f"acc {logs['accuracy']:.4f}"]
    if "val_loss" in logs:
        parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
    parts += [f"lr {logs['lr']:.3g}", f"{logs['seconds']:.1f}s"]
    return "  ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and accuracy (:func:`neural_networks.progress.progress_bar`:
    a widget in notebooks, text on a terminal, none in a log file or pipe), then a one-line summary.
    A fractional run counts its partial last epoch as one ("epoch 5/5" of 4.5), and its summary
    ends with the batches it trained. What ``verbose=1`` adds."""

    def __init__(self) -> None:
        self._bar = None
        self._loss_sum, self._seen = 0.0, 0
        self._partial = ""  # the summary's note of a partial epoch's batches

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        """Open the epoch's bar, sized to the batches it will train."""
        self._close()
        params = self.params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        total = epoch_batches(epochs, epoch, steps) if epochs is not None and steps else steps
        self._partial = f"  ({total} of {steps} batches)" if steps and total != steps else ""
        self._bar = progress_bar(
            total=total,
            desc=f"epoch {epoch + 1}/{epoch_count(epochs) if epochs is not None else '?'}",
            leave=False,
            unit="batch",
            dynamic_ncols=True,
            disable=None,  # off a terminal, only the summary lines
        )
        self._loss_sum, self._seen = 0.0, 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """Advance the bar and show the running mean loss and the accuracy."""
        self._loss_sum += logs["loss"]
        self._seen += 1
        if self._bar is not None:
            self._bar.set_postfix(
                loss=f"{self._loss_sum / self._seen:.4f}", acc=f"{logs['accuracy']:.3f}", refresh=False
            )
            self._bar.update()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        """Close the bar and print :func:`summary_line` (standard output)."""
        self._close()
        epochs = epoch_count((self.params or {}).get("epochs", epoch + 1))
        print(summary_line(epoch + 1, epochs, logs) + self._partial, flush=True)

    def on_train_end(self, logs=None) -> None:
        """Close a bar left open (training stopped inside an epoch)."""
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
