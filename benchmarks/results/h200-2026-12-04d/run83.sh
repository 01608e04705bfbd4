#!/bin/bash
# session 39, device run 9: ncu of the one-kernel backward, main (base) against the one-CTA kernel running the pair
# variant's code path (struct1, 11 % slower with the same work): instructions, warp states, issue.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_PAIRED_TILES=0
NCU=$(which ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for lib in base struct1; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 200 $NCU --profile-from-start off --clock-control none --section SpeedOfLight --section WarpStateStats --section InstructionStats --section SchedulerStats --section MemoryWorkloadAnalysis -k regex:BwdDkdv --page details python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 --backward > $OUT/ncu_$lib.txt 2>&1
  echo "== $lib"; grep -E "Duration|Executed Instructions |Issued Warp|Stall|Warp Cycles Per Issued|No Eligible|L2 Hit|Mem Busy|SM Frequency" $OUT/ncu_$lib.txt | head -20
done
