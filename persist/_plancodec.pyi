"""Type stub for the plan-driven compiled codecs (persist/_plancodec.pyx)."""

from collections.abc import Callable, Container
from typing import Any

from persist._cjson import ClassCodec

class PlanCodec(ClassCodec):
    """The compiled codec of an attrs class, driven by its ClassPlan."""

    def __init__(self, plan: Any) -> None: ...
    def bind(
        self,
        nested: Callable[[type], ClassCodec | None],
        registered: Container[Any],
    ) -> None: ...
    def copy(self, value: Any) -> Any: ...

class ValueCodec(ClassCodec):
    """The compiled codec of a plain value type (a builtin codec)."""

    def __init__(
        self,
        type_node: Any,
        python: Any,
        nested: Callable[[type], ClassCodec | None],
        registered: Container[Any],
    ) -> None: ...
