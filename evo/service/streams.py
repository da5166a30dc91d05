"""Server-Sent Events over the ``events`` table, shared by every watcher of a run.

One poller per service reads, every ``interval`` seconds, the status and last
event number of each watched run (one query), fetches the new events of the
runs that moved, and wakes their watchers, who read them from a per-run cache.
A hundred watchers of one run cost one query per tick, not a hundred. A
watcher behind the cache (a reconnect with an old ``Last-Event-ID``) catches
up from the database first.

A stream sends every event with ``seq`` > the client's last one, in order, and
ends once the run has ended (stopped, succeeded, failed, cancelled) and its
last event is sent; a run resumed later is watched with a new stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio

from evo.service.db import ENDED, Database, encode_event


class RunChannel:
    """What the poller knows of one watched run, and a cache of its recent events."""

    def __init__(self, cache_size: int) -> None:
        self.cache_size = cache_size
        self.events: list[dict[str, Any]] = []
        #: seq of events[0] when the cache is not empty; the cache holds first_cached .. last_seq
        self.first_cached = 1
        self.last_seq = 0
        self.status: str | None = None
        self.gone = False
        self.subscribers = 0
        self.changed = asyncio.Event()

    def notify(self) -> None:
        """Wake every watcher waiting on this run."""
        self.changed.set()
        self.changed = asyncio.Event()

    def add(self, encoded: list[dict[str, Any]]) -> None:
        """Append fresh events to the cache, dropping the oldest beyond its size."""
        if not encoded:
            return
        if not self.events:
            self.first_cached = encoded[0]["id"]
        self.events.extend(encoded)
        self.last_seq = encoded[-1]["id"]
        overflow = len(self.events) - self.cache_size
        if overflow > 0:
            del self.events[:overflow]
            self.first_cached = self.events[0]["id"]

    def after(self, seq: int) -> list[dict[str, Any]] | None:
        """Cached events after ``seq``; None when the cache does not reach back that far."""
        if seq >= self.last_seq:
            return []
        if not self.events or seq + 1 < self.first_cached:
            return None
        return self.events[seq + 1 - self.first_cached :]


class EventHub:
    """Polls the database for the watched runs and wakes their streams."""

    def __init__(self, db: Database, interval: float = 0.1, cache_size: int = 5000) -> None:
        self.db = db
        self.interval = interval
        self.cache_size = cache_size
        self.channels: dict[str, RunChannel] = {}

    async def run(self) -> None:
        """The poller: runs until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            watched = [run_id for run_id, channel in self.channels.items() if channel.subscribers]
            if watched:
                try:  # noqa: SIM105 - a database hiccup must not end every stream; the next tick retries
                    await self._refresh(watched)
                except Exception:
                    pass

    async def _refresh(self, run_ids: list[str]) -> None:
        positions = await anyio.to_thread.run_sync(self.db.stream_positions, run_ids)
        for run_id in run_ids:
            channel = self.channels.get(run_id)
            if channel is None:
                continue
            if run_id not in positions:
                channel.gone = True
                channel.notify()
                continue
            status, last_seq = positions[run_id]
            moved = status != channel.status
            channel.status = status
            while last_seq > channel.last_seq:
                fresh = await anyio.to_thread.run_sync(self.db.events_after, run_id, channel.last_seq, self.cache_size)
                if not fresh:
                    break
                channel.add([encode_event(ev) for ev in fresh])
                moved = True
            if moved:
                channel.notify()

    async def subscribe(self, run_id: str) -> RunChannel:
        """The run's channel, up to date when this returns."""
        channel = self.channels.get(run_id)
        if channel is None:
            channel = self.channels[run_id] = RunChannel(self.cache_size)
            positions = await anyio.to_thread.run_sync(self.db.stream_positions, [run_id])
            if run_id in positions:
                # History stays in the database: the cache starts now, old events are read on demand.
                channel.status, channel.last_seq = positions[run_id]
                channel.first_cached = channel.last_seq + 1
            else:
                channel.gone = True
        channel.subscribers += 1
        return channel

    def unsubscribe(self, run_id: str, channel: RunChannel) -> None:
        """One watcher fewer; the channel goes when the last one leaves."""
        channel.subscribers -= 1
        if channel.subscribers <= 0 and self.channels.get(run_id) is channel:
            del self.channels[run_id]

    async def stream(self, run_id: str, after_seq: int) -> AsyncIterator[dict[str, Any]]:
        """Events of ``run_id`` after ``after_seq`` as SSE dicts (id, event, data), until the run has ended."""
        channel = await self.subscribe(run_id)
        try:
            last = after_seq
            while not channel.gone:
                batch = channel.after(last)
                if batch is None:
                    batch = [encode_event(ev) for ev in await anyio.to_thread.run_sync(self.db.events_after, run_id, last, 1000)]
                for item in batch:
                    yield item
                    last = item["id"]
                if batch:
                    continue
                if channel.status in ENDED and last >= channel.last_seq:
                    return
                await channel.changed.wait()
        finally:
            self.unsubscribe(run_id, channel)
