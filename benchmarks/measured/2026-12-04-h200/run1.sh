#!/bin/bash
# One device call: the CUDA column of benchmarks/bench.py on the lent H200 (synthetic CIFAR-10-shaped data:
# the data mirror does not travel; throughput does not depend on pixel values).
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;
  nproc; python3 -c "import sys, torch, torchvision, numpy; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'torchvision', torchvision.__version__, 'numpy', numpy.__version__)"; } 2>&1 | tee $OUT/env.txt
python3 -c "import fnlib.train, fnlib.attacks, fnlib.evaluate, torchattacks; print('imports ok', torchattacks.__version__)" 2>&1 | tee -a $OUT/env.txt
echo "=== 1: default (resnet18, 20480 images, batch 512, 3 repeats; (c) ResNet-50 on 8192 images)"
timeout 240 python3 benchmarks/bench.py --device cuda --synthetic --json $OUT/bench-cuda.json 2>&1 | tee $OUT/bench-cuda.log
echo "=== 2: resnet50, 45000 images (one paper-profile epoch), ablation, 8 DataLoader workers"
timeout 200 python3 benchmarks/bench.py --device cuda --synthetic --arch resnet50 --n-train 45000 --ablate \
  --workers 8 --no-precision --json $OUT/bench-cuda-r50.json 2>&1 | tee $OUT/bench-cuda-r50.log
date -u
