"""The ahead-of-time build on a CPU-only machine: library, exported symbols, embedded architectures, cache hits."""

import subprocess

import pytest

from jax_fa4.build import build
from jax_fa4.build.plan import plan as plan_jobs
from jax_fa4.build.inspect import fatbins, kernel_reports
from jax_fa4.build.shim_codegen import handler_source, tensor_layouts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("lib")
    first = build(["combine"], ["sm_90a", "sm_100a"], out_dir=out)
    return first, out


@pytest.mark.build
def test_build_produces_library_exporting_only_ffi_handlers(built):
    result, _ = built
    assert result.library.exists()
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(result.library)], capture_output=True, text=True,
                             check=True).stdout.split()
    exported = [s for s in symbols if s.startswith("jaxfa4_ffi_")]
    names = {job.name for job in plan_jobs(["combine"], ["sm_90a", "sm_100a"])}
    assert {f"jaxfa4_ffi_{n}" for n in names} == set(exported)
    assert not [s for s in symbols if "cuda" in s.lower()], "cudart must stay private to the library"


@pytest.mark.build
def test_library_embeds_sm90a_and_sm100a_code(built):
    result, _ = built
    assert len(fatbins(result.library.read_bytes())) == len(plan_jobs(["combine"], ["sm_90a", "sm_100a"]))
    archs = {r["arch"] for r in kernel_reports(result.library, with_sass=False)}
    assert archs == {"sm_90a", "sm_100a"}


@pytest.mark.build
def test_rebuild_with_nothing_changed_is_a_cache_hit(built):
    _, out = built
    again = build(["combine"], ["sm_90a", "sm_100a"], out_dir=out)
    assert again.built == [] and again.link == "cached"


@pytest.mark.build  # plans jobs from the kernel modules, which import cutlass
def test_job_names_are_stable_and_keys_follow_content():
    a = plan_jobs(["combine"], ["sm_90a"])
    b = plan_jobs(["combine"], ["sm_90a"])
    assert [j.name for j in a] == [j.name for j in b] and [j.key for j in a] == [j.key for j in b]
    assert all(j.name.startswith("combine__") and j.name.endswith("__sm90a") for j in a)
    assert len({j.key for j in a}) == len(a)


@pytest.mark.build  # plans jobs from the kernel modules, which import cutlass
def test_only_patterns_select_jobs_by_name():
    """--only keeps the jobs whose name matches one of the patterns (an experiment library without editing
    CI_VARIANTS), across modules and architectures."""
    every = {j.name for j in plan_jobs(["combine", "prepare"])}
    picked = {j.name for j in plan_jobs(["combine", "prepare"], only=["^combine__bf16__", "__sm100a$"])}
    want = {n for n in every if n.startswith("combine__bf16__") or n.endswith("__sm100a")}
    assert picked == want and picked and picked != every
    assert plan_jobs(["combine"], only=["no_such_kernel"]) == []


HEADER = """
typedef struct {
    void *data;
    int32_t dynamic_shapes[3];
    int64_t dynamic_strides[2];
} jaxfa4_k_Tensor_x_t;
typedef struct {
    void *data;
    int32_t dynamic_shapes[1];
} jaxfa4_k_Tensor_c_t;
static inline int32_t cute_dsl_jaxfa4_k_wrapper(jaxfa4_k_Kernel_Module_t *module, jaxfa4_k_Tensor_x_t *x, jaxfa4_k_Tensor_c_t *c, float scale, cudaStream_t stream) {
"""


def test_codegen_reads_tensor_layouts_and_binds_in_order():
    assert tensor_layouts(HEADER, "jaxfa4_k") == {"x": (3, 2), "c": (1, 0)}
    src = handler_source("k", "jaxfa4_k", HEADER, [("x", "in"), ("c", "scratch_zero"), ("scale", "f32")])
    assert '.Arg<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>().Attr<float>("scale")' in src
    assert "FillAsync" in src and "kCmdBufferCompatible" in src and "PoisonOutputs" not in src
    src = handler_source("k", "jaxfa4_k", HEADER, [("x", "in"), ("c", "out"), ("scale", "f32")])
    assert "PoisonOutputs" in src  # outputs (not scratch) are poisoned on request


def test_codegen_rejects_a_signature_that_disagrees_with_the_export():
    with pytest.raises(ValueError, match="SIGNATURE order"):
        handler_source("k", "jaxfa4_k", HEADER, [("c", "in"), ("x", "in"), ("scale", "f32")])


@pytest.mark.build  # plans jobs from the kernel modules, which import cutlass
def test_build_switches_of_a_module_are_part_of_its_keys(monkeypatch):
    # A timeline build (FWD_SM90_TIMELINE=1) compiles other code: its objects must not be reused by a normal build.
    monkeypatch.delenv("FWD_SM90_TIMELINE", raising=False)
    plain = {j.name: j.key for j in plan_jobs(["fwd_sm90", "combine"], ["sm_90a"], reduced=True)}
    monkeypatch.setenv("FWD_SM90_TIMELINE", "1")
    timeline = {j.name: j.key for j in plan_jobs(["fwd_sm90", "combine"], ["sm_90a"], reduced=True)}
    assert plain.keys() == timeline.keys()
    for name in plain:
        assert (plain[name] != timeline[name]) == name.startswith("fwd_sm90__"), name
