"""Build myproject's compiled codecs: the attrs classes of myproject.schemas.

``cythonize_schemas`` writes ``myproject/_persist_schemas.pyx`` and returns
its Extension; it imports ``myproject.schemas`` from this folder (the
current directory of a PEP 517 build), so plain ``pip install .`` works.
"""

from persist.codegen import cythonize_schemas
from setuptools import setup

setup(ext_modules=cythonize_schemas(["myproject.schemas"]))
