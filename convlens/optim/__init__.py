"""Optimizers with PyTorch's names, defaults and update rules, and learning-rate schedulers
(`convlens.optim.lr_scheduler`)."""

from convlens.optim import lr_scheduler
from convlens.optim.adadelta import Adadelta
from convlens.optim.adagrad import Adagrad
from convlens.optim.adam import Adam, AdamW
from convlens.optim.nadam import NAdam, RAdam
from convlens.optim.optimizer import Optimizer
from convlens.optim.rmsprop import RMSprop
from convlens.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "NAdam", "RAdam", "RMSprop", "lr_scheduler"]
