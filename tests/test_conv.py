"""Convolution: gradient checks, PyTorch parity over a grid, the course's properties, and bad input."""

import itertools
import zlib

import numpy as np
import pytest

import convlens as cl
from convlens.nn.functional.conv import conv1d, conv2d, conv3d
from convlens.testing import gradcheck

CONVS = {1: conv1d, 2: conv2d, 3: conv3d}
SPATIAL = {1: (7,), 2: (6, 5), 3: (5, 5, 5)}
KERNEL = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}  # non-square on purpose


def _t(a, grad=True):
    return cl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


@pytest.fixture(params=["im2col", "direct"])
def algorithm(request, monkeypatch):
    """Run a test once with im2col + GEMM only and once with the direct loops wherever they can run
    (stride 1, groups 1; the normal thresholds would pick by channel count and shape)."""
    from convlens.kernels import direct

    if request.param == "im2col":
        monkeypatch.setattr(direct, "MAX_CHANNELS", dict.fromkeys((1, 2, 3), 0))
    else:
        monkeypatch.setattr(direct, "MAX_CHANNELS", dict.fromkeys((1, 2, 3), 1 << 30))
        monkeypatch.setattr(direct, "MAX_OUT_CHANNELS", dict.fromkeys((1, 2, 3), 1 << 30))
        monkeypatch.setattr(direct, "MIN_USEFUL", 0.0)
    return request.param


GRAD_CASES = [
    # (dims, groups, stride, padding, dilation, padding_mode)
    (1, 1, 1, 0, 1, "zeros"),
    (1, 2, 2, 1, 1, "replicate"),
    (1, 1, 1, 2, 2, "reflect"),
    (1, 1, 3, 1, 1, "circular"),
    (2, 1, 1, 1, 1, "zeros"),
    (2, 1, 2, 1, 1, "replicate"),
    (2, 2, 1, 2, 1, "reflect"),
    (2, 1, 2, 1, 2, "circular"),
    (2, 1, 1, "same", 1, "zeros"),
    (2, 4, 1, 1, 1, "replicate"),  # depthwise
    (3, 1, 1, 1, 1, "zeros"),
    (3, 2, 2, 1, 1, "replicate"),
    (3, 1, (1, 2, 1), (1, 0, 1), (1, 1, 2), "zeros"),
]


