"""Validates OpenLineage events against the OpenLineage JSON schemas (tests/it/lineage.rs).

Usage: openlineage_check.py SCHEMA_DIR EVENTS.jsonl

Each line of EVENTS.jsonl is one event. It must be a valid RunEvent of the core schema, and
every facet it carries (of the run, the job and each dataset) must be valid against the facet
schema its `_schemaURL` names, which must be one of the files in SCHEMA_DIR (matched by `$id`).
Formats the schemas declare (date-time, uuid, uri) are checked too. Prints one line per
problem, `event N: where: what`, and exits 1 when there is any; else prints `N events valid`.
"""

import json
import pathlib
import sys
import uuid
from datetime import datetime
from urllib.parse import urlparse

import jsonschema
from referencing import Registry, Resource

CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

formats = jsonschema.FormatChecker()


@formats.checks("date-time", raises=ValueError)
def date_time(value):
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if "t" not in value.lower() or parsed.tzinfo is None:
        raise ValueError(f"{value!r} is no date-time with a zone")
    return True


@formats.checks("uuid", raises=ValueError)
def is_uuid(value):
    return not isinstance(value, str) or bool(uuid.UUID(value))


@formats.checks("uri", raises=ValueError)
def uri(value):
    if isinstance(value, str) and not urlparse(value).scheme:
        raise ValueError(f"{value!r} has no scheme")
    return True


def main(schema_dir, events_path):
    schemas = {}
    for path in sorted(pathlib.Path(schema_dir).glob("*.json")):
        doc = json.loads(path.read_text())
        schemas[doc["$id"]] = doc
    registry = Registry().with_resources(
        (sid, Resource.from_contents(doc)) for sid, doc in schemas.items()
    )

    def validator(url):
        """The validator of the definition `url` (`<$id>#/$defs/<Name>`) names."""
        base, _, pointer = url.partition("#")
        if base not in schemas:
            return None
        ref = {"$ref": url if pointer else base}
        cls = jsonschema.validators.validator_for(schemas[base])
        return cls(ref, registry=registry, format_checker=formats)

    run_event = validator(CORE + "#/$defs/RunEvent")
    problems = []
    lines = [l for l in pathlib.Path(events_path).read_text().splitlines() if l.strip()]
    for n, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
        except ValueError as e:
            problems.append(f"event {n}: not JSON: {e}")
            continue
        for e in run_event.iter_errors(event):
            where = "/".join(str(p) for p in e.absolute_path) or "(event)"
            problems.append(f"event {n}: {where}: {e.message}")
        facets = [("run", event.get("run", {}).get("facets", {}))]
        facets.append(("job", event.get("job", {}).get("facets", {})))
        for side in ("inputs", "outputs"):
            for i, d in enumerate(event.get(side, [])):
                facets.append((f"{side}/{i}", d.get("facets", {})))
        for where, group in facets:
            for name, facet in group.items():
                url = facet.get("_schemaURL", "")
                v = validator(url)
                if v is None:
                    problems.append(f"event {n}: {where}/facets/{name}: no schema {url!r} here")
                    continue
                for e in v.iter_errors(facet):
                    at = "/".join(str(p) for p in e.absolute_path)
                    problems.append(f"event {n}: {where}/facets/{name}/{at}: {e.message}")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"{len(lines)} events valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
