"""The independent Avro client of the wire-format tests (tests/it/streaming_avro.rs): fastavro,
with the Confluent framing (magic byte 0, 4-byte big-endian schema id, datum) done by hand here
and schemas fetched from / registered with the registry over plain HTTP.

  avro_peer.py decode REGISTRY_URL    stdin: one hex payload per line; each must be framed,
                                      its schema fetched by id, and its datum equal (as Python
                                      values) to the next record of RECORDS. Prints "ok N".
  avro_peer.py read REGISTRY_URL      stdin: one hex payload per line; prints each datum as
                                      JSON, one a line (keys, small records).
  avro_peer.py encode REGISTRY_URL SUBJECT SCHEMA_FILE
                                      registers the schema under SUBJECT and prints one hex
                                      payload per record of RECORDS.

RECORDS is written here in Python's own types (datetime, Decimal, UUID...), independently of
the JSON forms Updraft uses, so a mismatch in either direction shows.
"""

import io
import json
import struct
import sys
import urllib.request
from datetime import date, datetime, time, timezone
from decimal import Decimal
from uuid import UUID

import fastavro

UTC = timezone.utc
RECORDS = [
    {
        "id": 9007199254740993, "count": 3, "ratio": 0.5, "ok": True, "station": "Clark/Lake",
        "day": date(2026, 1, 2), "t_ms": time(3, 4, 5, 123000), "t_us": time(3, 4, 5, 123456),
        "ts_ms": datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        "ts_us": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "fare": Decimal("2.50"), "trip": UUID("67e55044-10b1-426f-9247-bb680e5fe0c8"),
        "line": "blue", "delay": 4, "note": None, "tags": ["a", "b"], "counts": {"x": 1},
        "raw": b"\x00\x01\x02", "where": {"lat": 41.88, "lon": -87.63}, "from": None,
    },
    {
        "id": -1, "count": -2147483648, "ratio": -1.25, "ok": False, "station": "Ærøskøbing ✓",
        "day": date(1969, 12, 31), "t_ms": time(23, 59, 59, 999000), "t_us": time(0, 0, 0, 1),
        "ts_ms": datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        "ts_us": datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=UTC),
        "fare": Decimal("-1234567.89"), "trip": UUID("00000000-0000-0000-0000-000000000001"),
        "line": "green", "delay": None, "note": "late", "tags": [], "counts": {},
        "raw": b"", "where": {"lat": 0.0, "lon": 0.0}, "from": {"lat": 1.5, "lon": -2.5},
    },
]


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.load(resp)


def datums(registry):
    """Each stdin line's datum, unframed by hand, read with the schema its id names."""
    schemas = {}
    for n, line in enumerate(l.strip() for l in sys.stdin if l.strip()):
        payload = bytes.fromhex(line)
        assert payload[0] == 0, f"message {n}: magic byte {payload[0]}, not 0"
        (schema_id,) = struct.unpack(">I", payload[1:5])
        if schema_id not in schemas:
            text = http("GET", f"{registry}/schemas/ids/{schema_id}")["schema"]
            schemas[schema_id] = fastavro.parse_schema(json.loads(text))
        yield fastavro.schemaless_reader(io.BytesIO(payload[5:]), schemas[schema_id])


def read(registry):
    for datum in datums(registry):
        print(json.dumps(datum, default=str))


def decode(registry):
    n = 0
    for got in datums(registry):
        want = RECORDS[n % len(RECORDS)]
        if got != want:
            diff = {k: (got.get(k), want.get(k)) for k in want if got.get(k) != want.get(k)}
            sys.exit(f"message {n} decodes to other values: {diff!r}")
        n += 1
    print(f"ok {n}")


def encode(registry, subject, schema_file):
    with open(schema_file) as f:
        text = f.read()
    schema_id = http("POST", f"{registry}/subjects/{subject}/versions", {"schema": text})["id"]
    schema = fastavro.parse_schema(json.loads(text))
    for record in RECORDS:
        out = io.BytesIO()
        out.write(b"\x00" + struct.pack(">I", schema_id))
        fastavro.schemaless_writer(out, schema, record)
        print(out.getvalue().hex())


if __name__ == "__main__":
    if sys.argv[1] == "decode":
        decode(sys.argv[2].rstrip("/"))
    elif sys.argv[1] == "read":
        read(sys.argv[2].rstrip("/"))
    else:
        encode(sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4])
