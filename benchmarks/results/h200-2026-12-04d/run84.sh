#!/bin/bash
# session 39, device run 10: the backward's warp stall reasons, main (base) against struct1 (pair code path, one CTA).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_PAIRED_TILES=0
NCU=$(which ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
M=gpu__time_duration.sum
for r in barrier long_scoreboard short_scoreboard wait math_pipe_throttle mio_throttle lg_throttle membar sleeping selected not_selected dispatch_stall no_instruction branch_resolving drain imc_miss misc tex_throttle; do
  M=$M,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio
done
for lib in base struct1; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 200 $NCU --profile-from-start off --clock-control none --metrics $M -k regex:BwdDkdv python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 --backward > $OUT/ncu_stalls_$lib.txt 2>&1
  echo "== $lib"; grep -E "smsp__|gpu__time" $OUT/ncu_stalls_$lib.txt | awk '{print $1, $NF}'
done
