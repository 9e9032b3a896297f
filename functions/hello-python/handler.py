"""hello-python: a python function that greets whoever the request names.

Everything at module level runs once, at deploy, before the snapshot;
handle() runs per call in a copy-on-write clone of that snapshot.
"""
import os

GREETING = os.environ.get("GREETING", "hello")


def handle(event, context):
    name = event.decode("utf-8", "replace") or "world"
    print(f"hello-python: call {context['call_id']}, {len(event)} bytes")
    return f"{GREETING}, {name}!\n"
