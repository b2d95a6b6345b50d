"""Batch-parallel kernels: slicing, the BLAS thread limit of a region, errors, and convolutions
giving the same results in one thread, in two, and in several uneven slices and chunks."""

import contextlib
import itertools
import os
import threading
import unittest
from unittest import mock

import numpy as np

from neural_networks.functional import batchnorm, conv, geometry, parallel, planes, pool

BLAS = parallel._blas_controller()


def blas_threads() -> int:
    return max(lib.num_threads for lib in BLAS.lib_controllers)


def threads_env(count):
    """Environment with ``NEURAL_NETWORKS_NUM_THREADS`` set to ``count`` (removed for ``None``)."""
    env = {k: v for k, v in os.environ.items() if k != parallel.ENV_THREADS}
    if count is not None:
        env[parallel.ENV_THREADS] = str(count)
    return mock.patch.dict(os.environ, env, clear=True)


@contextlib.contextmanager
def forced(count):
    """``count`` threads for every kernel, however small its work."""
    with threads_env(count), mock.patch.object(parallel, "MIN_PARALLEL_WORK", 0):
        yield


class TestSlices(unittest.TestCase):
    def test_split_points_cover_the_range_evenly(self):
        for n, parts in itertools.product(range(1, 12), range(1, 6)):
            if parts > n:
                continue
            slices = parallel.split_points(n, parts)
            self.assertEqual(len(slices), parts)
            self.assertEqual(slices[0][0], 0)
            self.assertEqual(slices[-1][1], n)
            for (a, b), (c, _) in zip(slices, slices[1:]):
                self.assertEqual(b, c)
            sizes = [b - a for a, b in slices]
            self.assertLessEqual(max(sizes) - min(sizes), 1)
            self.assertGreaterEqual(min(sizes), 1)


@unittest.skipIf(BLAS is None, "no controllable BLAS (threadpoolctl cannot see numpy's BLAS)")
class TestMapBatch(unittest.TestCase):
    def test_results_in_slice_order_and_slices_run_at_once(self):
        together = threading.Barrier(3, timeout=30)  # broken unless three slices run concurrently

        def fn(a, b):
            together.wait()
            return (a, b, blas_threads())

        with forced(3):
            out = parallel.map_batch(fn, 10)
        self.assertEqual([(a, b) for a, b, _ in out], [(0, 3), (3, 6), (6, 10)])
        self.assertTrue(all(t == 1 for _, _, t in out), "BLAS limited to one thread inside the slices")

    @unittest.skipUnless(len(parallel._cpus()) >= 2, "needs two CPUs to pin to")
    def test_slices_are_pinned_to_distinct_cpus_and_the_caller_is_restored(self):
        before = os.sched_getaffinity(0)
        with forced(2):
            out = parallel.map_batch(lambda a, b: os.sched_getaffinity(0), 4)
        self.assertEqual([len(cpus) for cpus in out], [1, 1])
        self.assertNotEqual(out[0], out[1])
        self.assertEqual(os.sched_getaffinity(0), before)

    def test_serial_cases(self):
        def fn(a, b):
            return (a, b)

        with threads_env(2):
            self.assertEqual(parallel.map_batch(fn, 10, work=parallel.MIN_PARALLEL_WORK - 1), [(0, 10)])
            self.assertEqual(parallel.map_batch(fn, 1, work=10**12), [(0, 1)])
        with forced(1):
            self.assertEqual(parallel.map_batch(fn, 10), [(0, 10)])

    def test_nested_call_runs_serially_inside_a_slice(self):
        with forced(2):
            out = parallel.map_batch(lambda a, b: parallel.map_batch(lambda c, d: (c, d), b - a), 8)
        self.assertEqual(out, [[(0, 4)], [(0, 4)]])

    def test_error_in_a_slice_propagates_and_blas_threads_come_back(self):
        before = blas_threads()

        def fn(a, b):
            if a > 0:
                raise RuntimeError(f"slice {a}:{b} failed")
            return a

        with forced(2):
            with self.assertRaisesRegex(RuntimeError, "slice 5:10 failed"):
                parallel.map_batch(fn, 10)
        self.assertEqual(blas_threads(), before)

    def test_region_limits_blas_and_keeps_the_thread_count(self):
        before = blas_threads()
        with threads_env(2):
            with parallel.region():
                self.assertEqual(blas_threads(), 1)
                self.assertEqual(parallel.num_threads(), 2)
                with parallel.region():  # nested: no-op
                    self.assertEqual(blas_threads(), 1)
                self.assertEqual(blas_threads(), 1)
        self.assertEqual(blas_threads(), before)
        with self.assertRaises(KeyError):
            with threads_env(2), parallel.region():
                raise KeyError("inside")
        self.assertEqual(blas_threads(), before)

    def test_bad_thread_count(self):
        for bad in ("0", "-2", "two", "1.5"):
            with threads_env(bad):
                with self.assertRaisesRegex(ValueError, parallel.ENV_THREADS):
                    parallel.num_threads()


