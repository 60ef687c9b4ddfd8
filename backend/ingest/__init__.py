"""Ingest, read as a pipeline: the subscriber takes messages off MQTT into a bounded queue;
each batch is classified (bytes and topic -> typed message or contract error, pure), planned
(rows and effects, pure) and persisted in one transaction; only then is it acknowledged.

    subscriber.py   paho callbacks, bounded queue, writer thread, ack after commit
    commit.py       Committer: retry while the database is away, split, quarantine the culprit
    stats.py        IngestStats, the counters /health and /metrics read
    classify.py     Incoming, Rules, classify
    registry.py     Registry: the Rules with the provisioned devices read from the database
    plan.py         BatchPlan, plan_batch and the pure steps persisting needs
    dead_letters.py dead-letter rows, written in one place
    replays.py      the replay check's index lookups
    persist.py      persist (one transaction), write_batch (plan + persist), BatchResult
"""

from backend.ingest.classify import Incoming, Rules, classify
from backend.ingest.persist import BatchResult, persist, write_batch
from backend.ingest.plan import BatchPlan, plan_batch
from backend.ingest.registry import Registry
from backend.ingest.stats import IngestStats
from backend.ingest.subscriber import INGEST_CHANNELS, Ingest

__all__ = [
    "INGEST_CHANNELS",
    "BatchPlan",
    "BatchResult",
    "Incoming",
    "Ingest",
    "IngestStats",
    "Registry",
    "Rules",
    "classify",
    "persist",
    "plan_batch",
    "write_batch",
]
