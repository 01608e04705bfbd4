"""Build check for the SM90 backward at D = 64, where the key block's K and V rows are register operands
(bwd_dkdv_sm90.kv_in_regs): S^T = K Q^T and dP^T = V dO^T compile to register-A wgmma (every HGMMA of the variant
then takes A from registers except dQ's), K and V reach the registers by ldmatrix, and nothing spills. Compiles in a
child process (CUTE_DSL_ARCH must be set before cutlass loads); no GPU needed."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from test_fwd_build import REPO, _cuobjdump

_CHILD = textwrap.dedent("""
    import sys
    from jax_fa4.kernels import bwd_dkdv_sm90 as m
    variant = (sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
    m.compile_variant(variant, "sm_90a")
""")


def clobbered_operand_registers(sass):
    """Instructions after the last LDSM that write a register the S^T / dP^T HGMMAs read as their A operand (K / V
    rows, kept for every query block of the key block). The dK / dV-only pass built this way (2026-12-05) had ptxas
    pack P and dS^T into K's and V's registers, so from the second query block on S^T and dP^T read P and dS^T:
    wrong gradients on the GPU, visible here in the SASS."""
    lines = [line.strip() for line in sass.splitlines() if re.match(r"\s+/\*[0-9a-f]{4}\*/", line)]
    last_ldsm = max(i for i, line in enumerate(lines) if "LDSM" in line)
    operand = set()
    for line in lines:
        m = re.search(r"HGMMA\.\S+ R\d+, R(\d+), gdesc\[\w+\],", line)  # B not transposed: S^T and dP^T
        if m:
            operand.update(range(int(m.group(1)), int(m.group(1)) + 4))
    clobbers = []
    for line in lines[last_ldsm + 1:]:
        m = re.match(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P\w+\s+)?(\S+)\s+R(\d+)\b", line)
        if m and not m.group(1).startswith(("HGMMA", "LDSM")) and int(m.group(2)) in operand:
            clobbers.append(line)
    return operand, clobbers


@pytest.mark.build
@pytest.mark.parametrize("variant", [("bf16", 64, "causal", "dkdvdq"), ("bf16", 64, "none", "dkdvdq")])
def test_d64_backward_reads_k_and_v_from_registers(tmp_path, variant):
    pytest.importorskip("cutlass")
    from jax_fa4.kernels import bwd_dkdv_sm90 as m

    assert m.BwdDkdvSm90(variant).kv_in_regs
    assert not m.BwdDkdvSm90(("bf16", 128, variant[2], variant[3])).kv_in_regs
    assert not m.BwdDkdvSm90(("bf16", 64, variant[2], "dkdv")).kv_in_regs  # wrong on the GPU (see kv_in_regs)
    env = {"CUTE_DSL_ARCH": "sm_90a", "CUTE_DSL_KEEP": "cubin", "CUTE_DSL_DUMP_DIR": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, *map(str, variant)], env={**os.environ, **env}, cwd=REPO,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    tool = _cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found; compile checked, SASS not")
    cubin = sorted(tmp_path.glob("*.cubin"))[-1]
    sass = subprocess.run([tool, "-sass", str(cubin)], capture_output=True, text=True, check=True).stdout
    hgmma = re.findall(r"HGMMA\.\S+ R\d+, (\S+),", sass)
    from_registers = sum(a.startswith("R") for a in hgmma)
    # S^T, dP^T, dV, dK take A from registers (D / 16 = 4 k-steps each); only dQ = dS K reads A from shared memory
    assert from_registers >= 16, hgmma
    assert not all(a.startswith("R") for a in hgmma), hgmma  # dQ = dS K reads both operands from shared memory
    assert "LDSM" in sass, "K / V not loaded with ldmatrix"
    operand, clobbers = clobbered_operand_registers(sass)
    assert len(operand) == 32, operand  # K and V: 16 registers each
    assert not clobbers, clobbers[:8]
    usage = subprocess.run([tool, "-res-usage", str(cubin)], capture_output=True, text=True, check=True).stdout
    assert "LOCAL:0" in usage, f"local memory (spills) in the backward kernel: {usage}"


def test_clobber_check_flags_an_overwritten_operand():
    """The check above on a hand-made listing: K loaded into R152..R155, S^T reading it, then P packed into R153."""
    sass = "\n".join(f"        /*{i:04x}*/    {text} ;" for i, text in enumerate([
        "LDSM.16.M88.4 R152, [R152]",
        "HGMMA.64x64x16.F32.BF16 R56, R152, gdesc[UR16], RZ, !UPT",
        "HGMMA.64x64x16.F32.BF16 R120, R60, gdesc[UR16].tnspB, R120",
        "F2FP.BF16.F32.PACK_AB R153, R57, R56",
    ]))
    operand, clobbers = clobbered_operand_registers(sass)
    assert operand == {152, 153, 154, 155}
    assert [c.split()[1] for c in clobbers] == ["F2FP.BF16.F32.PACK_AB"]
    assert clobbered_operand_registers(sass.replace("R153, R57", "R60, R57"))[1] == []
