#!/bin/bash
# session 38, device run 6: PROTOTYPE 2-CTA clusters sharing K/V by TMA multicast (clu; static pair schedule, the
# cluster's CTAs take tiles 2i, 2i + 1 = two query heads of one KV head, same m-block). Correctness on the dense
# workloads (harness oracle), then sustained time against main dynamic (S) and main static (S-static).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
JAX_FA4_LIBRARY=$PWD/.carry/clu/libjax_fa4_kernels.so timeout 150 python -m benchmarks.run --only dense-4x8192 --impl jax_fa4 --no-ablation --fwd-only --max-seconds 0.3 --out $OUT/bench_clu > $OUT/bench_clu.log 2>&1
echo "rc=$?"; grep -E "jax_fa4 |WRONG|rror" $OUT/bench_clu.log | head -8
W=dense-4x8192-full,dense-4x8192-causal
for r in 1 2; do
  JAX_FA4_LIBRARY=$PWD/.carry/S/libjax_fa4_kernels.so timeout 100 python .carry/exp/sustime.py S $W 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
  JAX_FA4_LIBRARY=$PWD/.carry/S/libjax_fa4_kernels.so timeout 100 python .carry/exp/sustime.py S-static $W 1.0 fwd static 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
  JAX_FA4_LIBRARY=$PWD/.carry/clu/libjax_fa4_kernels.so timeout 100 python .carry/exp/sustime.py clu $W 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
done
