"""The compiled kernels of the NumPy engine (models/native.py); everything else is in
pyproject.toml. ``optional``: where no C compiler is at hand the install still succeeds and
the engine runs its NumPy loops."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "models._native",
            ["models/_native.c"],
            # Fused multiply-adds where the CPU has them (ISO C mode turns them off), and no
            # floating-point traps to keep, so that tanh's selects vectorise.
            extra_compile_args=[
                "-O3",
                "-std=c11",
                "-ffp-contract=fast",
                "-fno-trapping-math",
                "-Wall",
            ],
            libraries=["m"],
            optional=True,
        )
    ]
)