@pytest.mark.parametrize("d,groups,stride,padding,dilation,mode", GRAD_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_gradcheck(d, groups, stride, padding, dilation, mode, bias, algorithm):
    # a stable seed: hash() of strings differs per process (PYTHONHASHSEED), so a failure would not reproduce
    rng = np.random.default_rng(zlib.crc32(repr((d, groups, stride, padding, mode)).encode()))
    x = _t(rng.standard_normal((2, 4, *SPATIAL[d])))
    k = 8 if groups == 4 else 6
    w = _t(rng.standard_normal((k, 4 // groups, *KERNEL[d])))
    b = _t(rng.standard_normal(k)) if bias else None
    inputs = [x, w] + ([b] if bias else [])

    def f(x, w, b=None):
        return CONVS[d](x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)

    assert gradcheck(f, inputs, max_checks=40)


def test_conv_float32_stays_float32():
    x = cl.randn(2, 3, 8, 8, requires_grad=True)
    w = cl.randn(4, 3, 3, 3, requires_grad=True)
    y = conv2d(x, w, padding=1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_first_layer_skips_input_gradient():
    x = cl.randn(2, 1, 8, 8)  # data: no gradient wanted
    w = cl.randn(4, 1, 3, 3, requires_grad=True)
    conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None


# ---- the course's properties ---------------------------------------------------------------------


def test_course_output_size_and_parameters():
    """A 3×32×32 input through ten 5×5 kernels, stride 1, padding 2 → 10×32×32, (5·5·3)·10 + 10 = 760."""
    x = cl.randn(1, 3, 32, 32)
    w, b = cl.randn(10, 3, 5, 5), cl.randn(10)
    assert conv2d(x, w, b, stride=1, padding=2).shape == (1, 10, 32, 32)
    assert w.numel() + b.numel() == (5 * 5 * 3) * 10 + 10 == 760
    assert cl.nn.conv_output_size(32, 5, 1, 2) == (32 - 5 + 2 * 2) // 1 + 1


def test_convolution_is_a_sum_of_products():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    w = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], dtype=np.float32)  # Sobel x
    y = conv2d(cl.tensor(x), cl.tensor(w), cl.tensor([0.5]))._data
    assert y[0, 0, 1, 2] == pytest.approx((x[0, 0, 1:4, 2:5] * w[0, 0]).sum() + 0.5)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_translation_equivariance(d):
    """Shift the input and the feature map shifts by the same amount (away from the border)."""
    rng = np.random.default_rng(d)
    size = (12,) * d
    x = np.zeros((1, 2, *size), dtype=np.float32)
    x[(0, slice(None), *(slice(3, 6),) * d)] = rng.standard_normal((2, *(3,) * d))
    w = rng.standard_normal((3, 2, *(3,) * d)).astype(np.float32)
    shifted = np.roll(x, shift=2, axis=-1)
    y = CONVS[d](cl.tensor(x), cl.tensor(w), padding=1)._data
    ys = CONVS[d](cl.tensor(shifted), cl.tensor(w), padding=1)._data
    np.testing.assert_allclose(np.roll(y, 2, axis=-1), ys, atol=1e-5)


def test_weight_sharing_many_kernels_many_maps():
    x = cl.randn(2, 3, 9, 9)
    w = cl.randn(7, 3, 3, 3)
    y = conv2d(x, w)
    assert y.shape == (2, 7, 7, 7)  # one feature map per kernel


def test_replicate_padding_copies_the_border():
    x = cl.tensor(np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3))
    ident = cl.tensor(np.array([[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]], dtype=np.float32))
    zero = conv2d(x, ident, padding=1, padding_mode="zeros")._data
    copy = conv2d(x, ident, padding=1, padding_mode="replicate")._data
    np.testing.assert_array_equal(zero, x._data)  # identity kernel: padding invisible
    w = cl.tensor(np.ones((1, 1, 3, 3), dtype=np.float32))
    corner_zero = conv2d(x, w, padding=1)._data[0, 0, 0, 0]
    corner_copy = conv2d(x, w, padding=1, padding_mode="replicate")._data[0, 0, 0, 0]
    assert corner_zero == 0 + 1 + 3 + 4
    assert corner_copy == 4 * 0 + 2 * 1 + 2 * 3 + 4  # the corner value 0 copied into 5 border cells
    np.testing.assert_array_equal(copy.shape, zero.shape)


def test_video_and_mri_volumes():
    video = cl.randn(1, 3, 8, 16, 16)  # 3×s×m×n
    mri = cl.randn(1, 1, 8, 16, 16)  # 1×s×m×n
    assert conv3d(video, cl.randn(4, 3, 3, 3, 3), padding=1).shape == (1, 4, 8, 16, 16)
    assert conv3d(mri, cl.randn(4, 1, 3, 3, 3), stride=2).shape == (1, 4, 3, 7, 7)


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: conv2d(cl.randn(1, 28, 28), cl.randn(6, 1, 5, 5)), r"conv2d: expected a 4-d input \(N, C, H, W\), got a 3-d input of shape \(1, 28, 28\)"),
        (lambda: conv2d(cl.randn(8, 1, 28, 28), cl.randn(16, 3, 5, 5)), r"expects input with 3 channels, got \(8, 1, 28, 28\)"),
        (lambda: conv2d(cl.randn(1, 3, 4, 4), cl.randn(2, 3, 5, 5)), r"conv2d: kernel of size \(5, 5\).*larger than the padded input \(4, 4\)"),
        (lambda: conv2d(cl.randn(1, 4, 8, 8), cl.randn(6, 2, 3, 3), groups=3), r"groups=3 must divide both in_channels \(4\)"),
        (lambda: conv2d(cl.randn(1, 3, 8, 8), cl.randn(2, 3, 3, 3), padding_mode="mirror"), r"unknown padding_mode 'mirror'"),
        (lambda: conv2d(cl.randn(1, 3, 8, 8), cl.randn(2, 3, 3, 3), stride=0), r"conv2d: stride must be >= 1, got 0"),
        (lambda: conv2d(cl.randn(1, 3, 8, 8), cl.randn(2, 3, 3, 3), stride=2, padding="same"), r"padding='same' is not supported for strided"),
        (lambda: conv2d(cl.randn(1, 3, 8, 8), cl.randn(2, 3, 3, 3), stride=1.5), r"conv2d: stride must be an integer"),
        (lambda: conv2d(cl.randn(1, 3, 8, 8), cl.randn(2, 3, 3, 3), padding=(1, 1, 1)), r"padding must have 2 entries"),
        (lambda: conv1d(cl.randn(1, 3, 8), cl.randn(2, 3, 3), padding=8, padding_mode="reflect"), r"reflect padding"),
        (lambda: conv2d(cl.randn(1, 3, 8, 8), cl.randn(2, 3, 3, 3), cl.randn(3)), r"bias must have shape \(2,\)"),
    ],
)
def test_conv_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- PyTorch parity over a grid ------------------------------------------------------------------


