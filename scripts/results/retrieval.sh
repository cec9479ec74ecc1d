#!/usr/bin/env bash
# The README's retrieval tables: brief training of LeNet-5 (full MNIST, 2 epochs) and of the ConvNetJS net
# (CIFAR-10 JPEG copy, a 6-epoch cosine schedule cut at 12 minutes: the machine was shared and loaded),
# then retrieval quality (pixels / untrained / trained at two depths) and the synthetic scale run.
# Outputs: runs/results/retrieval-*/ (checkpoints), runs/results/retrieval_*.json (reports).
. "$(dirname "$0")/_common.sh"
$CONVLENS train --model lenet5 --dataset mnist --data-dir "$DATA/mnist" --epochs 2 --augment shift \
    --out "$RESULTS/retrieval-lenet5-mnist" --json > "$RESULTS/retrieval-lenet5-mnist.json"
timeout 720 $CONVLENS train --model convnetjs-cifar10 --dataset "$DATA/cifar10-jpeg.tar.gz" --epochs 6 \
    --val-split 0 --out "$RESULTS/retrieval-convnetjs-cifar10" --json > "$RESULTS/retrieval-convnetjs-cifar10.json" || true
python scripts/results/retrieval_quality.py --dataset mnist --data-dir "$DATA/mnist" \
    --checkpoint "$RESULTS/retrieval-lenet5-mnist" --layers pool2,fc2:input --out "$RESULTS/retrieval_quality_mnist.json"
python scripts/results/retrieval_quality.py --dataset "$DATA/cifar10-jpeg.tar.gz" --name cifar10-jpeg \
    --checkpoint "$RESULTS/retrieval-convnetjs-cifar10" --layers pool2,fc:input \
    --out "$RESULTS/retrieval_quality_cifar10-jpeg.json"
python scripts/results/retrieval_scale.py --sizes 50000 --out "$RESULTS/retrieval_scale_50k.json"
python scripts/results/retrieval_scale.py --sizes 1000000 --kinds flat,ivf --out "$RESULTS/retrieval_scale_1m.json"
python scripts/results/retrieval_scale.py --sizes 1000000 --kinds flat,ivf --clusters 20000 \
    --out "$RESULTS/retrieval_scale_1m_20k_clusters.json"
