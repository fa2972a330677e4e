"""Catalog-source helpers (world `catalog-source`)."""

from typing import Any, Iterable, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import source as _s

from . import to_json

Plugin = exports.Source
__all__ = ["Plugin", "info", "page", "unreachable", "unauthorized",
           "invalid_data", "misconfigured", "other"]


def info(about_: Any, settings_schema: Any = None) -> _s.SourceInfo:
    return _s.SourceInfo(about=about_, settings_schema=None if settings_schema is None
                         else to_json(settings_schema))


def page(entities: Iterable[Any], next_cursor: Optional[str] = None,
         total_hint: Optional[int] = None) -> _s.SyncPage:
    """One page of a sync; `next_cursor=None` means this is the last page."""
    return _s.SyncPage(entities=list(entities), next_cursor=next_cursor, total_hint=total_hint)


# `raise invalid_data("...")` and friends: the errors `sync` may fail with.
def unreachable(why: str) -> Err: return Err(_s.Error_Unreachable(why))
def unauthorized(why: str) -> Err: return Err(_s.Error_Unauthorized(why))
def invalid_data(why: str) -> Err: return Err(_s.Error_InvalidData(why))
def misconfigured(why: str) -> Err: return Err(_s.Error_Misconfigured(why))
def other(why: str) -> Err: return Err(_s.Error_Other(why))
