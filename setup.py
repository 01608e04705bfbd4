"""Marks the wheel as Linux x86-64 only (py3-none-<platform>): it carries the prebuilt kernel library
(jax_fa4/_lib/libjax_fa4_kernels.so, loaded with ctypes, so it needs no Python ABI tag), which setuptools would
otherwise ship in a pure `py3-none-any` wheel. Everything else is in pyproject.toml."""

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    """A distribution with a platform-specific binary (not a Python extension module)."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        return ("py3", "none", super().get_tag()[2])


setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
