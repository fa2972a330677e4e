"""Action helpers (world `action`)."""

from typing import Any, Iterable, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import operation as _o

from . import to_json

Plugin = exports.Operation
Role = _o.Role
__all__ = ["Plugin", "Role", "info", "outcome", "invalid_input", "failed", "other"]


def info(about_: Any, *, input_schema: Any = None, kinds: Iterable[str] = (),
         types: Iterable[str] = (), tags: Iterable[str] = (),
         required_role: "_o.Role" = _o.Role.MEMBER,
         approval: Optional["_o.Role"] = None) -> _o.ActionInfo:
    schema = input_schema if input_schema is not None else {"type": "object"}
    return _o.ActionInfo(about=about_, entity_kinds=list(kinds), entity_types=list(types),
                         entity_tags=list(tags), input_schema=to_json(schema),
                         required_role=required_role, approval=approval)


def outcome(output: Any = None, links: Iterable[Any] = ()) -> _o.Outcome:
    """A successful run: `output` is any JSON value (default `{}`)."""
    return _o.Outcome(output=to_json({} if output is None else output), links=list(links))


def invalid_input(pointer: str, why: str) -> Err: return Err(_o.Error_InvalidInput((pointer, why)))
def failed(why: str) -> Err: return Err(_o.Error_Failed(why))
def other(why: str) -> Err: return Err(_o.Error_Other(why))
