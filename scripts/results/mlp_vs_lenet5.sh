#!/usr/bin/env bash
# The course's comparison: a fully connected net (235,146 parameters) against LeNet-5 (61,706) on full
# MNIST, same recipe and epochs. Prints both test accuracies and parameter counts.
. "$(dirname "$0")/_common.sh"
EPOCHS="${EPOCHS:-8}"
run mlp-mnist --model mlp --dataset mnist --data-dir "$DATA/mnist" --epochs "$EPOCHS"
run lenet5-mnist-cmp --model lenet5 --dataset mnist --data-dir "$DATA/mnist" --epochs "$EPOCHS"
for m in mlp lenet5; do
    echo "$m: $($CONVLENS summary "$m" --json | python -c 'import json,sys; print(json.load(sys.stdin)["totals"]["total"])') parameters"
done
