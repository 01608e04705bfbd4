"""CuTe DSL kernels, one module per kernel. Imported only by the build (jax_fa4.build), never at run time, except
the `common_*` modules: plain-Python layouts shared by a kernel and host code (they import no CuTe DSL).

`KERNELS` says which modules the build compiles and for which GPU architectures. Each module exposes
`VARIANTS`, `SIGNATURE(variant)` and `compile_variant(variant, arch)`; optional `CI_VARIANTS` (the reduced set CI
builds), `variant_name(variant)` (a short stable tag; otherwise the variant's repr is sanitised) and `BUILD_ENV`
(environment variables that change its compiled code; their values join the build key).
"""

KERNELS = {
    "combine": ("sm_90a", "sm_100a"),
    "prepare": ("sm_90a", "sm_100a"),
    "fwd_sm90": ("sm_90a",),
    "bwd_dq_sm90": ("sm_90a",),
    "bwd_dkdv_sm90": ("sm_90a",),
    "bwd_dq_convert_sm90": ("sm_90a",),
}
