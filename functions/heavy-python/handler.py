"""heavy-python: imports a good part of the standard library at import time
and builds some state, to show what snapshotting the init saves: all of
this runs once, before the snapshot, and every clone starts with it done.
The answer (JSON) says how long the imports took at deploy and how many
modules are loaded.
"""
import time

_T0 = time.perf_counter()

import collections
import csv
import datetime
import decimal
import email.message
import email.parser
import email.utils
import fractions
import gzip
import hashlib
import http.client
import io
import json
import logging
import statistics
import string
import sys
import textwrap
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

try:
    import sqlite3
    _DB = sqlite3.connect(":memory:", check_same_thread=False)
    _DB.execute("create table kv (k text primary key, v text)")
    _DB.executemany("insert into kv values (?, ?)", [(f"k{i}", f"v{i}") for i in range(100)])
except ImportError:          # not in this guest's stdlib
    _DB = None

_PRIMES = [n for n in range(2, 5000) if all(n % d for d in range(2, int(n ** 0.5) + 1))]
_IMPORT_SECONDS = time.perf_counter() - _T0


def handle(event, context):
    doc = ET.fromstring(event or b"<req><n>7</n></req>")
    n = int(doc.findtext("n", "7"))
    msg = email.message.EmailMessage()
    msg["Subject"] = f"prime #{n}"
    row = _DB.execute("select v from kv where k = ?", (f"k{n % 100}",)).fetchone() if _DB else None
    return {
        "prime": _PRIMES[n % len(_PRIMES)],
        "decimal": str(decimal.Decimal("1.1") + decimal.Decimal("2.2")),
        "subject": msg["Subject"],
        "sqlite": row[0] if row else None,
        "modules": len(sys.modules),
        "import_seconds": round(_IMPORT_SECONDS, 4),
    }
