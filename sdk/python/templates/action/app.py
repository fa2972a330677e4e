"""my-plugin: a day-2 action. Write what `run` does."""

import portolan_sdk as p
from portolan_sdk import action as a

INPUT = {"type": "object", "required": ["reason"],
         "properties": {"reason": {"type": "string", "minLength": 1}}}


class Operation(a.Plugin):
    def describe(self):
        return a.info(p.about("my-plugin", "0.1.0", "What my action does."),
                      input_schema=INPUT, kinds=["Component"])

    def run(self, invocation):
        reason = p.from_json(invocation.input)["reason"]
        target = invocation.entity.name if invocation.entity else "nothing"
        p.info(f"{invocation.actor} asked for {target}: {reason}")
        # To call an API, use wasi:http through the generated bindings
        # (componentize-py's poll_loop module); only the hosts in the
        # sidecar's [http] allow list are reachable.
        return a.outcome({"target": target, "reason": reason})
