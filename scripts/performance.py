#!/usr/bin/env python3
"""The figures of docs/PERFORMANCE.md, measured and written by one command.

`scripts/performance` (the driver) runs every bench, the memory example
and this file's `cli` measurement, each writing `FIGURE ...` and
`RATIO ...` lines to a log under target/perf/; `tables` then reads those
logs and rewrites the block of docs/PERFORMANCE.md between the markers
`<!-- generated:begin -->` and `<!-- generated:end -->`, naming the commit,
the time and the load the figures come from.

    python3 scripts/performance.py cli STORE_DIR TOOL MEMORY_EXAMPLE > target/perf/cli.log
    python3 scripts/performance.py held STORE_DIR TOOL HOLD_EXAMPLE > target/perf/held.log
    python3 scripts/performance.py serve STORE_DIR TOOL > target/perf/serve.log
    python3 scripts/performance.py tables target/perf docs/PERFORMANCE.md MACHINE
"""

import os
import re
import statistics
import subprocess
import sys
import time

RUNS = 5
LINE = re.compile(r"^(FIGURE|RATIO) (.+): ((?:-?[0-9][0-9.]*|not measured).*)$")


def measure(argv, runs=RUNS, env=None):
    """Wall seconds and peak RSS (bytes) of `argv`, `runs` times: medians."""
    walls, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) not in (0, 3):
            raise SystemExit(f"{' '.join(argv)} exited with {os.waitstatus_to_exitcode(status)}")
        peaks.append(usage.ru_maxrss * 1024)
    return statistics.median(walls), statistics.median(peaks)


def figure(name, value, unit):
    print(f"FIGURE {name}: {value:.3f} {unit}", flush=True)


def ratio(name, value, target, passes):
    print(f"RATIO {name}: {value:.3f} (target {target}) {'PASS' if passes else 'MISS'}", flush=True)


def cli(store, tool, memory_example):
    """The tool at the store's size (built by examples/lean_store.rs): each
    command's median wall time and peak RSS, and the targets of issue 21 as
    ratios to `stats` and to Python's json.load, from this same run."""
    pending = os.path.join(store, "queue_pending.json")
    journal = os.path.join(store, "journal")
    files = sum(
        os.path.getsize(os.path.join(store, name))
        for name in ("queue_pending.json", "queue_failed.json", "queue_completed.json", "queue_removed.json")
    )
    journal_bytes = sum(os.path.getsize(os.path.join(journal, name)) for name in os.listdir(journal))
    figure("cli store: queue_pending.json", os.path.getsize(pending) / 1e6, "MB")
    figure("cli store: journal", journal_bytes / 1e6, "MB")

    # The library's whole open from the snapshot, in a fresh process,
    # alternating with Python's json.load of the same queue_pending.json
    # (in a child too: this process stays small, so the children it
    # starts, whose peak RSS counts from the copy of it they start as, do
    # too). A first open, not timed, warms the page cache and writes what
    # the application's first open writes (the journal's id filters).
    timing = "import json, sys, time; t = time.perf_counter(); json.load(open(sys.argv[1], 'rb')); print(time.perf_counter() - t)"
    open_store = [memory_example, "--open", store, str(os.path.getsize(pending))]
    subprocess.run(open_store, check=True, capture_output=True)
    loads, opens, open_peaks = [], [], []
    for _ in range(3):
        loads.append(float(subprocess.run([sys.executable, "-c", timing, pending], check=True, capture_output=True, text=True).stdout))
        output = subprocess.run(open_store, check=True, capture_output=True, text=True).stdout
        opens.append(float(re.search(r"open took ([0-9.]+) ms", output).group(1)) / 1e3)
        open_peaks.append(int(re.search(r"after open: .*peak (\d+) KiB", output).group(1)) * 1024)
    json_load = statistics.median(loads)
    library_open, library_peak = statistics.median(opens), statistics.median(open_peaks)
    figure("cli baseline: Python json.load of queue_pending.json", json_load, "s")
    figure("cli library open (whole, fresh process)", library_open, "s")

    read = {}
    for name, arguments in [
        ("stats", ["stats"]),
        ("show", ["show", "777777"]),
        ("log --id", ["log", "--id", "777777"]),
        ("list pending --limit 50", ["list", "pending", "--limit", "50"]),
        ("list pending", ["list", "pending"]),
        ("verify", ["verify"]),
    ]:
        wall, peak = measure([tool, "--dir", store, *arguments])
        read[name] = (wall, peak)
        figure(f"cli {name}: wall", wall, "s")
        figure(f"cli {name}: peak RSS", peak / 1e6, "MB")

    # Mutations on a copy: the first `next` after a fresh snapshot, then
    # more (the close writes no snapshot while the policy is not due).
    copy = store.rstrip("/") + "-mutations"
    subprocess.run(["rm", "-rf", copy], check=True)
    subprocess.run(["cp", "-r", store, copy], check=True)
    subprocess.run([tool, "--dir", copy, "snapshot"], check=True, stdout=subprocess.DEVNULL)
    next_wall, peak = measure([tool, "--dir", copy, "next"])
    figure("cli next: wall", next_wall, "s")
    figure("cli next: peak RSS", peak / 1e6, "MB")
    completes = []
    for number in range(500_001, 500_001 + RUNS):
        completes.append(measure([tool, "--dir", copy, "complete", str(number)], runs=1))
    complete_wall = statistics.median(wall for wall, _ in completes)
    complete_peak = statistics.median(peak for _, peak in completes)
    figure("cli complete: wall", complete_wall, "s")
    figure("cli complete: peak RSS", complete_peak / 1e6, "MB")
    # A snapshot at close (what a mutation pays when the policy is due).
    wall, peak = measure([tool, "--dir", copy, "snapshot"], runs=3)
    figure("cli snapshot: wall", wall, "s")
    figure("cli snapshot: peak RSS", peak / 1e6, "MB")
    subprocess.run(["rm", "-rf", copy], check=True)

    stats_wall, stats_peak = read["stats"]
    ratio("cli stats: wall", stats_wall, "<= 0.3 s", stats_wall <= 0.3)
    ratio("cli stats: peak RSS, MB", stats_peak / 1e6, "<= 100 MB", stats_peak <= 100e6)
    for name in ("show", "log --id", "list pending --limit 50"):
        ratio(f"cli {name}: wall", read[name][0], "<= 0.3 s", read[name][0] <= 0.3)
    listed = read["list pending"][1] / stats_peak
    ratio("cli list pending: peak RSS / stats' peak", listed, "<= 1.5, not growing with the queue", listed <= 1.5)
    ratio("cli next: wall / stats' wall", next_wall / stats_wall, "<= 1.5", next_wall <= 1.5 * stats_wall)
    verified = read["verify"][1] / journal_bytes
    ratio("cli verify: peak RSS / the journal's bytes", verified, "<= 1", verified <= 1)
    ratio("cli complete: wall / stats' wall", complete_wall / stats_wall, "<= 1.5", complete_wall <= 1.5 * stats_wall)
    ratio("cli library open: time / json.load's", library_open / json_load, "<= 1.0", library_open <= json_load)
    ratio("cli library open: peak RSS / the documented files' bytes", library_peak / files, "<= 2", library_peak <= 2 * files)


