"""Build sgm's Cython extensions.

Supported: Linux and macOS with GCC or Clang, on x86-64 and aarch64.  The extensions are
compiled for the baseline architecture (no -march=native).  On x86-64, SHA-NI / AVX2 /
AVX-512 code sits behind per-function target attributes in sgm/_native/include/*.h and is
chosen at run time by CPUID, so a wheel built here runs on any x86-64 CPU; elsewhere only
the portable scalar kernel is compiled.  The headers use GCC/Clang extensions (<cpuid.h>,
inline asm, __builtin_*), so MSVC (Windows) is refused up front.

The OpenCL sources in kernels/ ship inside the package as sgm/kernels/*.cl.
"""
import os
import sys

if sys.platform == "win32":
    sys.exit("sgm: building on Windows is not supported: the native core needs GCC or Clang "
             "(<cpuid.h>, inline asm, __builtin_*); supported are Linux and macOS on x86-64 "
             "and aarch64")

from Cython.Build import cythonize  # noqa: E402
from setuptools import Extension, find_namespace_packages, setup  # noqa: E402

NATIVE = os.path.join("sgm", "_native")
INCLUDE = os.path.join(NATIVE, "include")
# every native module the package imports: a missing source fails the build rather than
# producing a package that breaks at import
NATIVE_MODULES = ("_sha256d", "_queue", "_worker")
headers = [os.path.join(INCLUDE, f) for f in sorted(os.listdir(INCLUDE)) if f.endswith(".h")]

cflags = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function"]
if os.environ.get("SGM_NATIVE_WERROR"):
    cflags.append("-Werror")


def ext(name: str) -> Extension:
    source = os.path.join(NATIVE, f"{name}.pyx")
    if not os.path.isfile(source):
        sys.exit(f"sgm: {source} is missing: the native modules {', '.join(NATIVE_MODULES)} "
                 "are all required (incomplete checkout or sdist)")
    return Extension(
        f"sgm._native.{name}",
        [source],
        include_dirs=[INCLUDE],
        depends=headers,
        extra_compile_args=cflags,
    )


# sgm and its subpackages (folders without __init__.py, like sgm/_native/include, count too),
# plus the repository's kernels/ folder installed as sgm/kernels and the desktop app's gui/
# folder installed as the package sgm_gui (the design keeps the app beside the engine, not in it)
packages = find_namespace_packages(include=["sgm", "sgm.*"], exclude=["*.__pycache__"])
gui_packages = ["sgm_gui" + name[3:] for name in
                find_namespace_packages(include=["gui", "gui.*"], exclude=["*.__pycache__"])]

setup(
    packages=[*packages, "sgm.kernels", *gui_packages],
    package_dir={"sgm.kernels": "kernels", "sgm_gui": "gui"},
    ext_modules=cythonize(
        [ext(name) for name in NATIVE_MODULES],
        compiler_directives={"language_level": "3"},
        include_path=[NATIVE],
    ),
)
