#!/bin/bash
# session 43, prepared, not run: ncu of our D = 128 dense 4x8192 full forward and one-kernel backward (main's
# library, .carry/FULL), with the metrics FlashAttention-4's kernels were profiled with on 2026-12-03
# (../h200-2026-12-03f/ncu_fa4_dense-4x8192-full.txt), less smsp__inst_executed_pipe_fp32 (n/a there). Question
# (README here): is the backward bound by shared memory (L1/TEX throughput, LSU wavefronts) while its tensor pipe
# idles, and how does the forward's tensor-pipe activity compare with FlashAttention-4's 84.8 %? About 2-3 min.
# carry: .carry/FULL (or `bash run107.sh LIB` for .carry/LIB)
lib=${1:-FULL}
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so
NCU=$(which ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
M=sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,dram__bytes.sum,lts__t_bytes.sum,sm__cycles_elapsed.avg.per_second,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,smsp__inst_executed_op_shared_ld.sum,smsp__inst_executed_op_shared_st.sum,smsp__inst_executed_op_global_red.sum,lts__t_sectors_op_red.sum
S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables"
timeout 280 $NCU --profile-from-start off --clock-control none $S --metrics $M -k regex:"FwdSm90|BwdDkdv" --page details python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 --backward > $OUT/ncu_ours_full.txt 2>&1
echo "rc $?"
grep -E "^  [a-z_]|Duration|SM Frequency|Elapsed Cycles|L1/TEX Cache Throughput|Compute \(SM\)|Issue Slots Busy|Shared|hmma|inst_executed|wavefronts|dram__bytes|lts__t_bytes|bank_conflicts|lts__t_sectors_op_red" $OUT/ncu_ours_full.txt | cut -c1-150
# Shared-memory wavefronts of loads and stores apart (are the backward's lse2 / dsum LDS.64 one wavefront each?),
# in a run of their own: if ncu does not know a metric name, only this part is lost.
M2=l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_st.sum,smsp__inst_executed_op_shared_ld.sum,smsp__inst_executed_op_shared_st.sum
timeout 200 $NCU --profile-from-start off --clock-control none --metrics $M2 -k regex:"BwdDkdv" python3 -m benchmarks.ncu_call dense-4x8192-full jax_fa4 --backward > $OUT/ncu_ours_full_smem_ops.txt 2>&1
echo "rc $?"
grep -E "^  [a-z_]|l1tex|smsp|ERROR" $OUT/ncu_ours_full_smem_ops.txt | cut -c1-150