def _grid():
    cases = []
    for d, groups, stride, padding, dilation, mode, bias in itertools.product(
        (1, 2, 3), (1, 2), (1, 2), (0, 1, 2, "same"), (1, 2), ("zeros", "replicate", "reflect", "circular"), (True, False)
    ):
        if padding == "same" and (stride > 1 or mode != "zeros"):
            continue
        pad = 0 if padding == "same" else padding
        if any(s + 2 * pad < dilation * (k - 1) + 1 for s, k in zip(SPATIAL[d], KERNEL[d])):
            continue  # kernel larger than the padded input: an error, tested below
        cases.append((d, groups, stride, padding, dilation, mode, bias))
    return cases


GRID = _grid()


def test_grid_is_large_enough():
    for d in (1, 2, 3):
        assert sum(1 for c in GRID if c[0] == d) >= 100


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_matches_torch(d, algorithm):
    torch = pytest.importorskip("torch")
    tf = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[d]
    rng = np.random.default_rng(100 + d)
    checked = 0
    for _, groups, stride, padding, dilation, mode, bias in (c for c in GRID if c[0] == d):
        x = rng.standard_normal((2, 4, *SPATIAL[d]))
        w = rng.standard_normal((6, 4 // groups, *KERNEL[d]))
        b = rng.standard_normal(6) if bias else None
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if bias else None
        if mode != "zeros" and padding:
            ty = tf(torch.nn.functional.pad(tx, (padding,) * 2 * d, mode=mode), tw, tb, stride, 0, dilation, groups)
        else:
            ty = tf(tx, tw, tb, stride, padding, dilation, groups)
        X, W = _t(x), _t(w)
        B = _t(b) if bias else None
        y = CONVS[d](X, W, B, stride, padding, dilation, groups, mode)
        gy = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(gy))
        y.backward(cl.tensor(gy))
        ctx = f"d={d} groups={groups} stride={stride} padding={padding} dilation={dilation} mode={mode}"
        np.testing.assert_allclose(y._data, ty.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg=ctx)
        np.testing.assert_allclose(X.grad._data, tx.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=ctx)
        np.testing.assert_allclose(W.grad._data, tw.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=ctx)
        if bias:
            np.testing.assert_allclose(B.grad._data, tb.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=ctx)
        checked += 1
    assert checked >= 100


def test_conv_float32_matches_torch(algorithm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 3, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    y = conv2d(cl.tensor(x), cl.tensor(w), cl.tensor(b), padding=2)
    ty = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=2)
    np.testing.assert_allclose(y._data, ty.numpy(), rtol=1e-4, atol=1e-4)


def test_direct_path_is_taken_for_few_channels():
    from convlens.kernels import direct

    x = cl.randn(2, 3, 12, 12, requires_grad=True)
    w = cl.randn(5, 3, 5, 5, requires_grad=True)
    assert conv2d(x, w, padding=2)._ctx.direct  # 3 channels in, stride 1: summed in place
    assert not conv2d(x, w, padding=2, stride=2)._ctx.direct  # strided: im2col
    wide = cl.randn(2, direct.MAX_CHANNELS[2] + 1, 12, 12)
    assert not conv2d(wide, cl.randn(5, direct.MAX_CHANNELS[2] + 1, 3, 3, requires_grad=True))._ctx.direct
    many = cl.randn(direct.MAX_OUT_CHANNELS[2] + 1, 3, 5, 5, requires_grad=True)
    assert not conv2d(x, many, padding=2)._ctx.direct
    # a 5×5 kernel on a 6×6 input leaves 4 real outputs of 36 grid positions: too wasteful
    assert not conv2d(cl.randn(2, 3, 6, 6), w)._ctx.direct


@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect", "circular"])
def test_direct_float32_with_relu_matches_torch(mode):
    torch = pytest.importorskip("torch")
    from convlens.nn.functional.conv import conv

    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 3, 17, 13)).astype(np.float32)
    w = rng.standard_normal((7, 3, 5, 3)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    gy = rng.standard_normal((5, 7, 17, 13)).astype(np.float32)
    X, W, B = (cl.tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv(X, W, B, padding=(2, 1), padding_mode=mode, activation="relu")
    assert y._ctx.direct
    y.backward(cl.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tmode = "constant" if mode == "zeros" else mode
    ty = torch.relu(torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (1, 1, 2, 2), mode=tmode), tw, tb))
    ty.backward(torch.tensor(gy))
    for mine, ref in ((y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)):
        np.testing.assert_allclose(mine._data, ref.detach().numpy(), rtol=1e-4, atol=1e-3)


DIRECT_SHAPES = [
    # (input shape, out channels, kernel, padding, dilation): rows longer than a vector with a short last
    # slot (19, 13, 17), channel counts that fill no tile exactly (7, 9, 1), a row of exactly 8, 1-d and 3-d
    ((3, 4, 19), 7, (3,), (1,), (2,)),
    ((2, 3, 17, 13), 9, (5, 3), (2, 1), (1, 1)),
    ((2, 6, 14, 14), 16, (5, 5), (0, 0), (1, 1)),
    ((2, 2, 8, 8), 1, (3, 3), (1, 1), (1, 1)),
    ((2, 2, 4, 6, 11), 5, (2, 3, 3), (1, 0, 1), (1, 1, 2)),
    # the weight gradient sweeps its positions in blocks of direct_kernels.GRAD_BLOCK values of dY: 150
    # rows of 37 outputs × 24 padded channels make 9 blocks, the last one partial
    ((2, 3, 5, 30, 37), 20, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    # 1-d and 3-d layers go direct beyond the 2-d limits (MAX_CHANNELS[d], MAX_OUT_CHANNELS[d]): 1-d
    # 32 → 64, 3-d 64 → 128 at the limits, and 3-d 40 → 63, one tile short
    ((2, 32, 21), 64, (3,), (1,), (1,)),
    ((1, 64, 3, 4, 9), 128, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ((1, 40, 3, 6, 9), 63, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
]


@pytest.mark.parametrize("shape,k,kernel,padding,dilation", DIRECT_SHAPES)
@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect", "circular"])
def test_direct_tiles_match_torch_float64(shape, k, kernel, padding, dilation, mode, monkeypatch):
    torch = pytest.importorskip("torch")
    from convlens.kernels import direct
    from convlens.nn.functional.conv import conv

    monkeypatch.setattr(direct, "MIN_USEFUL", 0.0)
    d = len(kernel)
    rng = np.random.default_rng(len(shape) * 100 + k)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((k, shape[1], *kernel)), rng.standard_normal(k)
    X, W, B = (cl.tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv(X, W, B, padding=padding, dilation=dilation, padding_mode=mode, activation="relu")
    assert y._ctx.direct
    gy = rng.standard_normal(y.shape)
    y.backward(cl.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    pad = [p for q in reversed(padding) for p in (q, q)]
    tp = torch.nn.functional.pad(tx, pad, mode="constant" if mode == "zeros" else mode)
    ty = torch.relu(getattr(torch.nn.functional, f"conv{d}d")(tp, tw, tb, dilation=dilation))
    ty.backward(torch.tensor(gy))
    for mine, ref in ((y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)):
        np.testing.assert_allclose(mine._data, ref.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [1, 3])
def test_direct_limits_of_1d_and_3d_layers_float32(dims):
    """1-d and 3-d layers (no Winograd path) take the direct tiles up to MAX_CHANNELS[d] inputs and
    MAX_OUT_CHANNELS[d] outputs, above the 2-d limits; at both limits the result matches torch in float32."""
    torch = pytest.importorskip("torch")
    from convlens.kernels import direct
    from convlens.nn.functional.conv import conv

    c, k = direct.MAX_CHANNELS[dims], direct.MAX_OUT_CHANNELS[dims]
    assert k > direct.MAX_OUT_CHANNELS[2] and c >= direct.MAX_CHANNELS[2]
    spatial, taps = ((37,), (3,)) if dims == 1 else ((3, 5, 11), (3, 3, 3))
    rng = np.random.default_rng(dims)
    x = rng.standard_normal((3, c, *spatial)).astype(np.float32)
    w = (rng.standard_normal((k, c, *taps)) / 10).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    X, W, B = (cl.tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv(X, W, B, padding=1)
    assert y._ctx.direct
    assert not conv(X, cl.randn(k + 1, c, *taps, requires_grad=True), padding=1)._ctx.direct
    assert not conv(cl.randn(2, c + 1, *spatial), cl.randn(k, c + 1, *taps, requires_grad=True), padding=1)._ctx.direct
    assert not conv(cl.randn(2, 32, 9, 9), cl.randn(k, 32, 3, 3, requires_grad=True), padding=1)._ctx.direct
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(cl.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(torch.nn.functional, f"conv{dims}d")(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(gy))
    for mine, ref in ((y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)):
        ref = ref.detach().numpy()
        np.testing.assert_allclose(mine._data, ref, atol=2e-5 * np.abs(ref).max())


def test_direct_tile_shapes_pad_the_least():
    from convlens.kernels import direct

    assert direct.tile_channels(20) in (4, 5) and direct.tile_channels(6) == 6 and direct.tile_channels(16) == 4
    assert direct.grad_tile(20, 25) == (3, 3) and direct.grad_tile(6, 25) == (1, 9)  # (kv, m): 24 channels, 8
    assert direct.grad_tile(16, 25) == (2, 5) and direct.grad_tile(32, 9) == (2, 5)
    # a row of 19 outputs: slots of 8, 8 and 3 lanes, padded with an empty slot to a multiple of 2
    starts, outs, lanes = direct.slots((21,), (19,), (0,), 2)
    assert lanes.tolist() == [8, 8, 3, 0] and outs.tolist()[:3] == [0, 8, 16] and starts.tolist()[:3] == [0, 8, 16]
    # the interior of a padded 2-d grid (the input gradient with zero padding): rows start past the border
    starts, outs, lanes = direct.slots((9, 10), (5, 6), (2, 2), 1)
    assert starts.tolist() == [2 * 10 + 2 + 10 * r for r in range(5)] and lanes.tolist() == [6] * 5
    assert direct.row_starts((9, 10), (5, 6), (2, 2)).tolist() == starts.tolist()


@pytest.mark.parametrize("shape,stride", [((3, 4, 5, 5), 1), ((2, 3, 6), 2), ((2, 2, 3, 4, 2), 1)])
@pytest.mark.parametrize("relu", [False, True])
def test_kernel_covering_the_input_is_a_dense_layer(shape, stride, relu):
    """LeNet-5's conv3: a 5×5 kernel on a 5×5 map has one output per image, y = x·Wᵀ + b."""
    torch = pytest.importorskip("torch")
    from convlens.nn.functional.conv import conv

    rng = np.random.default_rng(len(shape))
    x, w, b = rng.standard_normal(shape), rng.standard_normal((7, *shape[1:])), rng.standard_normal(7)
    X, W, B = (cl.tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv(X, W, B, stride=stride, activation="relu" if relu else None)
    assert y._ctx.dense and not y._ctx.direct and y.shape == (shape[0], 7) + (1,) * (len(shape) - 2)
    gy = rng.standard_normal(y.shape)
    y.backward(cl.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(torch.nn.functional, f"conv{len(shape) - 2}d")(tx, tw, tb, stride=stride)
    ty = torch.relu(ty) if relu else ty
    ty.backward(torch.tensor(gy))
    for mine, ref in ((y, ty), (X.grad, tx.grad), (W.grad, tw.grad), (B.grad, tb.grad)):
        np.testing.assert_allclose(mine._data, ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert gradcheck(lambda x, w, b: conv(x, w, b, stride=stride, activation="relu" if relu else None),
                     [_t(x), _t(w), _t(b)], max_checks=30)
    # padding makes more than one window: not dense
    assert not conv2d(cl.randn(1, 2, 5, 5), cl.randn(3, 2, 5, 5, requires_grad=True), padding=1)._ctx.dense


# ---- fused conv + ReLU -----------------------------------------------------------------------------


def test_fused_conv_relu_gradcheck(algorithm):
    from convlens.nn.functional.conv import conv

    rng = np.random.default_rng(5)
    x, w, b = _t(rng.standard_normal((2, 3, 6, 6))), _t(rng.standard_normal((4, 3, 3, 3))), _t(rng.standard_normal(4))
    assert gradcheck(lambda x, w, b: conv(x, w, b, padding=1, activation="relu"), [x, w, b], max_checks=40)


def test_sequential_fuses_conv_relu_with_identical_results():
    from convlens import nn

    cl.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 4, 3), nn.ReLU())
    x = cl.tensor(np.random.default_rng(0).standard_normal((2, 3, 10, 10)).astype(np.float32), requires_grad=True)

    def run():
        x.grad = None
        net.zero_grad()
        y = net(x)
        (y * y).sum().backward()
        return y._data.copy(), x.grad._data.copy(), net[0].weight.grad._data.copy(), net[3].bias.grad._data.copy()

    # fusion must actually happen: each conv is called once with activation="relu" and no ReLU runs alone
    calls = []
    real_forward = nn.Conv2d.forward
    real_relu = nn.ReLU.forward

    def conv_forward(self, input, *args, **kwargs):
        calls.append(("conv", kwargs.get("activation")))
        return real_forward(self, input, *args, **kwargs)

    def relu_forward(self, input):
        calls.append(("relu", None))
        return real_relu(self, input)

    nn.Conv2d.forward, nn.ReLU.forward = conv_forward, relu_forward
    try:
        fused = run()
        assert calls == [("conv", "relu"), ("conv", "relu")], calls
        calls.clear()
        seen = []
        handle = net[1].register_forward_hook(lambda m, i, o: seen.append(o.shape))  # a hook turns fusion off
        separate = run()
        handle.remove()
        assert calls == [("conv", None), ("relu", None), ("conv", "relu")], calls
    finally:
        nn.Conv2d.forward, nn.ReLU.forward = real_forward, real_relu
    assert seen == [(2, 8, 10, 10)]
    for a, b in zip(fused, separate):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---- Winograd F(2×2, 3×3) ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(6, 6), (7, 5)])  # even and odd output sizes
def test_winograd_path_gradcheck(size, monkeypatch):
    from convlens.kernels import winograd

    c = winograd.MIN_CHANNELS
    monkeypatch.setattr(winograd, "MIN_POSITIONS", 1)  # small enough for a float64 gradcheck
    assert winograd.applies((3, 3), (1, 1), (1, 1), 1, c, c, 2 * size[0] * size[1])
    rng = np.random.default_rng(11)
    x = _t(rng.standard_normal((2, c, *size)))
    w = _t(rng.standard_normal((c, c, 3, 3)))
    b = _t(rng.standard_normal(c))
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, padding=1), [x, w, b], max_checks=25)


@pytest.mark.parametrize("shape,padding", [((4, 64, 8, 8), 1), ((3, 64, 9, 7), 1), ((2, 96, 6, 10), 0)])
def test_winograd_matches_torch_float32(shape, padding, monkeypatch):
    torch = pytest.importorskip("torch")
    from convlens.kernels import winograd

    monkeypatch.setattr(winograd, "MIN_POSITIONS", 1)
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((64, shape[1], 3, 3)).astype(np.float32)
    X, W = cl.tensor(x, requires_grad=True), cl.tensor(w, requires_grad=True)
    y = conv2d(X, W, padding=padding)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(cl.tensor(g))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=padding)
    ty.backward(torch.tensor(g))
    scale = np.abs(ty.detach().numpy()).max()
    np.testing.assert_allclose(y._data, ty.detach().numpy(), atol=1e-5 * scale)
    np.testing.assert_allclose(X.grad._data, tx.grad.numpy(), atol=1e-5 * np.abs(tx.grad.numpy()).max())
    np.testing.assert_allclose(W.grad._data, tw.grad.numpy(), atol=1e-5 * np.abs(tw.grad.numpy()).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,k,padding,padding_mode,activation", [
    ((2, 64, 8, 8), 64, 1, "zeros", None),
    ((3, 64, 9, 7), 80, 1, "zeros", "relu"),      # odd sizes, K ≠ C, the fused ReLU's mask in dY
    ((2, 96, 6, 10), 64, 0, "zeros", None),       # no padding: dY padded by 2 on every side
    ((2, 64, 5, 7), 72, 2, "zeros", None),        # padding 2: dY not padded at all
    ((2, 64, 7, 6), 64, (2, 0), "zeros", None),   # per-axis padding
    ((2, 64, 6, 6), 64, 1, "reflect", None),      # not zeros: the im2col input gradient instead
    ((4, 64, 16, 16), 64, 1, "zeros", "relu"),    # at the real threshold, MIN_POSITIONS outputs
    ((4, 32, 16, 16), 64, 1, "zeros", "relu"),    # at MIN_CHANNELS = 32 in (VGG's 32 → 64 layer)
    ((2, 33, 6, 7), 39, 1, "zeros", None),        # just above it, 33 → 39: tails after the 8-lane vectors
    ((2, 67, 6, 5), 70, 1, "zeros", None),        # channel counts with a tail after the 8-lane vectors
])
def test_winograd_gradients_match_torch(dtype, shape, k, padding, padding_mode, activation, monkeypatch):
    """Both gradients of a Winograd layer go through Winograd's transforms too: dX as the correlation of
    dY with the turned kernel (kernels/winograd.input_grad), dW as V^T dM per tile position
    (winograd.weight_grad); this checks them against torch and that the paths were taken."""
    torch = pytest.importorskip("torch")
    from convlens.kernels import winograd

    if np.prod(shape) // shape[1] < winograd.MIN_POSITIONS:
        monkeypatch.setattr(winograd, "MIN_POSITIONS", 1)  # small shapes cover the tails quickly
    taken, real_dx, real_dw = [], winograd.input_grad, winograd.weight_grad
    monkeypatch.setattr(winograd, "input_grad", lambda *a: taken.append("dx") or real_dx(*a))
    monkeypatch.setattr(winograd, "weight_grad", lambda *a: taken.append("dw") or real_dw(*a))
    rng = np.random.default_rng(13)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k, shape[1], 3, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    layer = cl.nn.Conv2d(shape[1], k, 3, padding=padding, padding_mode=padding_mode).to(dtype)
    layer.weight._data[...], layer.bias._data[...] = w, b
    net = cl.nn.Sequential(layer, cl.nn.ReLU()) if activation else layer  # Sequential fuses the ReLU
    X = cl.tensor(x, requires_grad=True)
    y = net(X)
    W, B = layer.weight, layer.bias
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(cl.tensor(g))
    tlayer = torch.nn.Conv2d(shape[1], k, 3, padding=padding, padding_mode=padding_mode).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        tlayer.weight.copy_(torch.tensor(w)), tlayer.bias.copy_(torch.tensor(b))
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx)
    ty = torch.relu(ty) if activation else ty
    ty.backward(torch.tensor(g))
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for ours, theirs in [(y._data, ty.detach().numpy()), (X.grad._data, tx.grad.numpy()),
                         (W.grad._data, tlayer.weight.grad.numpy()), (B.grad._data, tlayer.bias.grad.numpy())]:
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs, atol=tol * np.abs(theirs).max())
    # dW through the transforms for every padding mode, dX only for zeros (else the im2col path)
    assert taken == (["dw", "dx"] if padding_mode == "zeros" else ["dw"]), taken


def test_winograd_starts_at_min_positions():
    """Below MIN_POSITIONS outputs (batch × ∏ output size) the 16 small GEMMs lose to im2col's one."""
    from convlens.kernels import winograd
    from convlens.nn.functional.conv import algorithm

    def algo(n, h, w):
        return algorithm((n, 64, h, w), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, (h + 2, w + 2), (h, w))

    assert winograd.MIN_POSITIONS == 1024
    assert algo(4, 16, 16) == "winograd" and algo(1, 32, 32) == "winograd"
    assert algo(3, 16, 21) == "im2col" and algo(1, 15, 15) == "im2col"  # 1,008 and 225 outputs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("k", [256, 255])  # an odd number of output channels: unequal column halves
@pytest.mark.parametrize("openmp", [False, True])
def test_im2col_column_split_matches_torch(dtype, relu, k, openmp, monkeypatch):
    """Single-image inference on a wide layer (kernels/im2col.correlate_channels_first): the GEMM's
    output channels split over the OpenMP threads, each part a one-thread BLAS call (kernels/blas.py),
    or without OpenMP one np.matmul."""
    torch = pytest.importorskip("torch")
    from convlens.kernels import blas, im2col, launch

    if openmp and not blas.available(dtype):
        pytest.skip("NumPy's BLAS is not an ILP64 OpenBLAS, or numba has no OpenMP layer")
    monkeypatch.setattr(launch, "_available", openmp)
    calls = []
    real_split = im2col.parallel.split
    monkeypatch.setattr(im2col.parallel, "split", lambda n, parts: calls.append((n, parts)) or real_split(n, parts))
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 256, 7, 7)).astype(dtype)
    w = rng.standard_normal((k, 256, 3, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    assert 49 * 9 * 256 * k >= blas.MIN_SPLIT
    with cl.no_grad():
        y = cl.nn.functional.conv2d(cl.tensor(x), cl.tensor(w), cl.tensor(b), padding=1)
        if relu:
            y = cl.nn.functional.relu(y)
    t = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1)
    t = torch.relu(t) if relu else t
    tol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y.numpy(), t.numpy(), atol=tol * np.abs(t.numpy()).max())
    if cl.get_num_threads() > 1:
        assert ((k, cl.get_num_threads()) in calls) == openmp, calls  # split by rows: k > 49 positions


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dims,x_shape,k,kernel,stride,padding,dilation", [
    (2, (1, 40, 6, 5), 48, 3, 1, 1, 1),        # 30 outputs < 48 channels: the weight read in place
    (2, (2, 16, 7, 7), 64, (3, 2), 2, 1, (1, 2)),  # strided, dilated, a non-square kernel
    (1, (1, 8, 30), 72, 5, 1, 2, 1),         # more than the direct tiles take in 1-d (64)
    (3, (1, 4, 3, 4, 5), 136, 3, 1, 1, 1),     # more outputs than the 3-d direct tiles take (128)
    (2, (1, 40, 12, 12), 16, 3, 1, 1, 1),      # one image, more outputs than channels
    (2, (3, 64, 2, 3), 48, 3, 1, 1, 1),        # three images, 18 outputs < 48 channels
])
def test_few_outputs_path_matches_torch(dtype, dims, x_shape, k, kernel, stride, padding, dilation, monkeypatch):
    """Fewer output positions than output channels (one image through a wide layer): im2col's columns
    in the weight's own (C, *F) order, no weight transpose (kernels/im2col.correlate_channels_first);
    the backward pass then builds the weight matrix and the channels-last padded input itself."""
    torch = pytest.importorskip("torch")
    from convlens.kernels import im2col

    used = []
    real = im2col.correlate_channels_first
    monkeypatch.setattr(im2col, "correlate_channels_first", lambda *a, **kw: used.append(1) or real(*a, **kw))
    rng = np.random.default_rng(15)
    ks = (kernel,) * dims if isinstance(kernel, int) else kernel
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((k, x_shape[1], *ks)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    X, W, B = (cl.tensor(a, requires_grad=True) for a in (x, w, b))
    conv_cl = getattr(cl.nn.functional, f"conv{dims}d")
    y = conv_cl(X, W, B, stride=stride, padding=padding, dilation=dilation)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(cl.tensor(g))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(torch.nn.functional, f"conv{dims}d")(tx, tw, tb, stride=stride, padding=padding, dilation=dilation)
    ty.backward(torch.tensor(g))
    assert used, "the few-outputs path was not taken"
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for ours, theirs in [(y._data, ty.detach()), (X.grad._data, tx.grad), (W.grad._data, tw.grad), (B.grad._data, tb.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), atol=tol * np.abs(theirs.numpy()).max())


@pytest.mark.parametrize("n,h,w,c", [(3, 6, 5, 67), (2, 9, 8, 16), (1, 4, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_winograd_compiled_transforms_match_numpy(n, h, w, c, dtype, monkeypatch):
    """winograd_kernels.py's transforms against winograd.py's NumPy reference: input (Bᵀ d B), output
    (Aᵀ M A) and its adjoint (A dY Aᵀ), over channel counts with and without a tail after the vectors,
    NaN and Inf included."""
    from convlens.kernels import winograd

    th, tw = -(-h // 2), -(-w // 2)
    gen = np.random.default_rng(17)
    xp = gen.standard_normal((n, 2 * th + 2, 2 * tw + 2, c)).astype(dtype)
    xp[0, 1, 2, c - 1], xp[-1, 3, 0, 0] = np.nan, np.inf
    gl = gen.standard_normal((n, 2 * th, 2 * tw, c)).astype(dtype)
    gl[0, 0, 1, c - 1] = -np.inf
    results = {}
    for compiled in (True, False):
        rng = np.random.default_rng(16)
        monkeypatch.setattr(winograd, "_compiled", lambda *a, on=compiled: on)
        v = np.empty((16, n * th * tw, c), dtype)
        winograd._input_transform(xp, th, tw, v)
        y = np.empty((n, 2 * th, 2 * tw, c), dtype)
        m = rng.standard_normal(v.shape).astype(dtype)
        m[3, 0, c - 1] = np.inf
        winograd._output_transform(m, n, th, tw, y)
        dm = np.empty((16, n * th * tw, c), dtype)
        winograd._output_transform_adjoint(gl, th, tw, dm)
        results[compiled] = v, y, dm
    for ours, ref in zip(results[True], results[False]):
        np.testing.assert_allclose(ours, ref, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-5)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_channels_first_forward_pads_and_fuses_relu_like_torch(mode):
    """One image through a Conv2d + ReLU (fused by Sequential) with a non-zero padding mode: the
    channels-first forward pads x itself, and the backward rebuilds the channels-last padded input."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(18)
    x = rng.standard_normal((1, 40, 9, 8))
    layer = cl.nn.Conv2d(40, 56, 3, padding=2, padding_mode=mode).double()
    net = cl.nn.Sequential(layer, cl.nn.ReLU())
    t = torch.nn.Conv2d(40, 56, 3, padding=2, padding_mode=mode).double()
    with torch.no_grad():
        t.weight.copy_(torch.tensor(layer.weight.detach().numpy())), t.bias.copy_(torch.tensor(layer.bias.detach().numpy()))
    X, tx = cl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = net(X), torch.relu(t(tx))
    g = rng.standard_normal(y.shape)
    y.backward(cl.tensor(g))
    ty.backward(torch.tensor(g))
    for ours, theirs in [(y, ty), (X.grad, tx.grad), (layer.weight.grad, t.weight.grad), (layer.bias.grad, t.bias.grad)]:
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)
