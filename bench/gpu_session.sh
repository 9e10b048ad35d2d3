#!/usr/bin/env bash
# One GPU session (the H100 machine of this workplace): the training-speed benchmark alone, then the zoo and the
# GPU benchmarks in parallel worker processes (each is launch-bound: one process cannot keep the GPU busy), then
# throughput alone. Everything lands in $OUT as two archives (checkpoints, results + logs).
#   AELAB_DATA=.data OUT=/tmp/out bash bench/gpu_session.sh [deadline_s]
set -u
export AELAB_DATA=${AELAB_DATA:-.data} PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/aelab-out}
PY=${PY:-python3}
DEADLINE=${1:-450}   # seconds allowed for the parallel phase
LOG=${LOG:-/tmp/aelab-logs}
mkdir -p "$LOG" bench/results checkpoints
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG/gpu.txt"
$PY -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))" \
  | tee -a "$LOG/gpu.txt"

if [ -z "${SKIP_SPEED:-}" ]; then
  timeout 150 $PY bench/train_speed.py --device cuda --repeats 3 2>&1 | tee "$LOG/train_speed.log"
fi

export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
zoo() { $PY -m aelab zoo --only "$@"; }
worker() {  # worker NAME COMMAND...: run one shell line, bounded by the deadline, logged
  local name=$1; shift
  timeout -s TERM "$DEADLINE" bash -c "$*" >"$LOG/$name.log" 2>&1
  echo "$name exit $?" | tee -a "$LOG/workers.txt"
}
export -f zoo; export PY
W1=${W1-"zoo mnist-deep-30 mnist-shallow-32 mnist-conv-without-2 fashion-vae-20"}
W2=${W2-"zoo mnist-deep-2d mnist-sparse-128 mnist-conv-vae-2d"}
W3=${W3-"zoo mnist-conv-30 mnist-denoising-conv fashion-conv-64"}
W4=${W4-"zoo mnist-vae-20 mnist-tied-30 mnist-cvae-2d mnist-pca-30"}
W5=${W5-"zoo mnist-linear-30"}
W6=${W6-"$PY bench/quality.py --sections ae64 --train-64d --device cuda --json bench/results/quality-gpu.json"}
W7=${W7-"$PY bench/anomaly.py --device cuda --json bench/results/anomaly.json"}
W8=${W8-"$PY bench/latent_curve.py --device cuda --json bench/results/latent_curve.json"}
start=$(date +%s)
for i in 1 2 3 4 5 6 7 8; do
  cmd_var="W$i"; cmd=${!cmd_var}
  [ -n "$cmd" ] && worker "w$i" "$cmd" &
done
wait
echo "parallel phase: $(( $(date +%s) - start )) s" | tee -a "$LOG/workers.txt"

unset OMP_NUM_THREADS MKL_NUM_THREADS
if [ -z "${SKIP_THROUGHPUT:-}" ]; then
  timeout 90 $PY bench/throughput.py --device cuda --json bench/results/throughput-h100.json 2>&1 | tee "$LOG/throughput.log"
fi
tar czf "$OUT/zoo.tgz" checkpoints/*.safetensors
tar czf "$OUT/results.tgz" bench/results "$LOG"
ls -la "$OUT"
