"""my-plugin: a scorecard check. Rename the check, then write `judge`."""

from portolan_sdk import about, from_json
from portolan_sdk import check as c

SCHEMA = {"type": "object", "properties": {"minLength": {"type": "integer", "minimum": 0}}}


def judge(entity, min_length):
    description = (entity.description or "").strip()
    if not description:
        return c.failed("no description")
    if len(description) < min_length:
        return c.failed(f"description shorter than {min_length} characters")
    return c.passed(value=len(description))


class Check(c.Plugin):
    def describe(self):
        return c.info(about("my-plugin", "0.1.0", "What my checks look at."),
                      c.check("described", "Is described", "The entity says what it is.",
                              parameters_schema=SCHEMA))

    def evaluate(self, check, parameters, entities):
        if check != "described":
            raise c.unknown_check(check)
        min_length = from_json(parameters, {}).get("minLength", 10)
        return [judge(e, min_length) for e in entities]
