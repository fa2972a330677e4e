"""my-plugin: a catalog source. Replace `fetch` with your system's export."""

import portolan_sdk as p
from portolan_sdk import source as s


def fetch():
    """The records to catalog; read a granted directory (open('/data/...'))
    or an allowlisted API here."""
    return [{"name": "example-service", "owner": "team-a", "description": "An example"}]


class Source(s.Plugin):
    def describe(self):
        return s.info(p.about("my-plugin", "0.1.0", "Where my entities come from."))

    def sync(self, request):
        entities = [
            p.entity("Component", r["name"], description=r.get("description"),
                     spec={"type": "service", "lifecycle": "production", "owner": r["owner"]})
            for r in fetch()
        ]
        p.info(f"{len(entities)} entities")
        return s.page(entities)  # one page; return next_cursor to page
