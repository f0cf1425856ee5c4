"""Type stub for persist/redis/_reads.pyx (the in-process read path)."""

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
D = TypeVar("D")

MISSING: Any
DELETED: Any

class CachedReads(Generic[T]):
    _view: dict[str, Any]
    _open: bool
    _why_closed: str
    @overload
    def get(self, key: str, /) -> T | None: ...
    @overload
    def get(self, key: str, default: T, /) -> T: ...
    @overload
    def get(self, key: str, default: D, /) -> T | D: ...
    def __getitem__(self, key: str) -> T: ...
    def __contains__(self, key: object) -> bool: ...
    def _fetch(self, key: str) -> Any: ...
    def _exists(self, key: str) -> bool: ...
