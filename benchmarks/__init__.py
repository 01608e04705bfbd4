"""Benchmark harness for jax_fa4: the DESIGN.md section 6 workloads beside cuDNN, measured in one process.

Run `python -m benchmarks.run` (see benchmarks/README.md). Modules: `masks` (exact pair counts, FLOPs, bytes),
`workloads` (the sequence-length sets), `impls` (how each implementation is called), `oracle` (the float64
correctness gate), `timing` (timer and device ceilings), `report` (JSON, Markdown, plots), `run` (the entry point).
"""
