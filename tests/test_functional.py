"""Array kernels: im2col against a loop, col2im as its adjoint, chunked products, and the two
input-gradient paths of the convolution agreeing."""

import itertools
import unittest

import numpy as np

from neural_networks.functional import conv, geometry, planes, pool, scatter


def im2col_loop(X, kernel, stride, pad, out_hw):
    kh, kw = kernel
    Xp = np.pad(X, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
    n, c = X.shape[0], X.shape[3]
    out = np.zeros((n, *out_hw, kh, kw, c))
    for r, s, i, j in itertools.product(range(out_hw[0]), range(out_hw[1]), range(kh), range(kw)):
        out[:, r, s, i, j, :] = Xp[:, r * stride + i, s * stride + j, :]
    return out


CASES = [
    ((2, 5, 6, 3), (3, 3), 1, (1, 1)),
    ((1, 7, 7, 2), (3, 2), 2, (0, 1)),
    ((2, 6, 5, 1), (2, 2), 3, (2, 0)),
    ((3, 4, 4, 4), (1, 1), 1, (0, 0)),
    ((1, 5, 5, 2), (5, 5), 1, (2, 2)),
]


class TestIm2Col(unittest.TestCase):
    def test_matches_loop_and_col2im_is_its_adjoint(self):
        rng = np.random.default_rng(0)
        for shape, kernel, stride, pad in CASES:
            with self.subTest(shape=shape, kernel=kernel, stride=stride, pad=pad):
                out_hw = tuple(geometry.conv_output_size(shape[1 + a], kernel[a], pad[a], stride) for a in (0, 1))
                X = rng.standard_normal(shape)
                cols = conv.im2col(X, kernel, stride, pad, out_hw)
                np.testing.assert_array_equal(cols, im2col_loop(X, kernel, stride, pad, out_hw))
                Y = rng.standard_normal(cols.shape)
                # <im2col(X), Y> == <X, col2im(Y)>
                self.assertAlmostEqual(
                    float(np.sum(cols * Y)), float(np.sum(X * scatter.col2im(Y, shape, kernel, stride, pad))), places=9
                )

    def test_patch_matmul_chunks_do_not_change_the_result(self):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((5, 6, 6, 3)).astype(np.float32)
        W = rng.standard_normal((27, 4)).astype(np.float32)
        view = geometry.patches(geometry.pad_nhwc(X, (1, 1)), (3, 3), 1, (6, 6))
        full = np.ascontiguousarray(view).reshape(-1, 27) @ W
        for chunk_rows in (1, 36, 50, 1000):
            keep = np.empty(view.shape, dtype=np.float32)
            out = conv.patch_matmul(view, W, np.empty((5 * 36, 4), np.float32), keep=keep, chunk_rows=chunk_rows)
            np.testing.assert_allclose(out, full, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(keep, view)

    def test_transposed_convolution_equals_col2im_path(self):
        rng = np.random.default_rng(2)
        for kernel, pad in (((3, 3), (1, 1)), ((3, 3), (0, 0)), ((2, 3), (1, 2)), ((5, 1), (4, 0))):
            with self.subTest(kernel=kernel, pad=pad):
                self.assertTrue(conv.transposed_conv_applies(kernel, 1, pad))
                X = rng.standard_normal((2, 6, 7, 3))
                W = rng.standard_normal((*kernel, 3, 4))
                Z, cache = conv.conv2d_forward(X, W, np.zeros((1, 4)), 1, pad)
                dZ = rng.standard_normal(Z.shape)
                dX, dW, db = conv.conv2d_backward(dZ, W, cache, 1, pad)
                dcols = (dZ.reshape(-1, 4) @ W.reshape(-1, 4).T).reshape(*Z.shape[:3], *kernel, 3)
                np.testing.assert_allclose(dX, scatter.col2im(dcols, X.shape, kernel, 1, pad), rtol=1e-10, atol=1e-10)
        self.assertFalse(conv.transposed_conv_applies((3, 3), 2, (1, 1)))
        self.assertFalse(conv.transposed_conv_applies((3, 3), 1, (3, 3)))

    def test_both_input_gradient_paths_match_a_loop(self):
        """Stride-1 layers that widen a lot scatter ``dZ W^T`` (col2im); the others gather
        patches of ``dZ``. Each path, chunk by chunk and with the fused ReLU, against a loop."""
        self.assertTrue(conv.gathers_input_gradient(64, 64))
        self.assertTrue(conv.gathers_input_gradient(24, 64))
        self.assertFalse(conv.gathers_input_gradient(64, 256))
        self.assertFalse(conv.gathers_input_gradient(6, conv.SCATTER_MIN_FILTERS))
        rng = np.random.default_rng(4)
        f = conv.SCATTER_MIN_FILTERS
        cases = [  # (c, f, kernel, pad, stride): the first three scatter (all wider than thin inputs)
            (6, f, (3, 3), (1, 1), 1),
            (16, f, (2, 3), (1, 0), 1),
            (5, f, (3, 3), (0, 0), 1),
            (f, f, (3, 3), (1, 1), 1),
            (6, f, (3, 3), (1, 1), 2),
        ]
        saved = conv.CHUNK_ROWS
        try:
            for (c, f_out, kernel, pad, stride), chunk_rows, relu in itertools.product(cases, (1, 1000), (False, True)):
                with self.subTest(
                    c=c, f=f_out, kernel=kernel, pad=pad, stride=stride, chunk_rows=chunk_rows, relu=relu
                ):
                    conv.CHUNK_ROWS = chunk_rows  # 1: one image per chunk
                    X = rng.standard_normal((3, 6, 5, c))
                    W = rng.standard_normal((*kernel, c, f_out))
                    Z, cache = conv.conv2d_forward(X, W, None, stride, pad, relu=relu)
                    dZ = rng.standard_normal(Z.shape)
                    dX, _, _ = conv.conv2d_backward(
                        dZ, W, cache, stride, pad, need_db=False, relu_output=Z if relu else None
                    )
                    np.testing.assert_allclose(
                        dX,
                        _input_gradient_loop(dZ * (Z > 0) if relu else dZ, W, X.shape, stride, pad),
                        rtol=1e-10,
                        atol=1e-10,
                    )
        finally:
            conv.CHUNK_ROWS = saved


def _input_gradient_loop(dZ, W, in_shape, stride, pad):
    """``dL/dX`` of a cross-correlation, one kernel offset and output position at a time."""
    n, h, w, c = in_shape
    kh, kw = W.shape[:2]
    dX_pad = np.zeros((n, h + 2 * pad[0], w + 2 * pad[1], c))
    for r, s, i, j in itertools.product(range(dZ.shape[1]), range(dZ.shape[2]), range(kh), range(kw)):
        dX_pad[:, r * stride + i, s * stride + j, :] += dZ[:, r, s, :] @ W[i, j].T
    return dX_pad[:, pad[0] : pad[0] + h, pad[1] : pad[1] + w, :]


class TestInferenceConvolution(unittest.TestCase):
    def test_backward_after_a_forward_without_kept_patches(self):
        rng = np.random.default_rng(3)
        for c in (3, 6):  # channel planes, im2col
            with self.subTest(c=c):
                X = rng.standard_normal((2, 5, 5, c))
                W = rng.standard_normal((3, 3, c, 4))
                b = rng.standard_normal((1, 4))
                Z1, kept = conv.conv2d_forward(X, W, b, 2, (1, 1))
                Z2, rebuilt = conv.conv2d_forward(X, W, b, 2, (1, 1), keep_cols=False)
                self.assertIsNone(rebuilt[0])
                np.testing.assert_array_equal(Z1, Z2)
                dZ = rng.standard_normal(Z1.shape)
                for a, b_ in zip(
                    conv.conv2d_backward(dZ, W, kept, 2, (1, 1)), conv.conv2d_backward(dZ, W, rebuilt, 2, (1, 1))
                ):
                    np.testing.assert_allclose(a, b_, rtol=1e-12)

    def test_thin_input_patches_are_channel_planes(self):
        """A thin input's kept patches: row ``(i, j, ch)`` is plane ``ch`` of the padded input
        shifted by ``(i, j)`` (checked against a loop); a wrong buffer is refused."""
        rng = np.random.default_rng(5)
        X = rng.standard_normal((3, 5, 6, 2))
        W = rng.standard_normal((3, 2, 2, 4))
        stride, pad = 2, (1, 1)
        Z, (cols, _) = conv.conv2d_forward(X, W, None, stride, pad)
        ho, wo = Z.shape[1:3]
        self.assertEqual(cols.shape, planes.plane_patches_shape(3, (ho, wo), (3, 2), 2))
        X_pad = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
        for i, j, ch, k, r, s in itertools.product(range(3), range(2), range(2), range(3), range(ho), range(wo)):
            self.assertEqual(cols[i, j, ch, k, r, s], X_pad[k, r * stride + i, s * stride + j, ch])
        with self.assertRaisesRegex(ValueError, "cols must be a C-contiguous"):
            conv.conv2d_forward(X, W, None, stride, pad, cols=np.empty((3, ho, wo, 3, 2, 2)))


if __name__ == "__main__":
    unittest.main()


class TestPoolingLeftOver(unittest.TestCase):
    """Non-overlapping windows that do not tile the map (31x31 pooled 2x2 by 2): the rows and
    columns no window covers get zero gradient, the rest the loop reference's."""

    def test_uncovered_cells_get_zero_gradient(self):
        rng = np.random.default_rng(3)
        for h, w in ((5, 5), (7, 4), (31, 31), (6, 9)):
            for mode in ("max", "average"):
                with self.subTest(h=h, w=w, mode=mode):
                    np.full((4096,), np.nan)  # leave garbage in freed memory that np.empty may reuse
                    X = rng.standard_normal((2, h, w, 3))
                    Y, cache = pool.pool2d_forward(X, (2, 2), 2, (0, 0), mode)
                    dY = rng.standard_normal(Y.shape)
                    dX = pool.pool2d_backward(dY, cache, (2, 2), 2, (0, 0), mode)
                    expected = np.zeros_like(X)
                    for i, j in itertools.product(range(Y.shape[1]), range(Y.shape[2])):
                        window = X[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                        for n, c in itertools.product(range(2), range(3)):
                            if mode == "average":
                                expected[n, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c] += dY[n, i, j, c] / 4
                            else:
                                r, s = np.unravel_index(np.argmax(window[n, :, :, c]), (2, 2))
                                expected[n, 2 * i + r, 2 * j + s, c] += dY[n, i, j, c]
                    np.testing.assert_array_equal(dX, expected)
