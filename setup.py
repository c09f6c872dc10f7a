"""Builds the compiled core ``vcl_fast._C`` with CMake + ninja + pybind11.

Environment variables:
    VCL_FAST_CUDA         auto (default): build CUDA kernels when nvcc is found; 1: require them; 0: skip them.
    VCL_FAST_CUDA_ARCHS   CMake CUDA architectures (default "80;90").
    VCL_FAST_BUILD_TYPE   CMake build type (default Release).
    VCL_FAST_BUILD_JOBS   parallel build jobs (default: number of CPUs).
"""
import os
import subprocess
import sys
from pathlib import Path

import pybind11
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        cuda = os.environ.get("VCL_FAST_CUDA", "auto").lower()
        if cuda not in ("auto", "0", "1"):
            raise RuntimeError(f"VCL_FAST_CUDA must be auto, 0 or 1, got {cuda!r}")
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-S{ROOT}",
            f"-B{build_dir}",
            "-GNinja",
            f"-DCMAKE_BUILD_TYPE={os.environ.get('VCL_FAST_BUILD_TYPE', 'Release')}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DVCL_FAST_CUDA={cuda}",
            f"-DVCL_FAST_CUDA_ARCHS={os.environ.get('VCL_FAST_CUDA_ARCHS', '80;90')}",
        ]
        jobs = os.environ.get("VCL_FAST_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.run(["cmake", *args], check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("vcl_fast._C")], cmdclass={"build_ext": CMakeBuild})
