"""The test suite. Decoded data-set caches of the tests go to a temporary folder of this session
(``$NEURAL_NETWORKS_CACHE``, inherited by the command-line tests' subprocesses), not to the
user's ``~/.cache``, unless the caller set one."""

import atexit
import os
import shutil
import tempfile

if "NEURAL_NETWORKS_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="neural_networks_test_cache.")
    os.environ["NEURAL_NETWORKS_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
