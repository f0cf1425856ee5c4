"""Build the compiled core, the JSON support module and the schema codecs.

The schema codecs are generated here from ``schemas/*.py`` by persist.codegen,
which runs from the source tree (persist itself is not built yet).
Switches: PERSIST_DEBUG=1 compiles with -O0 -g and Cython's bounds checks on.
"""

import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from codegen.build import cythonize_schemas, load_module

DEBUG = os.environ.get("PERSIST_DEBUG") == "1"

directives = {"language_level": 3}
extra_compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
if DEBUG:
    directives.update(boundscheck=True, wraparound=True, linetrace=True)

extensions = [
    Extension(
        "persist._core",
        ["persist/_core.pyx"],
        depends=[
            "persist/_core.pxd",
            "persist/_core_keys.pxi",
            "persist/_core_map.pxi",
            "persist/_core_parser.pxi",
            "persist/_core_sys.pxi",
            "persist/_core_writer.pxi",
        ],
    ),
    Extension(
        "persist._cjson",
        ["persist/_cjson.pyx"],
        depends=["persist/_cjson.pxd", "persist/_cjson_types.pxi"],
    ),
    Extension(
        "persist._plancodec", ["persist/_plancodec.pyx"], depends=["persist/_cjson.pxd"]
    ),
    Extension("persist.redis._reads", ["persist/redis/_reads.pyx"]),
]
schemas = [
    load_module(f"persist.schemas.{path.stem}", path)
    for path in sorted(Path("schemas").glob("[!_]*.py"))
]
ext_modules = cythonize(extensions, compiler_directives=directives)
ext_modules += cythonize_schemas(schemas, compiler_directives=directives)
for extension in ext_modules:
    extension.extra_compile_args = extra_compile_args

setup(ext_modules=ext_modules)
