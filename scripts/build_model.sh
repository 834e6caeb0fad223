#!/usr/bin/env bash
# Rebuild the shipped model models/deepdiva-medium33.onnx (v2, cnn3) from scratch on a CPU machine.
# Usage:
#   bash scripts/build_model.sh [DATA_DIR] [RUNS_DIR]
# Environment knobs: TRAIN_SHARDS (x5000 patches, default 48), EPOCHS (x EPOCH_SIZE patches, default 10),
# EPOCH_SIZE (40000), WORKERS (2). About 20 min of data and 1.5 h of training on 2 cores.
# A killed run continues where it stopped: rerun the script (finished shards are kept; training
# resumes from its last checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
RUNS=${2:-runs}
SHARDS=${TRAIN_SHARDS:-48}
EPOCHS=${EPOCHS:-10}
EPOCH_SIZE=${EPOCH_SIZE:-40000}
WORKERS=${WORKERS:-2}
DD=${DEEPDIVA:-.venv/bin/deepdiva}

# Training data: 240,000 medium33 patches of the builtin synth at keys C2-C6, three quarters uniform and
# one quarter "musical", 30 % augmented (detune, early release, room, noise, EQ, gain, band limit, late
# start); only the mel_db_pitch feature and the pitch heard are kept.
$DD dataset generate --data-path "$DATA" --folder-name train-v2b --random-parameters medium33 \
    --sample-size 5000 --nr-data-batches "$SHARDS" --seed 3 --pitch-range 36 84 --prior mixed --augment \
    --feature mel_db_pitch --no-audio --drop-silent --workers "$WORKERS"
# Held-out evaluation data, never seen in training: uniform patches at random keys, and at C3 only.
$DD dataset generate --data-path "$DATA" --folder-name eval-notes --random-parameters medium33 \
    --sample-size 1000 --nr-data-batches 1 --seed 1002 --pitch-range 36 84 --drop-silent
$DD dataset generate --data-path "$DATA" --folder-name eval-medium33 --random-parameters medium33 \
    --sample-size 1000 --nr-data-batches 1 --seed 1001 --midi-pitch 48 --drop-silent

if [ -d "$RUNS/v2-cnn3" ]; then
  $DD train --resume "$RUNS/v2-cnn3"
else
  $DD train "$DATA/train-v2b" --model cnn3 --epochs "$EPOCHS" --epoch-size "$EPOCH_SIZE" --batch-size 64 \
      --validation-split 0.02 --lr-schedule cosine --learning-rate 0.001 --loss mae --loss-weights sensitivity \
      --runs-dir "$RUNS" --name v2-cnn3 --seed 0
fi
$DD export "$RUNS/v2-cnn3" -o models/deepdiva-medium33.onnx --overwrite --decode median
$DD evaluate models/deepdiva-medium33.onnx "$DATA/eval-notes" --update-card --out "$RUNS/eval-v2-notes"
$DD evaluate models/deepdiva-medium33.onnx "$DATA/eval-medium33" --update-card --out "$RUNS/eval-v2-48"
