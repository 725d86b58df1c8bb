#!/usr/bin/env bash
# Full benchmark runs behind benchmarks/RESULTS.md (LSTM and GRU, papers' sizes).
# Each run trains within its budget and appends one row; run from the repository root:
#   DATA=../shared/data BUDGET=15 benchmarks/bench_suite.sh
# On a shared CPU, --threads 1 is much faster for these small models; give a --note on the load.
set -euo pipefail
DATA=${DATA:-../shared/data}
BUDGET=${BUDGET:-15}
NOTE=${NOTE:-}
bench() { PYTHONPATH=src python -m rnnlab bench "$@" --budget-minutes "$BUDGET" --threads 1 \
  --data-dir "$DATA" --append-results --note "$NOTE"; }
for cell in lstm gru; do
  bench adding --cell "$cell"
  bench copy --cell "$cell"
  bench jsb --cell "$cell"
  bench nottingham --cell "$cell"
  bench pmnist --cell "$cell" --mnist-protocol test-split
done
