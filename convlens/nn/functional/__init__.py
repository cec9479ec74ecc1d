"""Stateless operations on tensors, named as in `torch.nn.functional` (conventionally imported as ``F``)."""

from convlens.nn.functional.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from convlens.nn.functional.conv import conv1d, conv2d, conv3d
from convlens.nn.functional.conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d
from convlens.nn.functional.dropout import dropout1d, dropout2d, dropout3d
from convlens.nn.functional.layer_norm import group_norm, instance_norm, layer_norm, local_response_norm
from convlens.nn.functional.linear import dropout, flatten, linear
from convlens.nn.functional.loss import cross_entropy, mse_loss, nll_loss
from convlens.nn.functional.nonlinearities import (
    celu,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    logsigmoid,
    mish,
    prelu,
    relu6,
    selu,
    silu,
    softplus,
    softsign,
)
from convlens.nn.functional.normalization import batch_norm
from convlens.nn.functional.padding import pad
from convlens.nn.functional.pooling import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    weighted_avg_pool1d,
    weighted_avg_pool2d,
    weighted_avg_pool3d,
)

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "linear", "flatten", "dropout",
    "cross_entropy", "nll_loss", "mse_loss",
    "batch_norm",
    "conv1d", "conv2d", "conv3d", "pad",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "weighted_avg_pool1d", "weighted_avg_pool2d", "weighted_avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    # issue 11
    "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh", "relu6", "softplus",
    "softsign", "logsigmoid", "prelu", "dropout1d", "dropout2d", "dropout3d", "layer_norm", "group_norm",
    "instance_norm", "local_response_norm", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "max_unpool1d", "max_unpool2d",
    "max_unpool3d", "one_hot", "embedding", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "soft_margin_loss", "cosine_similarity",
]

# ---- issue 11 -----------------------------------------------------------------------------------------
from convlens.nn.functional.elementwise_loss import (  # noqa: E402
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_similarity,
    huber_loss,
    kl_div,
    l1_loss,
    smooth_l1_loss,
    soft_margin_loss,
)
from convlens.nn.functional.encoding import embedding, one_hot  # noqa: E402
from convlens.nn.functional.interpolate import (  # noqa: E402
    interpolate,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)
from convlens.nn.functional.unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: E402

