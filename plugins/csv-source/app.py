"""csv-source: a catalog source that reads a spreadsheet export.

Reads one CSV file (or a JSON array of objects with the same keys) from a
directory the operator grants, and maps every row to a catalog entity:

    kind, name, namespace, title, description, owner, type, lifecycle,
    system, tags, link, link_title

Only `name` is required. `kind` defaults to `Component`; `tags` are
separated by `;` or spaces; `owner`, `type`, `lifecycle` and `system` go to
`spec`. Any other column becomes an annotation `csv-source/COLUMN`. A row
without a name, or a file that cannot be read or parsed, fails the sync with
the line at fault, and the host keeps the last good data.
"""

import csv
import io
import json
import os

import portolan_sdk as p
from portolan_sdk import source as s

KNOWN = {"kind", "name", "namespace", "title", "description", "owner", "type",
         "lifecycle", "system", "tags", "link", "link_title"}
SPEC_KEYS = ("type", "lifecycle", "owner", "system")
SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "directory": {"type": "string", "description": "The guest path of the granted directory."},
        "file": {"type": "string", "description": "The export to read, relative to the directory (.csv or .json)."},
    },
}


def read_rows(path):
    """The rows of the export as (line, dict) pairs."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except OSError as e:
        raise s.misconfigured(f"cannot read {path}: {e.strerror or e}")
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise s.invalid_data(f"{path}: not JSON: {e}")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise s.invalid_data(f"{path}: expected a JSON array of objects")
        return [(f"item {i + 1}", r) for i, r in enumerate(data)]
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "name" not in [f.strip() for f in reader.fieldnames]:
        raise s.invalid_data(f"{path}: the header has no 'name' column")
    # Line numbers as an editor shows them: the header is line 1.
    return [(f"line {reader.line_num}", {k.strip(): v for k, v in row.items() if k})
            for row in reader]


def clean(value):
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def to_entity(where, row):
    name = clean(row.get("name"))
    if not name:
        raise s.invalid_data(f"{where}: no name")
    tags = row.get("tags") or []
    if isinstance(tags, str):
        tags = tags.replace(";", " ").split()
    spec = {k: clean(row[k]) for k in SPEC_KEYS if clean(row.get(k))}
    links = []
    if clean(row.get("link")):
        links.append(p.link(clean(row["link"]), title=clean(row.get("link_title")) or None))
    annotations = {f"csv-source/{k}": clean(v) for k, v in row.items()
                   if k not in KNOWN and clean(v)}
    return p.entity(
        clean(row.get("kind")) or "Component", name,
        namespace=clean(row.get("namespace")) or "default",
        title=clean(row.get("title")) or None,
        description=clean(row.get("description")) or None,
        annotations=annotations, tags=[t.lower() for t in tags],
        links=links, spec=spec)


class Source(s.Plugin):
    def describe(self):
        return s.info(p.about("Catalog from a CSV or JSON export", "0.1.0",
                              "Maps the rows of a spreadsheet export in a granted directory to entities."),
                      SETTINGS_SCHEMA)

    def sync(self, request):
        directory = p.setting("directory", "/data")
        name = p.setting("file", "catalog.csv")
        path = os.path.join(directory, name)
        rows = read_rows(path)
        entities = [to_entity(where, row) for where, row in rows]
        p.info(f"read {len(entities)} entities from {path}")
        return s.page(entities, total_hint=len(entities))
