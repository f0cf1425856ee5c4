"""Every public name of persist carries a docstring that help() and IDEs show.

Walks ``persist.__all__``, ``persist.errors`` and ``persist.codecs``, and each
public class's members. A member's ``__doc__`` must say something beyond the
signature Cython embeds (``PersistMap.get(self, key, default=None)``) or the
``Alias for field number 0`` of a bare named-tuple field. Attributes that are
not descriptors of their own (set on instances, or slots made by attrs, whose
``__doc__`` cannot be set) must be described by an ``:ivar name:`` line of
their class's docstring.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import pydoc
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import persist
import persist.codecs
import persist.errors

MODULES = [persist, persist.errors, persist.codecs]


def public_objects() -> Iterator[tuple[str, Any]]:
    """``(qualified name, object)`` of every public name of the public modules."""
    for module in MODULES:
        for name in module.__all__:
            yield f"{module.__name__}.{name}", getattr(module, name)


def public_classes() -> list[tuple[str, type]]:
    """The public classes, each once (persist re-exports the others' names)."""
    seen: dict[type, str] = {}
    for name, obj in public_objects():
        if inspect.isclass(obj):
            seen.setdefault(obj, name)
    return [(name, cls) for cls, name in seen.items()]


def own_members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public members ``cls`` defines itself (inherited ones are the base's)."""
    for klass in cls.__mro__:
        if klass is object or klass.__module__ in ("builtins", "typing"):
            continue
        if not klass.__module__.startswith("persist"):
            continue  # collections.abc mixins, tuple: documented upstream
        for name, member in vars(klass).items():
            if not name.startswith("_"):
                yield name, member


_SIGNATURE = re.compile(r"^\w+(\.\w+)*\(.*\)( -> .*)?$|^\w+: \w+$")
_FIELD_ALIAS = re.compile(r"^Alias for field number \d+$")


def described(doc: str | None) -> bool:
    """Whether ``doc`` says more than a Cython signature or a named-tuple alias."""
    lines = [line for line in (doc or "").strip().splitlines() if line.strip()]
    if lines and _SIGNATURE.match(lines[0]):
        lines = lines[1:]
    return bool(lines) and not _FIELD_ALIAS.match(lines[0])


def ivars(cls: type) -> set[str]:
    """The names the class docstring describes with ``:ivar name:``."""
    return set(re.findall(r":ivar (\w+):", cls.__doc__ or ""))


def sample_instances() -> list[object]:
    """One instance of each public class whose instances carry public attributes."""
    store = persist.Store()
    return [
        store,
        persist.CorruptWALError("f.db", 2, 13, "a value line is missing"),
        persist.codec_for(int),
        persist.RepairReport(kept=1, dropped=(), backup=None),
    ]


def module_data_docs(module: ModuleType) -> dict[str, str]:
    """The docstrings written under module-level assignments (what IDEs show)."""
    body = ast.parse(inspect.getsource(module)).body
    docs: dict[str, str] = {}
    for statement, after in itertools.pairwise(body):
        if (
            isinstance(statement, ast.Assign | ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
            )
            for target in targets:
                if isinstance(target, ast.Name):
                    docs[target.id] = after.value.value
    return docs


@pytest.mark.parametrize(("name", "obj"), list(public_objects()))
def test_public_name_has_a_docstring(name: str, obj: Any) -> None:
    """A class or function: its own docstring; a value: the string under it."""
    if inspect.isclass(obj) or callable(obj):
        assert described(obj.__doc__), name
    else:
        module_name, _, attribute = name.rpartition(".")
        module = sys.modules[module_name]
        assert described(module_data_docs(module).get(attribute)), name


@pytest.mark.parametrize(
    ("name", "cls"), public_classes(), ids=[n for n, _ in public_classes()]
)
def test_public_members_have_docstrings(name: str, cls: type) -> None:
    """Methods, properties, Cython attributes and named-tuple fields."""
    undocumented: list[str] = []
    for member_name, member in own_members(cls):
        if type(member).__name__ == "member_descriptor":  # a slot made by attrs
            if member_name not in ivars(cls):
                undocumented.append(member_name)
        elif not described(getattr(member, "__doc__", None)):
            undocumented.append(member_name)
    assert undocumented == [], f"{name}: no docstring for {undocumented}"


@pytest.mark.parametrize("instance", sample_instances(), ids=lambda i: type(i).__name__)
def test_instance_attributes_are_in_the_class_docstring(instance: object) -> None:
    """An attribute set on instances has no __doc__: the class's :ivar says it."""
    cls = type(instance)
    public = {name for name in getattr(instance, "__dict__", {}) if name[0] != "_"}
    public |= {name for name in getattr(cls, "__slots__", ()) if name[0] != "_"}
    assert public - ivars(cls) == set()


def test_the_checks_catch_what_they_should() -> None:
    """Signatures, named-tuple aliases and blanks do not count as docstrings."""
    assert not described("PersistMap.size(self)")
    assert not described("value: object")
    assert not described("Alias for field number 0")
    assert not described("  \n ")
    assert described("PersistMap.size(self)\nNumber of keys.")
    assert described("value: object\nThe copy the update function works on.")


def test_stubs_carry_the_cython_docstrings() -> None:
    """_core.pyi documents what PersistMap and Update document at run time."""
    stub = (Path(persist.__file__).parent / "_core.pyi").read_text(encoding="utf-8")
    for cls in (persist.PersistMap, persist.Update):
        for name, member in own_members(cls):
            doc = [line for line in (member.__doc__ or "").splitlines() if line.strip()]
            first = doc[1] if _SIGNATURE.match(doc[0]) else doc[0]
            assert first.strip() in stub, f"{cls.__name__}.{name}: {first!r}"


def test_help_shows_attribute_docstrings() -> None:
    """help() prints the docstrings of Cython attributes and named-tuple fields."""
    shown = pydoc.render_doc(persist.PersistMap, renderer=pydoc.plaintext)
    assert "The Store this map belongs to" in shown
    shown = pydoc.render_doc(persist.Update, renderer=pydoc.plaintext)
    assert "True if the key had a value when the function was called." in shown
    shown = pydoc.render_doc(persist.Stats, renderer=pydoc.plaintext)
    assert "Live keys: every registered map's plus the orphans." in shown
