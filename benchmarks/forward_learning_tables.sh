#!/bin/bash
# Every ForwardGNN table (node: 6 schemes; link: sf, bp; one-epoch memory), 5 splits, GCN 4x128, run
# as parallel processes: bash benchmarks/forward_learning_tables.sh DEVICE RES BUDGET_S PARALLEL [extra args]
# e.g. `GRAPHKIT_DATA=... bash benchmarks/forward_learning_tables.sh cuda out 470 14` (one H200: 443 s).
# Reports: RES/forward_learning_{node,link}_gcn_gpu.json, RES/forward_learning_memory_gpu.json.
# data folders: Planetoid (Cora, CiteSeer) and prognn (clean, splits) under $GRAPHKIT_DATA
# FG_ONLY: a grep -E pattern on the job names (e.g. 'node (sf|bp|sf-top2)'; job names separate their fields by spaces), default every job;
# FG_MEMORY="": no memory rows. sf-top2loss-raw is sf-top2loss with the official raw bottom-up.
set -u
DEV=$1; RES=$2; BUDGET=$3; P=$4; shift 4; EXTRA="$*"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PYTHON:-python3}; B=benchmarks/forward_learning.py
DS=${FG_DATASETS:-"CiteSeer Cora prognn-cora_ml"}; SPLITS=${FG_SPLITS:-"0 1 2 3 4"}
MEMDS=${FG_MEMORY-"Cora CiteSeer prognn-cora_ml csbm:num_nodes=50000"}
ONLY=${FG_ONLY:-.}
W=$RES/parts; mkdir -p $W
END=$(( $(date +%s) + BUDGET ))
T0=$(date +%s)
# memory of one training epoch, sf against bp (fresh process each), first: it is short
[ -n "$MEMDS" ] && $PY $B --device $DEV --memory --dataset $MEMDS \
  --json $RES/forward_learning_memory_gpu.json > $W/memory.log 2>&1 &
{
for t in node link; do for s in sf bp; do for d in $DS; do
  echo "$t $s $d all --task $t --scheme $s --dataset $d"; done; done; done
for r in $SPLITS; do for s in sf-top2loss sf-top2input ff-la ff-vn; do for d in $DS; do
  echo "node $s $d $r --task node --scheme $s --dataset $d --splits $r"; done; done
  for d in $DS; do echo "node sf-top2loss-raw $d $r --task node --scheme sf-top2loss \
--dataset $d --splits $r --bottom-up raw"; done; done
} | grep -E "^($ONLY)" | xargs -P $P -L 1 sh -c '
  rem=$(( '$END' - $(date +%s) )); [ $rem -gt 20 ] || exit 0
  name=$0_$1_$2_$3; shift 3; start=$(date +%s)
  timeout $rem '$PY' '$B' --device '$DEV' "$@" '"$EXTRA"' --json '$W'/$name.json > '$W'/$name.log 2>&1
  echo "$name rc=$? $(( $(date +%s) - start ))s"
'
wait
for t in node link; do
  parts=$(ls $W/${t}_*.json 2>/dev/null)
  [ -n "$parts" ] && $PY $B --merge $parts --json $RES/forward_learning_${t}_gcn_gpu.json > $W/merge_$t.log 2>&1
done
[ -n "$MEMDS" ] && grep -h "sf / bp" $W/memory.log
grep -h -A30 "^system" $W/merge_*.log | cut -c1-100
echo "total $(( $(date +%s) - T0 ))s"
