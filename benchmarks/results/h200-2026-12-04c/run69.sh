#!/bin/bash
# session 38, device run 4: K/V loads without the evict-last L2 cache hint (nohint) against main (S):
# does the L2 request coalescer (LRC) then merge the CTAs' identical K/V requests, as in FlashAttention-4's profile?
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
NCU=$(which ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
M=lts__t_bytes.sum,lrc__lts2lrc_sectors_op_read.sum,lrc__xbar2gpc_sectors_op_read.sum,lts__t_sectors_srcunit_tex_op_read.sum,gpc__cycles_elapsed.max,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,gpu__time_duration.sum
for lib in S nohint; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 150 $NCU --profile-from-start off --clock-control none --metrics $M -k regex:FwdSm90 python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 > $OUT/ncu_$lib.txt 2>&1
  echo "== $lib"; grep -E "lts__|lrc__|gpc__|hmma|duration" $OUT/ncu_$lib.txt
done
for r in 1 2; do for lib in S nohint; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 100 python .carry/exp/sustime.py $lib dense-4x8192-full,dense-4x8192-causal,mixed-serve-4x4096+124dec 1.0 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
done; done
