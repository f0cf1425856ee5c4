"""persist.codegen: attrs class -> specialized codec source.

``plan_for`` works out a type once; ``emit_python`` turns a class plan into
Python source, ``emit_cython`` the plans of a module into a Cython module;
``make_python_codec`` compiles the Python source at run time, which is level 2
of the codec registry in :mod:`persist.codecs`; ``generate_module`` and
``cythonize_schemas`` (in :mod:`.build`) make the compiled codecs of level 1.

Nothing here imports persist at module level: persist's own setup.py runs
the generator from the source tree, before persist is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from . import _linecache, emit_python
from .build import compiled_module_name, cythonize_schemas, generate_module
from .fingerprint import GENERATOR_VERSION, fingerprint
from .plan import ClassPlan, TypeNode, plan_for

__all__ = [
    "GENERATOR_VERSION",
    "GeneratedCodec",
    "compiled_module_name",
    "cythonize_schemas",
    "fingerprint",
    "generate_module",
    "make_python_codec",
    "plan_for",
]


class Parts(Protocol):
    """The three functions a field's type contributes to a generated codec."""

    @property
    def write(self) -> Callable[[Any], str]: ...

    @property
    def read(self) -> Callable[[Any], Any]: ...

    @property
    def copy(self) -> Callable[[Any], Any]: ...


@attrs.frozen
class GeneratedCodec:
    """The functions compiled from one generated script (see emit_python)."""

    write: Callable[[Any], str]
    read: Callable[[Any], Any]
    copy: Callable[[Any], Any]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    fingerprint: str
    source: str


_MISSING = object()  # what obj.get() returns for an absent key


def make_python_codec(
    cls: type,
    *,
    resolve: Callable[[TypeNode], Parts] | None = None,
    use_linecache: bool = True,
) -> GeneratedCodec:
    """Generate, compile and return the codec functions of attrs class ``cls``.

    :param resolve: gives the parts (write, read, copy) for a field's type
        node; by default the registry's, so registered codecs serve nested types
    :param use_linecache: register the source so tracebacks and pdb show it
    :raises TypeError: ``cls`` is not an attrs class the generator can plan
    """
    from persist import _json, codecs  # they import this package: import when called

    plan = plan_for(cls)
    if not isinstance(plan, ClassPlan):
        raise TypeError(f"{cls!r} is not an attrs class the generator can plan")
    if resolve is None:
        resolve = codecs.part_for
    stamp = fingerprint(cls)
    source = emit_python.emit(plan, stamp)
    helpers: dict[str, Any] = {
        "_p_cls": cls,
        "_p_PathError": _json.PathError,
        "_p_quote": _json.quote,
        "_p_isfinite": math.isfinite,
        "_p_finish": _json.finish,
        "_p_load": _json.load,
        "_p_may_be_nonfinite": _json.may_be_nonfinite,
        "_p_check_any": _json.check_any,
        "_p_check_depth": _json.check_depth,
        "_p_refused": _json.refused,
        "_p_new": object.__new__,
        "_p_set": object.__setattr__,
        "_p_MISSING": _MISSING,
    }
    for field in plan.fields:
        parts = resolve(field.node)
        helpers[emit_python.helper("enc", field)] = parts.write
        helpers[emit_python.helper("dec", field)] = parts.read
        helpers[emit_python.helper("copy", field)] = parts.copy
        helpers[emit_python.helper("default", field)] = field.default_value
    names = {role: f"{role}_{emit_python.suffix(plan)}" for role in emit_python.ROLES}
    functions = _linecache.load(
        source,
        helpers,
        cls=cls,
        label=plan.label,
        fingerprint=stamp,
        names=names,
        use_linecache=use_linecache,
    )
    return GeneratedCodec(**functions, fingerprint=stamp, source=source)
