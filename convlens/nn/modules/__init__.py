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
    # issue 11
    "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Hardtanh", "ReLU6", "Softplus",
    "Softsign", "LogSigmoid", "PReLU", "Dropout1d", "Dropout2d", "Dropout3d", "Unflatten",
    "ModuleDict", "ParameterList", "ParameterDict", "LayerNorm", "GroupNorm", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "MaxUnpool1d", "MaxUnpool2d",
    "MaxUnpool3d", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
    "SoftMarginLoss", "CosineSimilarity", "Embedding", "UninitializedParameter", "LazyLinear", "LazyConv1d",
    "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
]

# ---- issue 11: the rest of torch.nn's everyday layers ------------------------------------------------
from convlens.nn.modules.container import ModuleDict, ParameterDict, ParameterList  # noqa: E402
from convlens.nn.modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: E402
from convlens.nn.modules.layer_norm import (  # noqa: E402
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
    LocalResponseNorm,
)
from convlens.nn.modules.lazy import (  # noqa: E402
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
    LazyLinear,
    UninitializedParameter,
)
from convlens.nn.modules.linear import Dropout1d, Dropout2d, Dropout3d, Unflatten  # noqa: E402
from convlens.nn.modules.loss import (  # noqa: E402
    BCELoss,
    BCEWithLogitsLoss,
    CosineSimilarity,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    SmoothL1Loss,
    SoftMarginLoss,
)
from convlens.nn.modules.nonlinearities import (  # noqa: E402
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSigmoid,
    Mish,
    PReLU,
    ReLU6,
    SiLU,
    Softplus,
    Softsign,
)
from convlens.nn.modules.pooling import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d  # noqa: E402
from convlens.nn.modules.sparse import Embedding  # noqa: E402
from convlens.nn.modules.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: E402
