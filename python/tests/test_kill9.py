"""A kill -9 of a Python process in the middle of work loses nothing it
reported done. The child adds, takes, completes and fails movies in a loop
and prints one acknowledgment line after each call returns (flushed); the
parent kills it with SIGKILL after a while, reopens the store and checks
the oracle: every movie whose add was acknowledged is known, one whose
completion was acknowledged is completed, one whose failure was
acknowledged is failed or completed (never lost), a movie the child had
taken and not reported is back in pending, and nothing the child never
tried to add appears."""

import os
import signal
import subprocess
import sys
import time

from movie_queue import QueueManager

CHILD = r"""
import sys, time
from movie_queue import QueueManager
qm = QueueManager(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    movie_id = str(n)
    print("try", movie_id, flush=True)
    if qm.add_to_pending({"id": movie_id, "title": "Movie " + movie_id, "year": 2020}):
        print("added", movie_id, flush=True)
    if n % 2 == 0:
        m = qm.get_next_pending()
        if m is not None:
            print("taken", m["id"], flush=True)
            if int(m["id"]) % 3 == 0:
                qm.add_to_failed(m, "boom", time.time() + 3600)
                print("failed", m["id"], flush=True)
            elif int(m["id"]) % 5 != 1:
                qm.add_to_completed(m)
                print("completed", m["id"], flush=True)
    n += 1
"""


def test_kill_9_in_the_middle_of_work_loses_no_acknowledged_operation(tmp_path):
    store = tmp_path / "store"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store)], stdout=subprocess.PIPE, text=True)
    lines = []
    assert child.stdout.readline().strip() == "ready"
    deadline = time.time() + 1.5
    while time.time() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line.split())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    lines.extend(line.split() for line in child.stdout.read().splitlines())
    child.stdout.close()
    acked = {}
    tried = set()
    for words in lines:
        if len(words) != 2:
            continue  # a line torn by the kill
        kind, movie_id = words
        if kind == "try":
            tried.add(movie_id)
        else:
            acked.setdefault(movie_id, []).append(kind)
    assert len(acked) > 20, "the child did some work"

    with QueueManager(store) as qm:
        places = {}
        for name, queue in (("pending", qm.pending_queue), ("failed", qm.failed_queue),
                            ("completed", qm.completed_queue)):
            for entry in queue:
                assert entry["id"] not in places, "a movie in one place only"
                places[entry["id"]] = name
        assert qm.get_statistics()["in_flight"] == 0, "taken movies went back to pending"
        assert set(places) <= tried, "nothing the child never tried appears"
        for movie_id, kinds in acked.items():
            last = kinds[-1]
            assert movie_id in places, f"{movie_id}: acknowledged {kinds}, then lost"
            if last == "completed":
                assert places[movie_id] == "completed", (movie_id, kinds)
            elif last == "failed":
                assert places[movie_id] == "failed", (movie_id, kinds)
            elif last == "taken":
                assert places[movie_id] in ("pending", "failed", "completed"), (movie_id, kinds)
