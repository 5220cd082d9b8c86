"""Build of the optional compiled kernel, rmsprop._fused (python/rmsprop/_fused.c).

Everything else about the package is in pyproject.toml. The extension is
optional: without a C compiler (or Python headers) the install still succeeds
and the engine runs its NumPy kernel (`rmsprop.kernel_info()` says which).

Compiler flags, and why:
  -O3                 vectorize the element loops
  -ffp-contract=off   never fuse a*b+c into an FMA: Keras rounds the product
  -fno-fast-math      no reassociation or other value-changing shortcuts
  -fno-math-errno     sqrt need not set errno, so it vectorizes (same results)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rmsprop._fused",
            sources=["python/rmsprop/_fused.c"],
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math",
                                "-fno-math-errno", "-pthread"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    ],
)
