#!/usr/bin/env bash
# LeNet-5 on the full MNIST (../shared/data/mnist): >= 99.0% test accuracy within 8 epochs with the
# zoo's default recipe (Adam + one-cycle, shift augmentation), and a second run without augmentation
# for comparison. Outputs: runs/results/lenet5-mnist*.json and their run directories.
. "$(dirname "$0")/_common.sh"
run lenet5-mnist --model lenet5 --dataset mnist --data-dir "$DATA/mnist" --epochs 8 --augment shift
run lenet5-mnist-noaug --model lenet5 --dataset mnist --data-dir "$DATA/mnist" --epochs 8 --augment none
