"""Scaffold-generator helpers (world `scaffold-generator`)."""

from typing import Any, Iterable, Optional, Union

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import generator as _g

from . import to_json

Plugin = exports.Generator
__all__ = ["Plugin", "info", "file", "output", "invalid_parameter", "other"]


def info(about_: Any, parameters_schema: Any, tags: Iterable[str] = ()) -> _g.GeneratorInfo:
    return _g.GeneratorInfo(about=about_, tags=list(tags),
                            parameters_schema=to_json(parameters_schema))


def file(path: str, content: Union[str, bytes], executable: bool = False) -> _g.File:
    """A generated file; text is encoded as UTF-8."""
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    return _g.File(path=path, content=data, executable=executable)


def output(files: Iterable[_g.File], entity: Optional[Any] = None,
           links: Iterable[Any] = (), messages: Iterable[str] = ()) -> _g.Output:
    return _g.Output(files=list(files), entity=entity, links=list(links), messages=list(messages))


def invalid_parameter(pointer: str, why: str) -> Err:
    return Err(_g.Error_InvalidParameter((pointer, why)))


def other(why: str) -> Err: return Err(_g.Error_Other(why))
