"""``python -m neural_networks``: the command line (see :mod:`neural_networks.cli`)."""

from .cli import main

raise SystemExit(main())
