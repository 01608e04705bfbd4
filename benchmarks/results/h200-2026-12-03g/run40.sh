# ncu of our forward, dense 4x8192 full (FlashAttention-4's: 5.89 ms at 1.64 GHz, tensor 84.8 %, 1.95 G instr)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/B/libjax_fa4_kernels.so
NCU=$(which ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
date +%T
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv
timeout 300 $NCU --profile-from-start off --clock-control none --set full --import-source no -k regex:FwdSm90 -o /tmp/fwd python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 > $OUT/ncu_log.txt 2>&1
tail -3 $OUT/ncu_log.txt
$NCU -i /tmp/fwd.ncu-rep --page details > $OUT/ncu_fwd_full_details.txt 2>&1
$NCU -i /tmp/fwd.ncu-rep --page raw --csv > $OUT/ncu_fwd_full_raw.csv 2>&1
$NCU -i /tmp/fwd.ncu-rep --page source --print-source sass --csv > $OUT/ncu_fwd_full_sass.csv 2>&1
ls -la $OUT; gzip -k $OUT/ncu_fwd_full_sass.csv; 
grep -E "Duration|SM Frequency|Executed Instructions  |Issue Slots Busy|L2 Hit|Warp Cycles Per Issued|Compute \(SM\)" $OUT/ncu_fwd_full_details.txt
date +%T
