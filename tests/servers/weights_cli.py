"""A tiny deploy tool for command-executor tests: keeps a canary's weight in a JSON file.

    python weights_cli.py STATE_FILE set PERCENT | rollback | isolate | scale FACTOR | status

Each call also appends the ROLLGUARD_* environment it saw to ``STATE_FILE.log``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    state_file, verb, *rest = argv
    path = Path(state_file)
    state = (
        json.loads(path.read_text())
        if path.exists()
        else {"canary_weight": 20, "canary_state": "serving"}
    )
    seen = {key: value for key, value in os.environ.items() if key.startswith("ROLLGUARD_")}
    with Path(f"{state_file}.log").open("a") as log:
        log.write(json.dumps({"argv": argv[1:], "env": seen}) + "\n")
    if verb == "set":
        percent = int(rest[0])
        state = {"canary_weight": percent, "canary_state": "serving" if percent else "drained"}
    elif verb == "rollback":
        state = {"canary_weight": 0, "canary_state": "retired"}
    elif verb == "isolate":
        state = {"canary_weight": 0, "canary_state": "isolated"}
    elif verb == "scale":
        state["scaled_by"] = float(rest[0])
    elif verb == "status":
        print(json.dumps(state))
        return 0
    else:
        print(f"unknown verb {verb}", file=sys.stderr)
        return 2
    path.write_text(json.dumps(state))
    print(f"{verb} done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
