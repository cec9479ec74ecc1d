"""Stateless operations on tensors, named as in `torch.nn.functional` (conventionally imported as ``F``)."""

from convlens.nn.functional.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from convlens.nn.functional.conv import conv1d, conv2d, conv3d
from convlens.nn.functional.linear import dropout, flatten, linear
from convlens.nn.functional.loss import cross_entropy, mse_loss, nll_loss
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
]