def held(store, tool, hold_example):
    """The tool beside a process holding the store (examples/hold.rs, the
    application's part): `stats`, `show` and `reset` through its control
    socket against the same commands on the store when nobody holds it,
    and the holder's own throughput while an operator starts 100 commands
    a second against its throughput alone (issue 22), from this same run."""
    copy = store.rstrip("/") + "-held"
    subprocess.run(["rm", "-rf", copy], check=True)
    subprocess.run(["cp", "-r", store, copy], check=True)
    commands = [("stats", lambda n: ["stats"]), ("show", lambda n: ["show", "777777"]),
                ("reset", lambda n: ["reset", str(3 * n)])]
    cold, warm = {}, {}
    # Failed movies are 0, 3, 6, ... (examples/lean_store.rs): each reset takes a new one.
    serial = iter(range(1, 600))
    for name, arguments in commands:
        runs = [measure([tool, "--dir", copy, *arguments(next(serial))], runs=1) for _ in range(RUNS)]
        cold[name] = statistics.median(wall for wall, _ in runs)
    holder = subprocess.Popen([hold_example, copy], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    for name, arguments in commands:
        runs = [measure([tool, "--dir", copy, *arguments(next(serial))], runs=1) for _ in range(RUNS * 4)]
        warm[name] = statistics.median(wall for wall, _ in runs)
    holder.stdin.close()
    holder.wait()
    for name, _ in commands:
        figure(f"held {name}: wall, the store free", cold[name], "s")
        figure(f"held {name}: wall, through the holder", warm[name], "s")
    for name, _ in commands:
        ratio(f"held {name}: wall through the holder", warm[name], "<= 0.05 s", warm[name] <= 0.05)
        ratio(f"held {name}: through the holder / the store free", warm[name] / cold[name], "<= 0.02",
              warm[name] <= 0.02 * cold[name])

    # The holder's throughput: five seconds alone and five beside an
    # operator starting 100 commands a second, three times, alternating;
    # the holder's running count (`ops N`, every second) is read on a
    # thread, stamped as it comes.
    import threading
    worker = subprocess.Popen([hold_example, copy, "--work"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "ready"
    lines = []
    reader = threading.Thread(target=lambda: [lines.append((time.perf_counter(), int(line.split()[1])))
                                              for line in worker.stdout], daemon=True)
    reader.start()

    def rate(start, end):
        # Operations a second between the first and last counts within [start + 1, end].
        counts = [(stamp, total) for stamp, total in list(lines) if start + 1 <= stamp <= end]
        (first, before), (last, after) = counts[0], counts[-1]
        return (after - before) / (last - first)

    mixes = {
        "stats, reset": lambda n: ["stats"] if n % 2 else ["reset", str(3 * (n % 600))],
        "stats, show, reset": lambda n: [["stats"], ["show", str(3 * (n % 600))], ["reset", str(3 * (n % 600))]][n % 3],
    }
    time.sleep(2)  # warming up
    for mix, command in mixes.items():
        alone, beside, started_commands = [], [], 0
        for _ in range(3):
            start = time.perf_counter()
            time.sleep(5)
            alone.append(rate(start, time.perf_counter()))
            start, running, n = time.perf_counter(), [], 0
            while time.perf_counter() < start + 5:
                n += 1
                running.append(subprocess.Popen([tool, "--dir", copy, *command(n)], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
                running = [child for child in running if child.poll() is None]
                time.sleep(max(0.0, start + n / 100 - time.perf_counter()))
            beside.append(rate(start, time.perf_counter()))
            started_commands += n
            for child in running:
                child.wait()
        figure(f"held operator ({mix}): commands started a second", started_commands / 15, "commands/s")
        figure(f"held holder: operations a second, alone (runs beside {mix})", statistics.median(alone), "ops/s")
        figure(f"held holder: operations a second, beside 100 commands a second ({mix})", statistics.median(beside), "ops/s")
        kept = statistics.median(beside) / statistics.median(alone)
        ratio(f"held holder: throughput beside an operator ({mix}) / alone", kept, ">= 0.9", kept >= 0.9)
    worker.stdin.close()
    worker.wait()
    subprocess.run(["rm", "-rf", copy], check=True)


def http_get(port, path):
    """The status and body of `GET path` on the dashboard at `port` (loopback)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def start_serve(tool, store):
    """`movie-queue serve` on a free port: the process, its port, and the
    seconds from its start to its first answer."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [tool, "--dir", store, "serve", "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = child.stdout.readline()
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))
    while True:
        try:
            if http_get(port, "/api/stats")[0] == 200:
                break
        except OSError:
            time.sleep(0.01)
    return child, port, time.perf_counter() - start


def status(port):
    import json

    return json.loads(http_get(port, "/api/status")[1])


def rss(pid, field):
    """VmRSS or VmHWM of `pid`, bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def serve(store, tool):
    """The dashboard at the store's size (issue 24): how soon `serve`
    answers and how long it reads on, its memory against the documented
    files, a title search and three pages; then the follower's rate on a
    scratch store the server is stopped beside while 100,000 records are
    written (SIGSTOP), timed from SIGCONT until it has them all."""
    import shutil
    import signal
    import tempfile

    files = sum(
        os.path.getsize(os.path.join(store, name))
        for name in ("queue_pending.json", "queue_failed.json", "queue_completed.json", "queue_removed.json")
    )
    answers, resident, peaks = [], [], []
    for _ in range(3):
        child, port, answered = start_serve(tool, store)
        answers.append(answered)
        while status(port)["loading"]:
            time.sleep(0.02)
        time.sleep(1)
        resident.append(rss(child.pid, "VmRSS"))
        peaks.append(rss(child.pid, "VmHWM"))
        child.terminate()
        child.wait()
    child, port, _ = start_serve(tool, store)
    started = time.perf_counter()
    while status(port)["loading"]:
        time.sleep(0.02)
    figure("serve 1M: reading the whole journal after the first answer", time.perf_counter() - started, "s")
    figure("serve 1M: first answer after start", statistics.median(answers), "s")
    ratio("serve 1M: first answer / 2 s", statistics.median(answers) / 2.0, "<= 1", statistics.median(answers) <= 2.0)
    figure("serve 1M: resident after reading", statistics.median(resident) / 1e6, "MB")
    figure("serve 1M: peak resident", statistics.median(peaks) / 1e6, "MB")
    figure("serve 1M: documented files", files / 1e6, "MB")
    share = statistics.median(resident) / files
    ratio("serve 1M: resident / documented files", share, "<= 2", share <= 2.0)
    for name, path in (
        ("title search (11 matches)", "/api/queues?place=pending&q=number%2012345"),
        ("title search (1,110 matches)", "/api/queues?place=pending&q=number%20999"),
        ("overview", "/"),
        ("pending, page 10,000", "/queues?place=pending&page=10000"),
        ("time travel to record 500,000", "/travel?seq=500000"),
    ):
        times = []
        for _ in range(20):
            begin = time.perf_counter()
            http_get(port, path)
            times.append(time.perf_counter() - begin)
        median = statistics.median(times)
        figure(f"serve 1M: {name}", median * 1e3, "ms (median of 20)")
        if name.startswith("title search"):
            ratio(f"serve 1M: {name} / 50 ms", median / 0.05, "<= 1", median <= 0.05)
    child.terminate()
    child.wait()

    scratch = tempfile.mkdtemp(prefix="mq-follow-")
    try:
        small = os.path.join(scratch, "store")
        subprocess.run([tool, "--dir", small, "add", "--id", "0", "--title", "first", "--year", "2020"],
                       check=True, stdout=subprocess.DEVNULL)
        child, port, _ = start_serve(tool, small)
        lines = "".join(f'{{"id":"f{index}","title":"Followed {index}"}}\n' for index in range(100_000))
        def follow_rate(round_):
            before = status(port)["last_seq"]
            child.send_signal(signal.SIGSTOP)
            subprocess.run([tool, "--dir", small, "add", "--json", "-"],
                           input=lines.replace('"f', f'"{round_}-f'), text=True, check=True,
                           stdout=subprocess.DEVNULL)
            begin = time.perf_counter()
            child.send_signal(signal.SIGCONT)
            while status(port)["last_seq"] < before + 100_000:
                time.sleep(0.005)
            return 100_000 / (time.perf_counter() - begin)

        rates = [follow_rate(f"r{round_}") for round_ in range(3)]
        # The same with a page open: a reader of the live feed in a thread.
        import socket
        import threading

        feed = socket.create_connection(("127.0.0.1", port))
        feed.sendall(f"GET /api/live HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        threading.Thread(target=lambda: [None for _ in iter(lambda: feed.recv(1 << 16), b"")], daemon=True).start()
        watched = [follow_rate(f"w{round_}") for round_ in range(3)]
        feed.close()
        child.terminate()
        child.wait()
        for label, values in (("no page open", rates), ("a page open on the live feed", watched)):
            rate = statistics.median(values)
            figure(f"serve follower, {label}: records applied a second (100,000 written while it was stopped)", rate, "records/s")
            ratio(f"serve follower, {label}: rate / 100,000 a second", rate / 100_000, ">= 1", rate >= 100_000)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def tables(logs, document, machine):
    """Rewrites the generated block of `document` from the logs in `logs`."""
    sections, runs = [], []
    for name in sorted(os.listdir(logs)):
        if not name.endswith(".log"):
            continue
        figures, ratios = [], []
        with open(os.path.join(logs, name), encoding="utf-8", errors="replace") as log:
            for line in log:
                if line.startswith("# "):
                    runs.append(line[2:].strip())
                    continue
                found = LINE.match(line.strip())
                if found is None:
                    continue
                kind, what, value = found.groups()
                (figures if kind == "FIGURE" else ratios).append((what, value))
        if figures or ratios:
            sections.append((name[: -len(".log")], figures, ratios))
    lines = [
        "<!-- generated:begin -->",
        f"*Generated by `scripts/performance` on {machine}. Each line is a source's own "
        "`FIGURE`/`RATIO` output; each ratio is of figures measured in the same run. The runs:*",
        "",
    ]
    lines += [f"* {run}" for run in runs]
    lines += [
        "",
        "| source | ratio | value | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for source, _, ratios in sections:
        for what, value in ratios:
            parsed = re.match(r"^([-0-9.]+) \(target (.*)\) (PASS|MISS)$", value)
            if parsed is None:
                lines.append(f"| {source} | {what} | {value} | | |")
            else:
                number, target, verdict = parsed.groups()
                shown = "pass" if verdict == "PASS" else "**miss**"
                lines.append(f"| {source} | {what} | {float(number):,.3f} | {target} | {shown} |")
    lines += ["", "| source | figure | value |", "|---|---|---|"]
    for source, figures, _ in sections:
        for what, value in figures:
            lines.append(f"| {source} | {what} | {value} |")
    lines.append("<!-- generated:end -->")
    with open(document, encoding="utf-8") as file:
        text = file.read()
    begin, end = text.find("<!-- generated:begin -->"), text.find("<!-- generated:end -->")
    if begin < 0 or end < begin:
        raise SystemExit(f"{document} has no generated block (<!-- generated:begin --> ... <!-- generated:end -->)")
    text = text[:begin] + "\n".join(lines) + text[end + len("<!-- generated:end -->"):]
    with open(document, "w", encoding="utf-8") as file:
        file.write(text)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "cli":
        cli(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "held":
        held(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "tables":
        tables(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
