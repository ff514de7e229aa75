"""Live counts per queue, kept on another machine from a shipped stream.

`movie-queue ship --to nats://HOST:PORT` publishes every record of a
store's journal to a NATS JetStream stream, one message a record, its
payload the record's line of `movie-queue log --json` (docs/FORMAT.md, "The
event stream"). This program reads that stream from its first message with
an ordered consumer, follows each movie from queue to queue by the events'
rules, and prints the counts whenever they change:

    pip install nats-py
    python3 examples/live_counts.py nats://127.0.0.1:4222 [--stream movie-queue]

With --caught-up it prints the counts once, as one JSON object, when it has
read every message the stream held when it started, and exits.
"""

import argparse
import asyncio
import json
import sys

import nats
from nats.js.api import DeliverPolicy

PLACES = ("pending", "in_flight", "failed", "completed", "removed")


class Counts:
    """Where each movie is, from the events that moved it."""

    def __init__(self):
        self.place = {}
        self.gaps = []

    def apply(self, line):
        kind = line["type"]
        to = self.place
        if kind in ("added", "failed", "completed", "removed"):
            target = {"added": "pending", "failed": "failed", "completed": "completed", "removed": "removed"}[kind]
            to[line["movie"]["id"]] = target
        elif kind == "taken":
            to[line["id"]] = "in_flight"
        elif kind in ("moved_to_pending", "reset", "restored"):
            to[line["id"]] = "pending"
        elif kind == "forgotten":
            to.pop(line["id"], None)
        elif kind == "cleaned_up":
            for movie_id in line["ids"]:
                to.pop(movie_id, None)
        elif kind == "requeued":
            for movie_id in line["ids"]:
                to[movie_id] = "pending"
        elif kind == "marked_removed":
            for movie_id in line["ids"]:
                to[movie_id] = "removed"
        elif kind == "imported":
            for place in ("pending", "failed", "completed", "removed"):
                for entry in line.get(place, []):
                    movie_id = entry.get("id") or entry.get("movie", {}).get("id")
                    to.setdefault(movie_id, place)
        elif kind == "skipped":
            # Records the source's journal lost (damage `repair` set aside): what
            # they did is not in the stream, so the counts may be off from here.
            self.gaps.append((line["from"], line["to"]))
        # A kind this program does not know is skipped, as the contract asks.

    def totals(self):
        totals = {place: 0 for place in PLACES}
        for place in self.place.values():
            totals[place] += 1
        return totals


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="nats://HOST:PORT")
    parser.add_argument("--stream", default="movie-queue")
    parser.add_argument("--caught-up", action="store_true", help="print the counts once caught up, then exit")
    args = parser.parse_args()

    connection = await nats.connect(args.server)
    jetstream = connection.jetstream()
    info = await jetstream.stream_info(args.stream)
    end = info.state.last_seq
    counts = Counts()
    if args.caught_up and end == 0:
        print(json.dumps(counts.totals()))
        return
    subject = info.config.subjects[0]
    subscription = await jetstream.subscribe(
        subject, stream=args.stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    shown = None
    async for message in subscription.messages:
        counts.apply(json.loads(message.data))
        sequence = message.metadata.sequence.stream
        if args.caught_up:
            if sequence >= end:
                break
            continue
        totals = counts.totals()
        if totals != shown:
            shown = totals
            print(" ".join(f"{place} {count}" for place, count in totals.items()), flush=True)
    if args.caught_up:
        print(json.dumps(counts.totals()))
    if counts.gaps:
        print(f"the stream has gaps (records {counts.gaps}): the counts may be off", file=sys.stderr)
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
