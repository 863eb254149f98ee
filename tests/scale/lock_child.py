"""A process contending for the scheduler-leader lock, for test_leader.

Usage: python lock_child.py DB REPORT_FILE

Tries `store.leader_lock().acquire()` every 20 ms and appends to REPORT_FILE one line per change
of outcome: `<True|False> <unix time>`. Once it holds the lock it keeps it (and keeps checking
it, as a scheduler does) until killed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from stepline.store import open_store


def main(db: str, report: Path) -> None:
    store = open_store(db)
    lock = store.leader_lock()
    last: bool | None = None
    pause = threading.Event()
    while True:
        held = lock.acquire()
        if held != last:
            with report.open("a") as out:
                out.write(f"{held} {time.time():.6f}\n")
            last = held
        pause.wait(0.02)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
