"""Helpers for Portolan plugins written in Python.

The typed bindings (`wit_world`) are generated from `wit/` by componentize-py
when a plugin is built; this package wraps the parts every plugin needs so a
plugin reads as plain Python: entities built from dicts, JSON in and out, the
host's log, settings and secrets. Role-specific helpers live in the modules
`check`, `source`, `action` and `generator`; import only the one for your
plugin's role (each needs that role's world). `catalog` (read-only lookups
in the portal's catalog) works in every role.
"""

import json
from typing import Any, Dict, Iterable, List, Optional

from wit_world.imports import host as _host
from wit_world.imports import portolan_plugin_types as types

__all__ = [
    "types", "about", "entity", "link", "to_json", "from_json", "settings",
    "setting", "secret", "trace", "debug", "info", "warn", "error",
]


def about(title: str, version: str, description: str) -> types.About:
    """What the plugin says about itself in `describe`."""
    return types.About(title=title, version=version, description=description)


def to_json(value: Any) -> str:
    """JSON text for a WIT `json` field, keys in the order written."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def from_json(text: Optional[str], default: Any = None) -> Any:
    """Parses a WIT `json` field; `default` when it is empty or absent."""
    if text is None or text == "":
        return default
    return json.loads(text)


def link(url: str, title: Optional[str] = None, icon: Optional[str] = None,
         type: Optional[str] = None) -> types.Link:
    return types.Link(url=url, title=title, icon=icon, type=type)


def _pairs(mapping: Optional[Dict[str, str]]) -> List[types.Pair]:
    return [types.Pair(key=k, value=str(v)) for k, v in (mapping or {}).items()]


def entity(kind: str, name: str, *, namespace: str = "default",
           title: Optional[str] = None, description: Optional[str] = None,
           labels: Optional[Dict[str, str]] = None,
           annotations: Optional[Dict[str, str]] = None,
           tags: Iterable[str] = (), links: Iterable[types.Link] = (),
           spec: Optional[Dict[str, Any]] = None,
           api_version: str = "backstage.io/v1alpha1") -> types.Entity:
    """A catalog entity. `spec` is a dict; relations are left to the host,
    which derives them from `spec` (owner, system, dependsOn, ...)."""
    return types.Entity(
        api_version=api_version, kind=kind, namespace=namespace, name=name,
        title=title, description=description, labels=_pairs(labels),
        annotations=_pairs(annotations), tags=list(tags), links=list(links),
        spec=to_json(spec or {}), relations=[])


def spec(e: types.Entity) -> Dict[str, Any]:
    """An entity's `spec` as a dict."""
    return from_json(e.spec, {})


def settings() -> Dict[str, Any]:
    """The sidecar's `[settings]` table as a dict."""
    return from_json(_host.settings(), {})


def setting(key: str, default: Optional[str] = None) -> Optional[str]:
    """One setting (strings as they are, other values as JSON text)."""
    value = _host.setting(key)
    return default if value is None else value


def secret(name: str) -> str:
    """A granted secret's value; raises `componentize_py_types.Err` with the
    host's error if it is not granted or not set."""
    return _host.secret(name)


def _log(level: "_host.LogLevel", message: str) -> None:
    _host.log(level, message)


def trace(message: str) -> None: _log(_host.LogLevel.TRACE, message)
def debug(message: str) -> None: _log(_host.LogLevel.DEBUG, message)
def info(message: str) -> None: _log(_host.LogLevel.INFO, message)
def warn(message: str) -> None: _log(_host.LogLevel.WARN, message)
def error(message: str) -> None: _log(_host.LogLevel.ERROR, message)
