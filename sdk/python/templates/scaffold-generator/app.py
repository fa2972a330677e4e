"""my-plugin: a scaffold generator. Write the files a new project gets."""

import portolan_sdk as p
from portolan_sdk import generator as g

PARAMETERS = {"type": "object", "required": ["name", "owner"], "properties": {
    "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
    "owner": {"type": "string"}}}


class Generator(g.Plugin):
    def describe(self):
        return g.info(p.about("my-plugin", "0.1.0", "What my template creates."), PARAMETERS)

    def generate(self, parameters):
        params = p.from_json(parameters)
        name, owner = params["name"], params["owner"]
        readme = g.file("README.md", f"# {name}\n\nOwned by {owner}.\n")
        entity = p.entity("Component", name, description=f"{name}, created from my-plugin",
                          spec={"type": "service", "lifecycle": "experimental", "owner": owner})
        return g.output([readme], entity=entity)
