"""Train LeNet-5 on the embedded MNIST subset with the library API (what `convlens train` does).

    python examples/train_lenet5.py [--epochs N] [--out runs/lenet5-example]

The recipe is the zoo's default; the test set is only used once, at the end, on the best checkpoint.
"""

import argparse

import convlens
from convlens import data, models
from convlens.data import transforms as T
from convlens.train import Recipe, evaluate, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=None)
parser.add_argument("--out", default="runs/lenet5-example")
args = parser.parse_args()

recipe = Recipe.for_model("lenet5", epochs=args.epochs)
print(recipe.describe())
full, test = data.load("mnist-mini", train=True), data.load("mnist-mini", train=False)
train, val, mean, std = recipe.split_data(full)  # a 10% validation split and its normalisation
normalize = T.Normalize(mean, std)

convlens.manual_seed(recipe.seed)
model = models.get_model("lenet5", input_shape=train.shape, num_classes=len(full.classes))
train_loader = data.DataLoader(train, recipe.batch_size, shuffle=True, seed=recipe.seed,
                               transform=T.Compose(recipe.augmentation() + [normalize]))
val_loader = data.DataLoader(val, 256, transform=normalize)
optimizer = recipe.make_optimizer(model.parameters())
scheduler, interval = recipe.make_scheduler(optimizer, len(train_loader))

result = fit(model, train_loader, val_loader, optimizer=optimizer, scheduler=scheduler,
             scheduler_interval=interval, epochs=recipe.epochs, run_dir=args.out,
             info={"architecture": {"name": "lenet5", "kwargs": {"input_shape": list(train.shape)}},
                   "recipe": recipe.to_dict(), "dataset": "mnist-mini", "classes": full.classes,
                   "input_shape": list(train.shape), "mean": mean, "std": std})

best, _ = convlens.load_checkpoint(result.checkpoint)
report = evaluate(best, data.DataLoader(test, 256, transform=normalize))
print(f"best epoch {result.best_epoch}: validation {result.best_val_accuracy:.2%}, test {report['accuracy']:.2%}")
print(f"saved to {args.out}; try: convlens inspect {args.out} some_digit.png --out maps/")