def reference_conv(X, W, b, stride, pad, dZ):
    """Z, dX, dW, db of a convolution in float64 with loops over output positions and taps."""
    n, h, w, c = X.shape
    kh, kw, _, f = W.shape
    ho, wo = (geometry.conv_output_size(h, kh, pad[0], stride), geometry.conv_output_size(w, kw, pad[1], stride))
    Xp = np.pad(X, ((0, 0), (pad[0],) * 2, (pad[1],) * 2, (0, 0)))
    Z = np.zeros((n, ho, wo, f)) + b.reshape(f)
    dXp = np.zeros_like(Xp)
    dW = np.zeros_like(W)
    for r, s, i, j in itertools.product(range(ho), range(wo), range(kh), range(kw)):
        x = Xp[:, r * stride + i, s * stride + j, :]
        Z[:, r, s, :] += x @ W[i, j]
        dW[i, j] += x.T @ dZ[:, r, s, :]
        dXp[:, r * stride + i, s * stride + j, :] += dZ[:, r, s, :] @ W[i, j].T
    return Z, dXp[:, pad[0] : pad[0] + h, pad[1] : pad[1] + w], dW, dZ.sum(axis=(0, 1, 2))[None]


CASES = [  # (batch, h, w, c, f, kernel, stride, pad)
    (5, 6, 6, 3, 4, (3, 3), 1, (1, 1)),
    (7, 5, 7, 2, 3, (3, 3), 2, (1, 1)),
    (3, 6, 5, 2, 2, (2, 3), 1, (0, 2)),
    (4, 7, 7, 3, 2, (5, 5), 1, (2, 2)),
    (6, 8, 6, 1, 3, (3, 2), 3, (1, 0)),
    # wider than planes.THIN_MAX_CHANNELS: im2col rather than channel planes
    (5, 6, 6, 5, 4, (3, 3), 1, (1, 1)),
    (4, 7, 5, 6, 3, (3, 3), 2, (1, 1)),
]


