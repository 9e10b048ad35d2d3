#!/usr/bin/env bash
# Second GPU session: the zoo entries the first one lost (a checkpoint-loader bug stopped two workers), and candidate
# recipes for mnist-deep-30 (it overfits: validation loss rose over the last 60 of 200 epochs) and mnist-conv-30,
# each also at 64-d for the quality table; bench/candidates.py then picks each recipe on the validation split.
#   AELAB_DATA=.data OUT=/tmp/out bash bench/gpu_session2.sh [deadline_s]
set -u
export AELAB_DATA=${AELAB_DATA:-.data} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
OUT=${OUT:-/tmp/aelab-out}; LOG=${LOG:-/tmp/aelab-logs}; C=/tmp/cand; C64=/tmp/cand64
DEADLINE=${1:-400}
mkdir -p "$OUT" "$LOG" "$C" "$C64" bench/results
run() { local n=$1; shift; timeout -s TERM "$DEADLINE" bash -c "$*" >"$LOG/$n.log" 2>&1; echo "$n exit $?" | tee -a "$LOG/workers.txt"; }
start=$(date +%s)
run zoo "python3 -m aelab zoo --only mnist-cvae-2d mnist-pca-30 fashion-vae-20" &
for tag in dropout0.1 dropout0.2 mask0.2 wd0.1; do
  run "d30-$tag" "python3 bench/candidates.py train mnist-deep-30 $tag --out $C" &
  run "d64-$tag" "python3 bench/candidates.py train mnist-deep-30 $tag --latent-dim 64 --out $C64" &
done
run c30-wide "python3 bench/candidates.py train mnist-conv-30 wide --out $C" &
run c64-wide "python3 bench/candidates.py train mnist-conv-30 wide --latent-dim 64 --out $C64" &
wait
echo "parallel phase: $(( $(date +%s) - start )) s" | tee -a "$LOG/workers.txt"
unset OMP_NUM_THREADS MKL_NUM_THREADS
python3 bench/candidates.py select mnist-deep-30 checkpoints/mnist-deep-30.safetensors $C/*/mnist-deep-30.safetensors \
  --install --json bench/results/select-deep-30.json 2>&1 | tee "$LOG/select.log"
python3 bench/candidates.py select mnist-conv-30 checkpoints/mnist-conv-30.safetensors $C/*/mnist-conv-30.safetensors \
  --install --json bench/results/select-conv-30.json 2>&1 | tee -a "$LOG/select.log"
timeout 120 python3 bench/quality.py --sections ae64 --device cuda --ae64-checkpoints $C64/*/*.safetensors \
  --json bench/results/quality-gpu2.json 2>&1 | tee "$LOG/quality2.log"
timeout 90 python3 bench/throughput.py --device cuda --json bench/results/throughput-h100.json 2>&1 | tee "$LOG/throughput.log"
tar czf "$OUT/zoo.tgz" checkpoints/mnist-cvae-2d.safetensors checkpoints/mnist-pca-30.safetensors \
  checkpoints/fashion-vae-20.safetensors checkpoints/mnist-deep-30.safetensors checkpoints/mnist-conv-30.safetensors
tar czf "$OUT/results.tgz" bench/results "$LOG"
ls -la "$OUT"; cat "$LOG/workers.txt"; grep -h "finished in" "$LOG"/*.log | cut -c1-220
