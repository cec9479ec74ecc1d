#!/usr/bin/env bash
# The ConvNetJS CIFAR-10 network with its recipe (Adadelta lr 1, L2 1e-4, flips + 2-pixel shifts) on the
# JPEG copy of CIFAR-10 (../shared/data/cifar10-jpeg.tar.gz): target >= 75% test accuracy within one
# hour. Report it as "CIFAR-10 (JPEG copy)": JPEG compression changes the pixels slightly.
# The zoo's recipe: Adadelta, cosine decay of its lr, batch 32, here on all 50,000 training images
# (--val-split 0: the test set is only used once, at the end) for 125 epochs, which fit the hour on
# this machine (2 cores) once the training step ran in batch slices. EPOCHS is the knob to fit the
# hour on another machine.
. "$(dirname "$0")/_common.sh"
EPOCHS="${EPOCHS:-125}"
run convnetjs-cifar10-jpeg-full --model convnetjs-cifar10 --dataset "$DATA/cifar10-jpeg.tar.gz" \
    --optimizer adadelta --lr 1.0 --weight-decay 1e-4 --schedule cosine --augment flip,shift --batch-size 32 \
    --val-split 0 --epochs "$EPOCHS"
