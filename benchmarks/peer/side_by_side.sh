#!/bin/bash
# pytorch-maml-rl and metarl on one machine, alternating, at pytorch-maml-rl's own 2D-navigation and
# HalfCheetahVel settings. Run it on an otherwise idle machine from the repository root:
#
#   bash benchmarks/peer/side_by_side.sh PEER_CHECKOUT PEER_PYTHON [OUT_DIR]
#
# PEER_CHECKOUT: a checkout of github.com/tristandeleu/pytorch-maml-rl (master); PEER_PYTHON: a Python
# with its dependencies and Gymnasium's MuJoCo, e.g. a venv made with
#   pip install torch==2.13.0 gym==0.17.3 "numpy<2" tqdm pyyaml "gymnasium[mujoco]"
# Each command's JSON goes to OUT_DIR (default benchmarks-peer-out/); medians of the rounds are what to compare.
set -euo pipefail
checkout=$1 peer_python=$2 out=${3:-benchmarks-peer-out}
mkdir -p "$out"
peer() { "$peer_python" benchmarks/peer/pytorch_maml_rl_iteration.py --checkout "$checkout" "$@" 2>&1 | grep -v -i "settotalmass\|^$"; }
ours() { python benchmarks/iteration.py "$@" | tail -1; }
same_nav=(--configs 2d-navigation --iterations 4 --set "hidden_sizes=[64,64]" --set nonlinearity=tanh)
same_hcv=(--configs halfcheetah-vel --iterations 3 --set horizon=100 --set "hidden_sizes=[64,64]" --set nonlinearity=tanh
          --set episodes_per_task=20 --set sampler.backend=process --set sampler.num_workers=2)
for round in 1 2; do
  peer --config configs/maml/2d-navigation.yaml --iterations 4 --json "$out/peer-nav-default-$round.json"
  ours "${same_nav[@]}" --json "$out/ours-nav-$round.json"
  peer --config configs/maml/halfcheetah-vel.yaml --iterations 3 --json "$out/peer-hcv-default-$round.json"
  ours "${same_hcv[@]}" --json "$out/ours-hcv-$round.json"
done
OMP_NUM_THREADS=1 peer --config configs/maml/2d-navigation.yaml --iterations 4 --num-workers 2 --json "$out/peer-nav-best.json"
OMP_NUM_THREADS=1 peer --config configs/maml/halfcheetah-vel.yaml --iterations 3 --num-workers 2 --json "$out/peer-hcv-best.json"
