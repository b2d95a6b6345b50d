"""The course's starter helpers, under the names its scripts and notebook import.

* :class:`AttrDict` -- a ``dict`` whose keys are also attributes (``args.lr``, ``args["lr"]``);
* :func:`check_gradients` -- the spec's finite-difference gradient check, returning the relative
  error ``||numerical - grad|| / ||numerical + grad||``; :func:`numerical_gradient` is the
  estimate it compares with;
* :func:`integers_to_one_hot`, :func:`center`, :func:`normalize`, :func:`standardize` -- data helpers.

The submodules keep the paths of older course releases importable:
``neural_networks.utils.data_structures``, ``.grad_check`` and ``.data_processing``.
"""

from .data_processing import center, normalize, standardize
from .data_structures import AttrDict, integers_to_one_hot, to_plain
from .grad_check import check_gradients, numerical_gradient

__all__ = [
    "AttrDict",
    "to_plain",
    "integers_to_one_hot",
    "check_gradients",
    "numerical_gradient",
    "center",
    "normalize",
    "standardize",
]
