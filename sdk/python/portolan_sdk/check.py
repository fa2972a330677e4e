"""Scorecard-check helpers (world `scorecard-check`)."""

from typing import Any, Iterable, List, Optional

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.exports import check as _c

from . import about, to_json

Status = _c.Status
__all__ = ["Plugin", "Status", "info", "check", "passed", "failed", "skipped",
           "errored", "unknown_check", "invalid_parameter", "about"]


class Plugin(exports.Check):
    """The base of a check plugin's `Check` class: write `describe` and
    `evaluate`.

    Since contract 0.4.0 the host may ask for several rules over the same
    entities in one call (`evaluate_rules`). This default answers each rule
    with `evaluate`, as if it had been called alone: a rule whose
    `evaluate` raises `Err` gets that error, and the other rules still get
    their outcomes. Override it to read each entity once for all the rules.
    """

    def evaluate_rules(self, rules: List[_c.Rule], entities: List[Any]) -> List[Any]:
        answers: List[Any] = []
        for rule in rules:
            try:
                answers.append(Ok(self.evaluate(rule.check, rule.parameters, entities)))
            except Err as err:
                answers.append(err)
        return answers


def check(id: str, title: str, description: str, *, kinds: Iterable[str] = (),
          parameters_schema: Any = None) -> _c.CheckInfo:
    """One check the plugin offers; the schema is a dict (default: any object)."""
    schema = parameters_schema if parameters_schema is not None else {"type": "object"}
    return _c.CheckInfo(id=id, title=title, description=description,
                        entity_kinds=list(kinds), parameters_schema=to_json(schema))


def info(about_: Any, *checks: _c.CheckInfo) -> _c.PluginInfo:
    return _c.PluginInfo(about=about_, checks=list(checks))


def _outcome(status: _c.Status, message: Optional[str], value: Any) -> _c.Outcome:
    return _c.Outcome(status=status, message=message,
                      value=None if value is None else to_json(value))


def passed(message: Optional[str] = None, value: Any = None) -> _c.Outcome:
    return _outcome(_c.Status.PASS, message, value)


def failed(message: str, value: Any = None) -> _c.Outcome:
    return _outcome(_c.Status.FAIL, message, value)


def skipped(message: Optional[str] = None) -> _c.Outcome:
    return _outcome(_c.Status.SKIP, message, None)


def errored(message: str) -> _c.Outcome:
    return _outcome(_c.Status.ERROR, message, None)


def unknown_check(check_id: str) -> Err:
    """`raise unknown_check(check)` for a check id the plugin does not offer."""
    return Err(_c.Error_UnknownCheck(check_id))


def invalid_parameter(pointer: str, why: str) -> Err:
    return Err(_c.Error_InvalidParameter((pointer, why)))
