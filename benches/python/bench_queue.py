"""The application's workload through movie_queue against a pure-Python
QueueManager written as the seed describes (per-queue locks, every change
rewrites that queue's JSON file through a .tmp file and a rename).

A cycle is what the application's threads do per movie: the monitor adds
one (add_to_pending), the downloader takes one (get_next_pending) and
completes it (add_to_completed; every 4th fails instead: add_to_failed),
and the dashboard reads get_statistics(). Each store starts with N movies
already queued (written as the documented queue_pending.json, which both
load). Reported: the median time of a cycle with one thread, and the
throughput of two threads running cycles at once.

Run it with the virtual environment `cargo test` builds (see
docs/PERFORMANCE.md):

    target/tmp/python-venv/bin/python benches/python/bench_queue.py
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import movie_queue


class SeedQueueManager:
    """The seed's QueueManager: three JSON files rewritten on each change."""

    def __init__(self, config_dir):
        self.config_dir = Path(config_dir)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.pending_file = self.config_dir / "queue_pending.json"
        self.failed_file = self.config_dir / "queue_failed.json"
        self.completed_file = self.config_dir / "queue_completed.json"
        self.pending_lock = threading.Lock()
        self.failed_lock = threading.Lock()
        self.completed_lock = threading.Lock()
        self.pending_queue = self._load(self.pending_file)
        self.failed_queue = self._load(self.failed_file)
        self.completed_queue = self._load(self.completed_file)

    @staticmethod
    def _load(path):
        try:
            with open(path) as file:
                return json.load(file)
        except (FileNotFoundError, json.JSONDecodeError):
            return []

    @staticmethod
    def _save(path, queue):
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as file:
            json.dump(queue, file, indent=2)
        os.replace(tmp, path)

    def add_to_pending(self, movie):
        with self.pending_lock:
            if any(m["id"] == movie["id"] for m in self.pending_queue):
                return False
            with self.completed_lock:
                if any(m["id"] == movie["id"] for m in self.completed_queue):
                    return False
            self.pending_queue.append(dict(movie, queued_at=int(time.time()), status="pending"))
            self._save(self.pending_file, self.pending_queue)
            return True

    def get_next_pending(self):
        with self.pending_lock:
            if not self.pending_queue:
                return None
            movie = self.pending_queue.pop(0)
            self._save(self.pending_file, self.pending_queue)
            return movie

    def add_to_failed(self, movie, error, retry_after=None):
        now = time.time()
        with self.failed_lock:
            for entry in self.failed_queue:
                if entry["id"] == movie["id"]:
                    break
            else:
                entry = dict(movie, retry_count=0, failed_at=now)
                self.failed_queue.append(entry)
            entry["retry_count"] = entry.get("retry_count", 0) + 1
            entry.update(last_error=error, retry_after=retry_after or now, status="failed",
                         last_failed_at=int(now))
            self._save(self.failed_file, self.failed_queue)

    def add_to_completed(self, movie):
        with self.completed_lock:
            self.completed_queue.append(dict(movie, completed_at=int(time.time()), status="completed"))
            self._save(self.completed_file, self.completed_queue)
        with self.failed_lock:
            before = len(self.failed_queue)
            self.failed_queue = [m for m in self.failed_queue if m["id"] != movie["id"]]
            if len(self.failed_queue) != before:
                self._save(self.failed_file, self.failed_queue)

    def get_statistics(self, max_retries=5):
        return {
            "pending": len(self.pending_queue),
            "failed": len(self.failed_queue),
            "completed": len(self.completed_queue),
            "permanent_failures": sum(1 for m in self.failed_queue if m.get("retry_count", 0) >= max_retries),
        }

    def close(self):
        pass


def prefill(directory, queued):
    movies = [{"id": f"q{n}", "title": f"Queued {n}", "year": 1990 + n % 30, "slug": f"queued-{n}",
               "imdb_id": f"tt{n:07d}"} for n in range(queued)]
    Path(directory).mkdir(parents=True, exist_ok=True)
    with open(Path(directory) / "queue_pending.json", "w") as file:
        json.dump(movies, file, indent=2)


def cycle(qm, name, n):
    movie_id = f"{name}-{n}"
    qm.add_to_pending({"id": movie_id, "title": f"New {n}", "year": 2024})
    taken = qm.get_next_pending()
    if n % 4 == 0:
        qm.add_to_failed(taken, "Not found on tracker", time.time() + 3600)
    else:
        qm.add_to_completed(taken)
    qm.get_statistics()


def one_thread(qm, cycles):
    times = []
    for n in range(cycles):
        start = time.perf_counter()
        cycle(qm, "solo", n)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def two_threads(qm, cycles):
    def worker(name):
        for n in range(cycles):
            cycle(qm, name, n)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 2 * cycles / (time.perf_counter() - start)


def measure(kind, queued, cycles):
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as directory:
        prefill(directory, queued)
        start = time.perf_counter()
        qm = movie_queue.QueueManager(directory) if kind == "movie_queue" else SeedQueueManager(directory)
        opened = time.perf_counter() - start
        median = one_thread(qm, cycles)
        throughput = two_threads(qm, max(cycles // 2, 1))
        qm.close()
    return opened, median, throughput


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles (a smoke run)")
    args = parser.parse_args()
    plans = [(1_000, 200, 200), (100_000, 200, 10)]
    if args.quick:
        plans = [(1_000, 20, 20), (100_000, 20, 2)]
    print(f"python {sys.version.split()[0]}, movie_queue {movie_queue.__file__}")
    print(f"{'queued':>8} {'store':<12} {'open s':>8} {'cycle ms (median)':>18} {'2 threads cycles/s':>19}")
    for queued, rust_cycles, seed_cycles in plans:
        results = {}
        for kind, cycles in (("movie_queue", rust_cycles), ("seed", seed_cycles)):
            results[kind] = measure(kind, queued, cycles)
            opened, median, throughput = results[kind]
            print(f"{queued:>8} {kind:<12} {opened:>8.3f} {median * 1e3:>18.3f} {throughput:>19.1f}", flush=True)
        ratio = results["seed"][1] / results["movie_queue"][1]
        speedup = results["movie_queue"][2] / results["seed"][2]
        print(f"{queued:>8} ratio: one thread {ratio:.1f}x faster per cycle, two threads {speedup:.1f}x the throughput")


if __name__ == "__main__":
    main()
