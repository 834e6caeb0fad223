#!/usr/bin/env bash
# Rebuild the shipped model models/deepdiva-medium33.onnx (v2, cnn3) from scratch on a CPU machine:
# one `deepdiva build-model` with the shipped recipe's settings, then a copy into models/.
# Usage:
#   bash scripts/build_model.sh [BUILD_DIR]      (default runs/build-medium33, ignored by git)
# Environment knobs: TRAIN_SHARDS (x5000 patches, default 48), EPOCHS (x EPOCH_SIZE patches, default 10),
# EPOCH_SIZE (40000), WORKERS (2). About 20 min of data and 1.5 h of training on 2 cores.
# A killed run continues where it stopped: rerun the script with the same knobs (finished stages and shards
# are kept; training resumes from its last finished epoch and ends with the weights of an uninterrupted run).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-runs/build-medium33}
SHARDS=${TRAIN_SHARDS:-48}
EPOCHS=${EPOCHS:-10}
EPOCH_SIZE=${EPOCH_SIZE:-40000}
WORKERS=${WORKERS:-2}
DD=${DEEPDIVA:-.venv/bin/deepdiva}

# Training data (seed 3): 240,000 medium33 patches of the builtin synth at keys C2-C6, three quarters uniform
# and one quarter "musical", 30 % augmented (detune, early release, room, noise, EQ, gain, band limit, late
# start); only the mel_db_pitch feature and the pitch heard are kept.
# Held-out evaluation data, never seen in training: 1,000 uniform patches at random keys (seed 1002, folder
# eval-notes) and 1,000 at C3 only (seed 1001, eval-medium33).
# Training (seed 0): cnn3, EPOCHS epochs of EPOCH_SIZE patches, batch 64, 2 % validation, Adam 1e-3 with a cosine
# decay, MAE + cross-entropy weighted by how much each parameter changes the sound. Export with median
# decoding and the parity check; both held-out sets evaluated into the card.
$DD build-model --synth builtin --profile diva --set medium33 --name deepdiva-medium33 --out "$BUILD" \
    --samples $((SHARDS * 5000)) --shard-size 5000 --eval-samples 1000 --pitch-range 36 84 \
    --prior mixed --augment --feature mel_db_pitch --model cnn3 --epochs "$EPOCHS" --epoch-size "$EPOCH_SIZE" \
    --loss-weights sensitivity --seed 0 --workers "$WORKERS"
cp "$BUILD/deepdiva-medium33.onnx" "$BUILD/deepdiva-medium33.json" models/
echo "models/deepdiva-medium33.onnx (reports in $BUILD/eval/)"
