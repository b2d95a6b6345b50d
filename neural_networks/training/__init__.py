"""Training: the fit loop (:mod:`.loop`: :func:`fit`, :class:`TrainingDiverged`) and the batch
prefetching only it uses (:mod:`.prefetch`).

The epoch arithmetic (:func:`check_epochs`, :func:`epoch_count`, :func:`epoch_batches`) lives
in :mod:`neural_networks.epochs`, below the callbacks that share it (the progress bar), and is
importable from here too. The callbacks the loop runs are :mod:`neural_networks.callbacks`.
"""

from .loop import TrainingDiverged, check_epochs, epoch_batches, epoch_count, fit

__all__ = ["fit", "check_epochs", "epoch_count", "epoch_batches", "TrainingDiverged"]
