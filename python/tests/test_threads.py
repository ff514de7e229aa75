"""Threads as the application runs them: a monitor thread adds movies
while a download thread takes, completes and fails them, with a third
retrying; every movie ends in exactly one place and nothing is lost or
doubled. The calls release the GIL while they wait for the disk, so the
threads' writes share fsyncs."""

import threading
import time

from movie_queue import QueueManager
from conftest import movie

MOVIES = 300


def test_monitor_and_download_threads_share_one_store(store_dir):
    qm = QueueManager(store_dir)
    added = []
    outcomes = {}
    done_adding = threading.Event()
    errors = []

    def monitor():
        try:
            for movie_id in range(MOVIES):
                if qm.add_to_pending(movie(movie_id)):
                    added.append(str(movie_id))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            done_adding.set()

    def all_completed():
        # Not "pending is empty": a failed movie the retry thread is about
        # to move back would then be left with nobody to take it.
        return done_adding.is_set() and qm.get_completed_count() == len(added)

    def download():
        try:
            while True:
                m = qm.get_next_pending()
                if m is None:
                    if all_completed():
                        return
                    time.sleep(0.001)
                    continue
                if int(m["id"]) % 4 == 0 and m.get("retry_count", 0) == 0:
                    qm.add_to_failed(m, "Download failed", time.time() - 1)
                else:
                    qm.add_to_completed(m)
                    outcomes[m["id"]] = "completed"
        except Exception as error:
            errors.append(error)

    def retry():
        try:
            while not all_completed():
                for m in qm.get_movies_ready_for_retry(max_retries=5):
                    qm.move_failed_to_pending(m)
                time.sleep(0.002)
        except Exception as error:
            errors.append(error)

    # Daemons: a thread that hangs fails the test below, not pytest's exit.
    threads = [threading.Thread(target=target, daemon=True) for target in (monitor, download, download, retry)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(added) == MOVIES
    completed = qm.completed_queue
    assert sorted(m["id"] for m in completed) == sorted(added)
    retried = [m for m in completed if int(m["id"]) % 4 == 0]
    assert retried and all(m["status"] == "completed" for m in retried)
    assert qm.get_statistics() == {"pending": 0, "failed": 0, "completed": MOVIES, "permanent_failures": 0,
                                   "in_flight": 0, "removed": 0}
    qm.close()
    with QueueManager(store_dir) as again:
        assert sorted(m["id"] for m in again.completed_queue) == sorted(added)
