#!/usr/bin/env bash
# The README's other ConvNetJS CIFAR-10 rows (JPEG copy), which had no script: the run on 45,000 images
# (10 % held out for validation) for 110 epochs, the same for 60 epochs, the constant-lr run (no cosine
# decay; it stalled near 62 % validation by epoch 20), and the 10-epoch sweep of eight variants of the
# recipe (ConvNetJS's rho 0.95 and eps 1e-8, weight decay 0 or 5e-4, lr 2, batch 64).
# Written after those runs to repeat them with today's flags; each is hours of CPU (the sweep ran side by
# side on a 16-core machine). WHAT=long|60|constant|sweep|all picks the runs (default all).
. "$(dirname "$0")/_common.sh"
WHAT="${WHAT:-all}"
CIFAR=(--model convnetjs-cifar10 --dataset "$DATA/cifar10-jpeg.tar.gz" --optimizer adadelta --augment flip,shift)
base=(--lr 1.0 --weight-decay 1e-4 --batch-size 32)

if [[ $WHAT == all || $WHAT == long ]]; then
    run convnetjs-cifar10-jpeg-45k-110 "${CIFAR[@]}" "${base[@]}" --schedule cosine --val-split 0.1 --epochs 110
fi
if [[ $WHAT == all || $WHAT == 60 ]]; then
    run convnetjs-cifar10-jpeg-45k-60 "${CIFAR[@]}" "${base[@]}" --schedule cosine --val-split 0.1 --epochs 60
fi
if [[ $WHAT == all || $WHAT == constant ]]; then
    run convnetjs-cifar10-jpeg-constant-lr "${CIFAR[@]}" "${base[@]}" --schedule none --val-split 0.1 --epochs 20
fi
if [[ $WHAT == all || $WHAT == sweep ]]; then
    # name: the flags that differ from the zoo's recipe (torch's Adadelta defaults, lr 1, wd 1e-4, batch 32)
    declare -A variants=(
        [recipe]=""
        [rho095]="--rho 0.95"
        [eps1e-8]="--eps 1e-8"
        [convnetjs-adadelta]="--rho 0.95 --eps 1e-8"
        [wd0]="--weight-decay 0"
        [wd5e-4]="--weight-decay 5e-4"
        [lr2]="--lr 2.0"
        [batch64]="--batch-size 64"
    )
    for name in recipe rho095 eps1e-8 convnetjs-adadelta wd0 wd5e-4 lr2 batch64; do
        # later flags override: base first, then the variant's
        # shellcheck disable=SC2086
        run "convnetjs-cifar10-sweep-$name" "${CIFAR[@]}" "${base[@]}" ${variants[$name]} --schedule cosine \
            --val-split 0.1 --epochs 10
    done
fi
