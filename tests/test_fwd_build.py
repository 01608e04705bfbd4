"""Build checks for the SM90 forward kernel: one variant compiles for sm_90a, exports to C, and its SASS has HGMMA
and no local-memory spills. Compiles in a child process because CUTE_DSL_ARCH must be set before cutlass loads."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent("""
    import sys
    from jax_fa4.kernels import fwd_sm90 as m
    variant = (sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    out = sys.argv[5]
    name = "fwd_" + m.variant_name(variant)
    m.compile_variant(variant, "sm_90a").export_to_c(out, name, "jaxfa4_" + name)
""")


def _cuobjdump():
    found = shutil.which("cuobjdump")
    if found:
        return found
    try:
        import nvidia
        for root in nvidia.__path__:
            hits = glob.glob(os.path.join(root, "*", "bin", "cuobjdump"))
            if hits:
                return hits[0]
    except ImportError:
        pass
    return None


def _pv_wait_spans(sass):
    """(MUFU.EX2 between the S wait and the PV wait, MUFU.EX2 between the PV wait and the next HGMMA) for each
    key-block loop with the intra-warpgroup overlap, in SASS order (S wait: wgmma wait_group 1; PV wait: 0)."""
    ops = [line.split("*/", 1)[1] for line in sass.splitlines() if line.lstrip().startswith("/*") and "*/" in line]
    spans, i = [], 0
    while i < len(ops):
        if "WARPGROUP.DEPBAR.LE gsb0, 0x1" not in ops[i]:
            i += 1
            continue
        j = next((j for j in range(i + 1, len(ops)) if "WARPGROUP.DEPBAR.LE gsb0, 0x0" in ops[j]), len(ops))
        k = next((k for k in range(j + 1, len(ops)) if "HGMMA" in ops[k]), len(ops))
        spans.append((sum("MUFU.EX2" in op for op in ops[i:j]), sum("MUFU.EX2" in op for op in ops[j:k])))
        i = k
    return spans


def _compile(tmp_path, variant):
    dump = tmp_path / "dump"
    out = tmp_path / "out"
    dump.mkdir()
    out.mkdir()
    env = dict(os.environ, CUTE_DSL_ARCH="sm_90a", CUTE_DSL_KEEP="cubin,ptx", CUTE_DSL_DUMP_DIR=str(dump),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _CHILD, *map(str, variant), str(out)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, dump


@pytest.mark.build
@pytest.mark.parametrize("variant", [("bf16", 128, "causal", 1), ("fp16", 64, "local", 1), ("bf16", 256, "causal", 1),
                                     ("bf16", 128, "none", 2)])
def test_fwd_sm90_compiles_exports_and_uses_hgmma(tmp_path, variant):
    out, dump = _compile(tmp_path, variant)
    name = "fwd_{}_d{}_{}".format(*variant[:3]) + ("_pair" if variant[3] == 2 else "")
    assert (out / f"{name}.h").stat().st_size > 0
    assert (out / f"{name}.o").stat().st_size > 0
    cubins = sorted(dump.glob("*.cubin"))
    assert cubins, "CUTE_DSL_KEEP=cubin produced no cubin"
    tool = _cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found; compile/export checked, SASS not")
    sass = subprocess.run([tool, "-sass", str(cubins[-1])], capture_output=True, text=True, check=True).stdout
    assert "HGMMA" in sass, "no HGMMA in the forward kernel's SASS"
    assert "UTMALDG" in sass, "no TMA loads in the forward kernel's SASS"
    # a pair variant multicasts K / V to its cluster; the one-CTA kernels do not
    assert ("UTMALDG.3D.MULTICAST" in sass) == (variant[3] == 2), "K/V multicast loads where (not) expected"
    usage = subprocess.run([tool, "-res-usage", str(cubins[-1])], capture_output=True, text=True,
                           check=True).stdout
    assert "LOCAL:0" in usage, f"local memory (spills) in the forward kernel: {usage}"
    if variant[1] >= 128:  # order_pv: the full-tile loop comes first in the SASS
        loops = _pv_wait_spans(sass)
        assert loops and loops[0][0] > 0 and loops[0][1] == 0, (
            f"softmax exponentials (before, after) the PV GEMM's wait in each key-block loop: {loops}; ptxas hoisted "
            "the wait of the full-tile loop above its softmax (fwd_sm90.overlapped_block's order_slot store)")
    ptxas = shutil.which("ptxas") or ("/usr/local/cuda/bin/ptxas" if os.path.exists("/usr/local/cuda/bin/ptxas") else None)
    ptx = sorted(dump.glob("*.ptx"))
    if ptxas and ptx:
        report = subprocess.run([ptxas, "-arch=sm_90a", "-v", str(ptx[-1]), "-o", str(tmp_path / "k.cubin")],
                                capture_output=True, text=True)
        assert report.returncode == 0, report.stderr[-2000:]
        assert "serialized" not in report.stdout + report.stderr, "ptxas serialises the wgmma pipeline (C7512)"


def test_fwd_sm90_variant_table_is_consistent():
    pytest.importorskip("cutlass")
    from jax_fa4.kernels import fwd_sm90 as m

    assert len(set(m.VARIANTS)) == len(m.VARIANTS) == 60
    from jax_fa4 import metadata

    for variant in m.VARIANTS:
        cfg = m.tile_config(variant)
        # Default scheduler metadata must be made with the tiles the kernel runs (the kernel path checks this).
        assert (cfg["tile_m"], cfg["tile_n"]) == metadata.default_tiles(variant[1], arch="sm_90a",
                                                                       masked=variant[2] != "none"), variant
        # pair variants run unpacked metadata only (kernel_backend._pair_target)
        assert cfg["pack_gqa"] == (metadata.KERNELS_PACK_GQA and variant[3] == 1)
        assert cfg["smem_bytes"] <= m.SMEM_LIMIT - 2048, (variant, cfg)
        assert cfg["tile_n"] % 16 == 0 and cfg["stages"] >= 2
        names = [n for n, _ in m.SIGNATURE(variant)]
        assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="supported"):
        m.compile_variant(("bf16", 80, "none", 1), "sm_90a")


def test_bwd_dkdv_sm90_variant_table_is_consistent():
    """Every backward pass fits the SM's shared memory with at least two Q / dO stages (one would make each block's
    loads wait for the previous block's GEMMs), and only the dkdq pass goes past SMEM_BUDGET; passes with a dQ
    buffer declare it; the dv pass streams 64-query blocks and loads no V."""
    pytest.importorskip("cutlass")
    from jax_fa4.kernels import bwd_dkdv_sm90 as m

    assert len(set(m.VARIANTS)) == len(m.VARIANTS) == 2 * (3 * 2 * 3 + 2 * 3 * 3)
    for variant in m.VARIANTS:
        _, d, _, pass_ = variant
        cfg = m.tile_config(variant)
        assert cfg["smem_bytes"] <= (m.SMEM_LIMIT if pass_ == "dkdq" else m.SMEM_BUDGET) - 2048, (variant, cfg)
        assert cfg["stages"] >= 2, (variant, cfg)
        assert ("dq_accum" in [n for n, _ in m.SIGNATURE(variant)]) == (pass_ in m.DQ_PASSES)
        if pass_ == "dv":
            assert cfg["tile_q"] == 64 and m.kv_tiles(pass_) == 1
