"""The conformance check in Python (rules in ../README.md)."""

from portolan_sdk import about, from_json, spec
from portolan_sdk import catalog
from portolan_sdk import check as c

WS = " \t\r\n"


def judge(e, min_length):
    if e.kind.lower() in ("user", "group"):
        return c.skipped("people and teams are exempt")
    text = (e.description or "").strip(WS)
    if not text:
        return c.failed("no description")
    if len(text) < min_length:
        return c.failed(f"description has {len(text)} characters, fewer than {min_length}")
    for tag in e.tags:
        if any("A" <= ch <= "Z" for ch in tag):
            return c.failed(f'tag "{tag}" is not lowercase')
    if not e.links:
        return c.failed("no links")
    return c.passed(value=len(text))


def owners_known(entities):
    """The `owner-known` check: each entity's owner, completed as a Group in
    the entity's namespace, looked up in the catalog in one call."""
    owners = []
    for e in entities:
        owner = spec(e).get("owner")
        owners.append(catalog.full_ref(owner, "group", e.namespace)
                      if isinstance(owner, str) and owner else None)
    try:
        found = iter(catalog.lookup([o for o in owners if o is not None]))
    except catalog.CatalogError as err:
        return [c.skipped("no owner") if o is None else c.errored(str(err)) for o in owners]
    out = []
    for owner in owners:
        if owner is None:
            out.append(c.skipped("no owner"))
        elif next(found) is not None:
            out.append(c.passed(value=owner))
        else:
            out.append(c.failed(f'owner "{owner}" is not in the catalog'))
    return out


class Check(c.Plugin):
    def describe(self):
        return c.info(
            about("Conformance (Python)", "0.1.0", "The cross-language conformance check."),
            c.check("conformance", "Conformance", "Description, lowercase tags and links.",
                    parameters_schema={"type": "object", "properties": {
                        "minLength": {"type": "integer", "minimum": 0}}}),
            c.check("owner-known", "Owner known", "The owner is in the catalog."))

    def evaluate(self, check, parameters, entities):
        if check == "owner-known":
            return owners_known(entities)
        if check != "conformance":
            raise c.unknown_check(check)
        min_length = from_json(parameters, {}).get("minLength", 10)
        return [judge(e, min_length) for e in entities]
