"""Build sgm's Cython extensions.

The extensions are compiled for baseline x86-64 (or whatever the target is): no
-march=native.  SHA-NI / AVX2 / AVX-512 code sits behind per-function target attributes in
sgm/_native/include/*.h and is chosen at run time by CPUID, so a wheel built here runs on
any CPU of the architecture.
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

NATIVE = os.path.join("sgm", "_native")
INCLUDE = os.path.join(NATIVE, "include")
headers = [os.path.join(INCLUDE, f) for f in sorted(os.listdir(INCLUDE)) if f.endswith(".h")]

if sys.platform == "win32":
    cflags = ["/O2"]
else:
    cflags = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function"]
    if os.environ.get("SGM_NATIVE_WERROR"):
        cflags.append("-Werror")


def ext(name: str) -> Extension:
    return Extension(
        f"sgm._native.{name}",
        [os.path.join(NATIVE, f"{name}.pyx")],
        include_dirs=[INCLUDE],
        depends=headers,
        extra_compile_args=cflags,
    )


extensions = [ext("_sha256d")]
if os.path.exists(os.path.join(NATIVE, "_queue.pyx")):
    extensions.append(ext("_queue"))

class build_py_with_kernels(build_py):
    """Also ship the OpenCL kernels: kernels/*.cl (their one source) go into the wheel as
    sgm/kernels/*.cl, where sgm.devices.opencl looks first."""

    def run(self):
        super().run()
        if not os.path.isdir("kernels"):
            return
        target = os.path.join(self.build_lib, "sgm", "kernels")
        self.mkpath(target)
        for name in sorted(os.listdir("kernels")):
            if name.endswith(".cl"):
                self.copy_file(os.path.join("kernels", name), os.path.join(target, name))


setup(
    cmdclass={"build_py": build_py_with_kernels},
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        include_path=[NATIVE],
    ),
)
