#!/bin/bash
# Second device call: (c) on a full CIFAR-10 epoch of images with the fp32 path held against a TF32 peak,
# and one ResNet-50 MNIST-shaped epoch. Synthetic images (the data mirror does not travel).
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
date -u
echo "=== 3: default + (c) on 45000 images"
timeout 200 python3 benchmarks/bench.py --device cuda --synthetic --precision-n 45000 --json $OUT/bench-cuda-c45k.json 2>&1 | tee $OUT/bench-cuda-c45k.log
echo "=== 4: resnet50 mnist-shaped, 60000 images, 8 DataLoader workers"
timeout 150 python3 benchmarks/bench.py --device cuda --synthetic --dataset mnist --arch resnet50 --n-train 60000 \
  --workers 8 --no-precision --json $OUT/bench-cuda-mnist-r50.json 2>&1 | tee $OUT/bench-cuda-mnist-r50.log
date -u
