"""A stand-in watcher process for the kill tests: ``command_watcher.py SPEC_JSON``.

Runs the command executor's rollback with the given spec for deployment ``shop``
and prints the result; the tests SIGKILL it while the command runs.
"""

from __future__ import annotations

import asyncio
import json
import sys

from rollguard.executors.command import CommandExecutor
from rollguard.policy.model import CommandExecutorSpec


async def main(spec: str) -> None:
    executor = CommandExecutor(CommandExecutorSpec.model_validate_json(spec), deployment="shop")
    result = await executor.rollback()
    print(json.dumps({"ok": result.ok, "detail": result.detail}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
