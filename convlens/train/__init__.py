"""Training: `fit` (the loop), `Recipe` (the choices of a run), metrics and `evaluate`.

    from convlens.train import fit, Recipe, evaluate
    result = fit(model, train_loader, val_loader, optimizer=opt, epochs=8, run_dir="runs/lenet5")
    print(result.history[-1]["val_accuracy"])
"""

from convlens.train.fit import FitResult, NonFiniteLossError, TrainControl, fit
from convlens.train.metrics import accuracy, confusion_matrix, evaluate, per_class_accuracy
from convlens.train.recipe import OPTIMIZERS, SCHEDULES, Recipe

__all__ = [
    "fit", "FitResult", "TrainControl", "NonFiniteLossError", "Recipe", "OPTIMIZERS", "SCHEDULES",
    "accuracy", "confusion_matrix", "per_class_accuracy", "evaluate",
]
