#!/usr/bin/env bash
# A CNN on Fashion-MNIST (../shared/data/fashion-mnist): target >= 91% test accuracy.
# Two 3x3 conv stages (32, 64 filters) with max pooling, a 128-unit hidden layer with dropout; Adam with
# one-cycle, horizontal flips and 2-pixel shifts. LeNet-5 with its default recipe runs as a reference.
. "$(dirname "$0")/_common.sh"
EPOCHS="${EPOCHS:-15}"
SPEC="$RESULTS/fashion_cnn.json"
cat > "$SPEC" <<'JSON'
{"input_shape": [1, 28, 28], "layers": [
  {"type": "conv", "name": "conv1", "filters": 32, "size": 3, "pad": 1, "activation": "relu"},
  {"type": "pool", "name": "pool1", "size": 2},
  {"type": "conv", "name": "conv2", "filters": 64, "size": 3, "pad": 1, "activation": "relu"},
  {"type": "pool", "name": "pool2", "size": 2},
  {"type": "fc", "name": "fc1", "units": 128, "activation": "relu"},
  {"type": "dropout", "name": "dropout", "p": 0.3},
  {"type": "fc", "name": "fc2", "units": 10}
]}
JSON
run fashion-cnn --model "$SPEC" --dataset fashion-mnist --data-dir "$DATA/fashion-mnist" --epochs "$EPOCHS" \
    --optimizer adam --lr 2e-3 --schedule onecycle --batch-size 64 --augment flip,shift
run fashion-lenet5 --model lenet5 --dataset fashion-mnist --data-dir "$DATA/fashion-mnist" --epochs "$EPOCHS"
