"""Read-only lookups in the portal's catalog (contract 0.3.0 and later),
for plugins of every role: does an entity's owner exist, which system does
a component belong to.

    from portolan_sdk import catalog

    found = catalog.lookup(["group:default/team-a", "user:jdoe"])
    if found[0] is None:
        warn("team-a is not in the catalog")

Look up everything a batch needs in one call: each call waits on the host's
database, and its time counts against the plugin's deadline.
"""

from typing import List, Optional, Sequence

from componentize_py_types import Err
from wit_world.imports import catalog as _catalog
from wit_world.imports import portolan_plugin_types as types

__all__ = ["MAX_REFS", "CatalogError", "lookup", "full_ref"]

MAX_REFS = 1000
"""Most references one `lookup` may carry; split longer lists."""


class CatalogError(Exception):
    """A lookup that failed as a whole. `index` is the position of the
    reference the host refused as malformed (else None); `retry` is True
    when the catalog could not be read now and a later call may succeed."""

    def __init__(self, message: str, index: Optional[int] = None, retry: bool = False):
        super().__init__(message)
        self.index = index
        self.retry = retry


def lookup(refs: Sequence[str]) -> List[Optional[types.Entity]]:
    """One answer per reference, in order: the entity, or None where the
    catalog has no such entity. A reference is `kind:namespace/name`, or
    `kind:name` in the namespace `default`, compared case-insensitively;
    the kind is required (complete a shorthand such as `spec.owner` with
    `full_ref` first). Raises `CatalogError`."""
    refs = list(refs)
    if len(refs) > MAX_REFS:
        raise CatalogError(f"catalog lookup: {len(refs)} references in one call, at most {MAX_REFS}")
    if not refs:
        return []
    try:
        return _catalog.lookup(refs)
    except Err as err:
        e = err.value
        if isinstance(e, _catalog.Error_InvalidReference):
            index, why = e.value
            raise CatalogError(f"catalog lookup: reference {index} is invalid: {why}",
                               index=index) from None
        if isinstance(e, _catalog.Error_TooManyReferences):
            raise CatalogError(f"catalog lookup: {e.value} references in one call, "
                               f"at most {MAX_REFS}") from None
        if isinstance(e, _catalog.Error_Unavailable):
            raise CatalogError(f"catalog lookup: the catalog is unavailable: {e.value}",
                               retry=True) from None
        raise CatalogError(f"catalog lookup failed: {e.value}") from None


def full_ref(reference: str, kind: str, namespace: str = "default") -> str:
    """Completes a shorthand reference as Backstage does: `reference` may
    leave out its kind (then `kind`) and its namespace (then `namespace`,
    usually the referring entity's). `full_ref("team-a", "group")` is
    `group:default/team-a`; `full_ref("user:ops/jdoe", "group")` is
    `user:ops/jdoe`. Kind and namespace come out lower-cased, as the
    catalog compares them; the name is kept as written."""
    slash = reference.find("/")
    colon = reference.find(":")
    # A slash before the first colon means the colon belongs to the name.
    if colon >= 0 and 0 <= slash < colon:
        colon = -1
    k, rest = (reference[:colon], reference[colon + 1:]) if colon >= 0 else (kind, reference)
    s = rest.find("/")
    ns, name = (rest[:s], rest[s + 1:]) if s >= 0 else (namespace, rest)
    return f"{k.lower()}:{ns.lower()}/{name}"
