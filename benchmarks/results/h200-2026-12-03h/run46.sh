# ncu of the dense 4x8192 full forward under the dynamic and the single-tile scheduler: is the 2x L2 traffic
# (34 GB against FlashAttention-4's 17.9) the persistent order? Then kernel / harness time per mode.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/FINAL/libjax_fa4_kernels.so
NCU=$(which ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
date +%T
for mode in dynamic single-tile; do
  timeout 200 $NCU --profile-from-start off --clock-control none --set full --import-source no -k regex:FwdSm90 -o /tmp/fwd_$mode python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 --scheduler-mode $mode > $OUT/ncu_log_$mode.txt 2>&1
  tail -2 $OUT/ncu_log_$mode.txt
  $NCU -i /tmp/fwd_$mode.ncu-rep --page raw --csv > $OUT/ncu_raw_$mode.csv 2>&1
  $NCU -i /tmp/fwd_$mode.ncu-rep --page details > $OUT/ncu_details_$mode.txt 2>&1
  grep -E "Duration|SM Frequency|Elapsed Cycles|L2 Hit|L2 Cache Thr|Executed Instructions  " $OUT/ncu_details_$mode.txt
  date +%T
done
timeout 240 python3 .carry/modes_time.py 2>&1 | grep -v Warning | tee $OUT/modes_time.txt
date +%T
