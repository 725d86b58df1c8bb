#!/usr/bin/env bash
# The full runs behind benchmarks/RESULTS.md, in the order they were made (run from the
# repository root). Each trains within its budget and appends one row to benchmarks/RESULTS.md:
#   DATA=../shared/data NOTE="load ..." benchmarks/bench_suite.sh
# On a shared CPU, --threads 1 is much faster for these small models. A run directory can be
# evaluated again with: rnnlab bench TASK --from-run DIR
set -euo pipefail
DATA=${DATA:-../shared/data}
NOTE=${NOTE:-}
bench() { PYTHONPATH=src python -m rnnlab bench "$@" --threads 1 --data-dir "$DATA" \
  --append-results --note "$NOTE"; }

# the papers' sizes (Bai et al. 2018 supplement), 15 minutes each
bench adding --cell lstm --budget-minutes 15
bench adding --cell gru --budget-minutes 15
bench copy --cell lstm --budget-minutes 15
bench copy --cell gru --budget-minutes 15
bench jsb --cell lstm --lr 1e-3 --budget-minutes 15
bench jsb --cell lstm --lr 1e-2 --budget-minutes 15
bench jsb --cell gru --lr 1e-2 --budget-minutes 15
bench pmnist --cell lstm --mnist-protocol test-split --forget-bias 10 --budget-minutes 15
bench nottingham --cell lstm --budget-minutes 15

# smaller models that train many more steps in the same time on this machine
bench jsb --cell lstm --hidden 150 --layers 1 --dropout 0 --lr 1e-2 --budget-minutes 15
bench jsb --cell gru --hidden 150 --layers 1 --dropout 0 --lr 1e-2 --budget-minutes 15
bench jsb --cell lstm --hidden 150 --layers 1 --dropout 0.2 --lr 1e-2 --budget-minutes 12
bench jsb --cell lstm --hidden 150 --layers 1 --dropout 0.2 --lr 1e-2 --schedule cosine \
  --budget-minutes 10
bench jsb --cell gru --hidden 150 --layers 1 --dropout 0.2 --lr 1e-2 --schedule cosine \
  --budget-minutes 10
bench nottingham --cell lstm --hidden 150 --layers 1 --lr 1e-2 --eval-every 200 --budget-minutes 15
bench nottingham --cell gru --hidden 150 --layers 1 --lr 1e-2 --eval-every 200 --budget-minutes 15

# the other families (issue 8): uRNN, minGRU and the TCN baseline at the papers' lengths
# (adding T=600, copy T=1000); short budgets on the loaded machine
bench adding --cell urnn --budget-minutes 4
bench copy --cell urnn --budget-minutes 4
bench adding --cell mingru --budget-minutes 5
bench copy --cell mingru --budget-minutes 5
bench adding --model tcn --budget-minutes 5
bench copy --model tcn --budget-minutes 5

# echo state network on Mackey-Glass, readout fitted in closed form (seconds), three reservoirs
for seed in 0 1 2; do bench mackey-glass --seed "$seed"; done

# session 2: chrono initialisation (Tallec and Ollivier 2018), 60 minutes each, at the papers' sizes
bench copy --cell lstm --cell-option chrono=1020 --schedule cosine --budget-minutes 60
bench adding --cell gru --cell-option chrono=600 --schedule cosine --budget-minutes 60

# session 3 (after the segmented variable-length kernel made the music tasks ~6x faster)
bench nottingham --cell lstm --hidden 300 --layers 1 --dropout 0.5 --lr 5e-3 --schedule cosine \
  --eval-every 250 --budget-minutes 20
bench nottingham --cell lstm --hidden 300 --layers 1 --dropout 0.2 --lr 5e-3 --schedule cosine \
  --eval-every 250 --budget-minutes 10
bench nottingham --cell gru --hidden 300 --layers 1 --dropout 0.2 --lr 5e-3 --schedule cosine \
  --eval-every 250 --budget-minutes 10
bench pmnist --cell gru --mnist-protocol test-split --eval-every 500 --budget-minutes 42
# curriculum on the copy length (100, 200, 400, 800, 1000), chrono init for the full length
bench copy --cell gru --cell-option chrono=1020 --curriculum step --curriculum-start 100 \
  --curriculum-every 2000 --schedule cosine --eval-every 500 --budget-minutes 57

# session 4
bench adding --cell gru --cell-option chrono=600 --curriculum step --curriculum-start 100 \
  --curriculum-every 1500 --schedule cosine --eval-every 500 --budget-minutes 55
bench pmnist --cell lstm --forget-bias 10 --mnist-protocol test-split --eval-every 500 \
  --budget-minutes 50
bench pmnist --cell lstm --forget-bias 10 --mnist-protocol test-split --eval-every 500 \
  --budget-minutes 40
bench jsb --cell gru --hidden 150 --layers 1 --dropout 0.2 --lr 1e-2 --schedule cosine \
  --eval-every 100 --budget-minutes 10
bench jsb --cell gru --hidden 150 --layers 1 --dropout 0.5 --lr 1e-2 --schedule cosine \
  --eval-every 100 --budget-minutes 3
bench jsb --cell gru --hidden 300 --layers 1 --dropout 0.5 --lr 5e-3 --schedule cosine \
  --eval-every 100 --budget-minutes 3
