#!/usr/bin/env bash
# Make the data the benchmarks read (benchmarks/match.py, pitch.py), none of which git keeps:
#   DATA/eval-notes      1,000 uniform medium33 patches at random keys 36-84 (seed 1002), as `deepdiva build-model`
#                        makes its held-out set with seed 0
#   DATA/eval-medium33   1,000 at C3 only (seed 1001)
#   DATA/ood             the out-of-domain sets (benchmarks/ood_sets.py: GM instruments, voices, amsynth, saws,
#                        range ends, chords, drums; needs fluidsynth, fluid-soundfont-gm, espeak-ng and amsynth)
# Usage: bash scripts/benchmark_data.sh [DATA]   (default data/; a finished set is kept, about two minutes in all)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
DD=${DEEPDIVA:-.venv/bin/deepdiva}
$DD dataset generate --data-path "$DATA" --folder-name eval-notes --sample-size 1000 --seed 1002 \
    --random-parameters medium33 --pitch-range 36 84 --drop-silent --workers 2
$DD dataset generate --data-path "$DATA" --folder-name eval-medium33 --sample-size 1000 --seed 1001 \
    --random-parameters medium33 --midi-pitch 48 --drop-silent --workers 2
for set in saws instruments voices amsynth extremes chords drums; do  # each set once; one added later is made on its own
    [ -d "$DATA/ood/$set" ] || .venv/bin/python benchmarks/ood_sets.py --out "$DATA/ood" --sets "$set"
done
