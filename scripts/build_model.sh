#!/usr/bin/env bash
# Rebuild the shipped model models/deepdiva-medium33.onnx from scratch on a CPU machine, and the
# seed-CNN baseline trained on the same data for comparison. Usage:
#   bash scripts/build_model.sh [DATA_DIR] [RUNS_DIR]
# Environment knobs: TRAIN_SHARDS (x1000 patches, default 12), EPOCHS (default 12), WORKERS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
RUNS=${2:-runs}
SHARDS=${TRAIN_SHARDS:-12}
EPOCHS=${EPOCHS:-12}
WORKERS=${WORKERS:-2}
DD=${DEEPDIVA:-.venv/bin/deepdiva}

# Training data: random medium33 patches of the builtin synth; silent patches redrawn.
$DD dataset generate --data-path "$DATA" --folder-name train-medium33 --random-parameters medium33 \
    --sample-size 1000 --nr-data-batches "$SHARDS" --seed 1 --drop-silent --workers "$WORKERS"
# Held-out evaluation data: another seed, never seen in training.
$DD dataset generate --data-path "$DATA" --folder-name eval-medium33 --random-parameters medium33 \
    --sample-size 1000 --nr-data-batches 1 --seed 1001 --drop-silent --workers 1
$DD features "$DATA/train-medium33" --feature mel_db --feature mel --workers "$WORKERS"

# The shipped model (cnn2 on loudness-aware mel_db, discrete heads) and the seed baseline (cnn on mel).
$DD train "$DATA/train-medium33" --model cnn2 --epochs "$EPOCHS" --batch-size 64 --patience 4 \
    --runs-dir "$RUNS" --name shipped-cnn2
$DD export "$RUNS/shipped-cnn2" -o models/deepdiva-medium33.onnx --overwrite
$DD train "$DATA/train-medium33" --model cnn --epochs "$EPOCHS" --batch-size 64 --patience 4 \
    --runs-dir "$RUNS" --name baseline-cnn
$DD export "$RUNS/baseline-cnn" -o "$RUNS/baseline-cnn.onnx" --overwrite

$DD evaluate models/deepdiva-medium33.onnx "$DATA/eval-medium33" --update-card --out "$RUNS/eval-shipped"
$DD evaluate "$RUNS/baseline-cnn.onnx" "$DATA/eval-medium33" --out "$RUNS/eval-baseline-cnn"