@unittest.skipIf(BLAS is None, "no controllable BLAS (threadpoolctl cannot see numpy's BLAS)")
class TestConvolutionSlices(unittest.TestCase):
    """Forward and backward against the loop reference, in 1-4 threads and with chunks of one
    image up to the whole slice (uneven last slices and chunks included), with and without the
    fused ReLU, kept or regathered patches, and with or without dX."""

    def test_against_reference(self):
        rng = np.random.default_rng(0)
        for case, threads, chunk_rows, relu, keep in itertools.product(
            CASES, (1, 2, 3, 4), (1, 50, 10**6), (False, True), (False, True)
        ):
            n, h, w, c, f, kernel, stride, pad = case
            X = rng.standard_normal((n, h, w, c))
            W = rng.standard_normal((*kernel, c, f))
            b = rng.standard_normal((1, f))
            with (
                self.subTest(case=case, threads=threads, chunk_rows=chunk_rows, relu=relu, keep=keep),
                forced(threads),
                mock.patch.object(conv, "CHUNK_ROWS", chunk_rows),
                mock.patch.object(planes, "PLANES_CHUNK_ROWS", chunk_rows),
            ):
                Z, cache = conv.conv2d_forward(X, W, b, stride, pad, keep_cols=keep, relu=relu)
                dY = rng.standard_normal(Z.shape)
                Z_ref, _, _, _ = reference_conv(X, W, b, stride, pad, dY)
                np.testing.assert_allclose(Z, np.maximum(Z_ref, 0) if relu else Z_ref, rtol=1e-10, atol=1e-12)
                dZ = dY * (Z_ref > 0) if relu else dY
                _, dX_ref, dW_ref, db_ref = reference_conv(X, W, b, stride, pad, dZ)
                dX, dW, db = conv.conv2d_backward(dY, W, cache, stride, pad, relu_output=Z if relu else None)
                np.testing.assert_allclose(dX, dX_ref, rtol=1e-10, atol=1e-11)
                np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-11)
                np.testing.assert_allclose(db, db_ref, rtol=1e-10, atol=1e-11)
                no_dX, dW2, no_db = conv.conv2d_backward(
                    dY, W, cache, stride, pad, need_dX=False, need_db=False, relu_output=Z if relu else None
                )
                self.assertIsNone(no_dX)
                self.assertIsNone(no_db)
                np.testing.assert_allclose(dW2, dW_ref, rtol=1e-10, atol=1e-11)

    def test_same_thread_count_same_bits(self):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((9, 8, 8, 4)).astype(np.float32)
        W = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
        dY = rng.standard_normal((9, 8, 8, 5)).astype(np.float32)
        runs = []
        for _ in range(2):
            with forced(2):
                Z, cache = conv.conv2d_forward(X, W, None, 1, (1, 1), relu=True)
                runs.append((Z, *conv.conv2d_backward(dY, W, cache, 1, (1, 1), need_db=False, relu_output=Z)))
        for a, b in zip(*runs):
            if a is not None:
                np.testing.assert_array_equal(a, b)


