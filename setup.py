"""Build the compiled core (and, from issue 4 on, the schema codecs).

Switches: PERSIST_DEBUG=1 compiles with -O0 -g and Cython's bounds checks on.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PERSIST_DEBUG") == "1"

directives = {"language_level": 3}
extra_compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
if DEBUG:
    directives.update(boundscheck=True, wraparound=True, linetrace=True)

extensions = [
    Extension(
        "persist._core",
        ["persist/_core.pyx"],
        extra_compile_args=extra_compile_args,
        depends=[
            "persist/_core.pxd",
            "persist/_core_keys.pxi",
            "persist/_core_map.pxi",
            "persist/_core_parser.pxi",
            "persist/_core_writer.pxi",
        ],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
