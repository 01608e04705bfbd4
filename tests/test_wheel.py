"""The wheel users install on a GPU machine without the build tools: `pip wheel --no-deps .` after a build ships
the prebuilt kernel library inside the package, tagged for Linux x86-64 (setup.py), and an installed copy loads
it from its own directory, away from the source tree."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jax_fa4.ffi import LIB_DIR as LIB, LIBRARY_NAME

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _setuptools_reason():
    """Why this environment cannot build the wheel offline, or None (setup.py needs setuptools' own bdist_wheel,
    pyproject.toml setuptools >= 77: the dev extra installs it)."""
    try:
        import setuptools
        from setuptools.command import bdist_wheel  # noqa: F401
    except ImportError:
        return "setuptools without bdist_wheel (the dev extra installs setuptools>=77)"
    if int(setuptools.__version__.split(".")[0]) < 77:
        return f"setuptools {setuptools.__version__} < 77 (the dev extra installs setuptools>=77)"
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the package sources and the library built in this checkout (so the test leaves
    no build/ or egg-info behind in the checkout)."""
    reason = _setuptools_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "jax_fa4", src / "jax_fa4", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(src)])
    (path,) = (tmp / "dist").glob("*.whl")
    return path


def test_wheel_is_tagged_for_the_platform_and_holds_the_library(wheel):
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    assert "Root-Is-Purelib: false" in meta
    assert "jax_fa4/__init__.py" in names and "jax_fa4/kernels/fwd_sm90.py" in names
    built = sorted(p.name for p in LIB.glob("*") if p.suffix in (".so", ".json")) if LIB.is_dir() else []
    assert sorted(n.split("/")[-1] for n in names if n.startswith("jax_fa4/_lib/")) == built


def test_installed_wheel_loads_its_own_library(wheel, tmp_path):
    if not (LIB / LIBRARY_NAME).exists():
        pytest.skip("no kernel library built in this checkout (python -m jax_fa4.build)")
    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)])
    env = {k: v for k, v in os.environ.items() if k != "JAX_FA4_LIBRARY"}
    env["PYTHONPATH"] = str(site)
    out = _run([sys.executable, "-c", "import jax_fa4, jax_fa4.ffi as f; m = f.load(); "
                "print(jax_fa4.__file__); print(f.library_path()); print(len(m['handlers']) if m else f.load_error())"],
               env=env, cwd=tmp_path)
    module_file, library, handlers = out.split("\n")[:3]
    assert module_file.startswith(str(site)) and library.startswith(str(site)), out
    assert int(handlers) == len(json.loads((LIB / "manifest.json").read_text())["handlers"])
