"""test/python: the python runtime's fixture for the guest test
(tests/integration/runtime_itest.c): one behaviour per request body.

  "raise"   raises ValueError (the call fails: 502, error = last traceback line)
  "types"   a dict (JSON)
  "env"     $UF_TEST_VAR
  "count"   calls served by this process (module state)
  "import"  imports a module at call time (not warmed): its name and a result
  "random"  random.random() (reseeded after each Fixup: differs per clone)
  else      b"python:" + the body, with a line on stdout
"""
import os
import random

CALLS = 0


def handle(event, context):
    global CALLS
    CALLS += 1
    if event == b"raise":
        raise ValueError("raised on purpose in " + context["call_id"])
    if event == b"types":
        return {"list": [1, 2.5, "three"], "none": None, "call_id": context["call_id"]}
    if event == b"env":
        return os.environ.get("UF_TEST_VAR", "(unset)")
    if event == b"count":
        return CALLS
    if event == b"random":
        return repr(random.random())
    if event == b"import":
        import statistics
        return f"statistics {statistics.median([3, 1, 2])}"
    print(f"test-python: call {CALLS}")
    return b"python:" + event