@unittest.skipIf(BLAS is None, "no controllable BLAS (threadpoolctl cannot see numpy's BLAS)")
class TestMemoryBoundSlices(unittest.TestCase):
    """Batch norm and pooling share their cache-sized blocks among threads: in 1-4 threads, with
    blocks small enough that every thread gets several (an uneven last one too), batch norm
    matches the direct float64 formulas and pooling gives the same bits as one thread."""

    def test_batchnorm_in_threads(self):
        rng = np.random.default_rng(5)
        M, c = 203, 6
        X = rng.standard_normal((M, c)) * 3 + 1
        dZ = rng.standard_normal((M, c))
        gamma, beta = rng.standard_normal((1, c)), rng.standard_normal((1, c))
        mean, var = X.mean(axis=0), X.var(axis=0)
        xhat = (X - mean) / np.sqrt(var + 1e-5)
        Z_ref = np.maximum(xhat * gamma + beta, 0)
        G = dZ * (Z_ref > 0)
        dX_ref = gamma / np.sqrt(var + 1e-5) * (G - G.mean(axis=0) - xhat * (G * xhat).mean(axis=0))
        for threads, shifted in itertools.product((1, 2, 3, 4), (False, True)):
            X_in = X + 1e4 if shifted else X  # a large mean takes the two-pass variance
            with self.subTest(threads=threads, shifted=shifted), forced(threads):
                with mock.patch.object(batchnorm, "BATCHNORM_BLOCK", 7 * c):  # 29 blocks of 7 rows
                    Z, mean_, inv_std, _ = batchnorm.batchnorm_train_forward(X_in, gamma, beta, 1e-5, relu=True)
                    dX, dgamma, dbeta = batchnorm.batchnorm_train_backward(
                        dZ, X_in, mean_, inv_std, gamma, relu_output=Z
                    )
                np.testing.assert_allclose(Z, Z_ref, rtol=1e-7, atol=1e-9)
                np.testing.assert_allclose(dX, dX_ref, rtol=1e-7, atol=1e-9)
                np.testing.assert_allclose(dbeta.ravel(), G.sum(axis=0), rtol=1e-10)
                np.testing.assert_allclose(dgamma.ravel(), (G * xhat).sum(axis=0), rtol=1e-7, atol=1e-9)

    def test_batchnorm_same_thread_count_same_bits(self):
        rng = np.random.default_rng(6)
        X = rng.standard_normal((300, 8)).astype(np.float32)
        dZ = rng.standard_normal((300, 8)).astype(np.float32)
        gamma, beta = np.ones((1, 8), np.float32), np.zeros((1, 8), np.float32)
        runs = []
        for _ in range(2):
            with forced(2), mock.patch.object(batchnorm, "BATCHNORM_BLOCK", 40):
                Z, mean, inv_std, var = batchnorm.batchnorm_train_forward(X, gamma, beta, 1e-5)
                runs.append((Z, mean, var, *batchnorm.batchnorm_train_backward(dZ, X, mean, inv_std, gamma)))
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)

    def test_pooling_in_threads_gives_the_same_bits(self):
        rng = np.random.default_rng(7)
        X = rng.standard_normal((11, 9, 9, 3)).astype(np.float32)
        X[0, :2, :2, 0] = 1.0  # a tie: the gradient goes to the first maximum
        cases = [((2, 2), 2, (0, 0), "max"), ((3, 3), 2, (1, 1), "max"), ((2, 2), 2, (0, 0), "average")]
        for kernel, stride, pad, mode in cases:
            results = {}
            for threads in (1, 2, 3, 4):
                with forced(threads), mock.patch.object(pool, "POOL_BLOCK_BYTES", X[0].nbytes * 2):  # 2 images
                    Y, cache = pool.pool2d_forward(X, kernel, stride, pad, mode)
                    dY = np.arange(Y.size, dtype=np.float32).reshape(Y.shape) / Y.size
                    results[threads] = (Y, pool.pool2d_backward(dY, cache, kernel, stride, pad, mode))
            for threads in (2, 3, 4):
                with self.subTest(kernel=kernel, mode=mode, threads=threads):
                    for one, other in zip(results[1], results[threads]):
                        np.testing.assert_array_equal(one, other)
            Y, dX = results[1]
            if mode == "max" and pad == (0, 0):  # against a reshape of the tiles, and the tie
                tiles = X[:, :8, :8].reshape(11, 4, 2, 4, 2, 3)
                np.testing.assert_array_equal(Y, tiles.max(axis=(2, 4)))
                self.assertEqual(dX[0, 0, 1, 0], 0.0)
                self.assertEqual(dX[0, 0, 0, 0], dY[0, 0, 0, 0])


@unittest.skipIf(BLAS is None, "no controllable BLAS (threadpoolctl cannot see numpy's BLAS)")
class TestModelSteps(unittest.TestCase):
    """Training steps of a small CNN (conv+ReLU, conv, batch norm, pooling, dense) in one thread and
    in two end with the same parameters up to float32 rounding; BLAS threads are restored."""

    def build(self):
        from neural_networks.layers import BatchNorm, Conv2D, Flatten, FullyConnected, Pool2D
        from neural_networks.models import NeuralNetwork

        layers = [
            Conv2D(6),
            Conv2D(8, activation="linear", use_bias=False),
            Pool2D((2, 2), stride=2),
            BatchNorm(activation="relu"),
            Flatten(),
            FullyConnected(4, activation="softmax"),
        ]
        return NeuralNetwork(
            layers=layers, loss="cross_entropy", seed=3, optimizer_args={"name": "sgd", "lr": 0.1, "momentum": 0.9}
        )

    def test_one_and_two_threads_agree(self):
        rng = np.random.default_rng(4)
        X = rng.standard_normal((10, 8, 8, 3)).astype(np.float32)
        Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 10)]
        before = blas_threads()
        models = {}
        for threads in (1, 2):
            model = self.build()
            with forced(threads):
                for epoch in range(3):
                    model.train_step(X, Y, epoch)
                models[threads] = model
            self.assertEqual(blas_threads(), before)
        self.assertTrue(models[2].layers[0].splits_batch)
        for one, two in zip(models[1].layers, models[2].layers):
            for key in one.parameters:
                np.testing.assert_allclose(one.parameters[key], two.parameters[key], rtol=2e-4, atol=2e-5)


if __name__ == "__main__":
    unittest.main()
