"""Layers: `Module`, containers, convolution, pooling, activation, linear, normalisation and losses."""

from convlens.nn.modules.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from convlens.nn.modules.container import ModuleList, Sequential
from convlens.nn.modules.conv import Conv1d, Conv2d, Conv3d
from convlens.nn.modules.linear import Dropout, Flatten, Identity, Linear
from convlens.nn.modules.loss import CrossEntropyLoss, MSELoss, NLLLoss
from convlens.nn.modules.module import Module, Parameter, RemovableHandle
from convlens.nn.modules.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from convlens.nn.modules.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    WeightedAvgPool1d,
    WeightedAvgPool2d,
    WeightedAvgPool3d,
)

__all__ = [
    "Module", "Parameter", "RemovableHandle", "Sequential", "ModuleList",
    "Conv1d", "Conv2d", "Conv3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "WeightedAvgPool1d", "WeightedAvgPool2d", "WeightedAvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Linear", "Flatten", "Dropout", "Identity",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "CrossEntropyLoss", "NLLLoss", "MSELoss",
]
