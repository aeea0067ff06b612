"""``python -m imbagan.slots [--status S --slots DIR] -- ARGS``: how runs.launch_cli starts every background job.

It makes three promises before running ``python -m imbagan ARGS`` in this same process:

- a SIGTERM from the moment of launch (runs.launch_cli blocks it across the fork) until the job
  installs its own handler records the job as "stopped" instead of killing it unrecorded;
- with ``--status``/``--slots`` (training workers and evaluations) the job first waits for one of
  ``runs.max_jobs()`` slots, shown in its status.json as "queued" with its place in line;
- a run lock handed down by the launcher ($IMBAGAN_RUN_LOCK_FD) stays open for the worker to adopt.

Nothing heavy is imported before the handler is in place, so the unhandled window is a few milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _stopped_before_start(status: str | None):
    """A SIGTERM handler for the start-up: record "stopped" and exit at once.

    Self-contained (json and os only): it may interrupt an import, so it must not import anything.
    """

    def handler(signum, frame):
        try:
            if status:
                with open(status, "rb") as f:
                    st = json.loads(f.read())
                if isinstance(st, dict) and st.get("state") in ("queued", "running"):
                    st.update(state="stopped", phase="stopped before it started", heartbeat=time.time(),
                              pid=os.getpid())
                    tmp = f"{status}.{os.getpid()}.stop.tmp"
                    try:
                        with open(tmp, "w") as f:
                            f.write(json.dumps(st, indent=1))
                        os.replace(tmp, status)
                    finally:
                        if os.path.exists(tmp):
                            os.unlink(tmp)
            os.write(1, b"stopped before it started\n")
        except BaseException:  # noqa: BLE001 - exiting is what matters
            pass
        os._exit(0)

    return handler


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: python -m imbagan.slots [--status STATUS_JSON --slots DIR] -- ARGS", file=sys.stderr)
        return 2
    cut = argv.index("--")
    opts, args = argv[:cut], argv[cut + 1:]
    status = opts[opts.index("--status") + 1] if "--status" in opts else None
    slots = opts[opts.index("--slots") + 1] if "--slots" in opts else None
    signal.signal(signal.SIGTERM, _stopped_before_start(status))
    signal.signal(signal.SIGINT, _stopped_before_start(status))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # a stop sent during the launch lands here
    if status and slots:
        from pathlib import Path

        from imbagan import runs

        runs.wait_for_slot(Path(status), Path(slots))
    from imbagan.__main__ import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
