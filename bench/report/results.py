"""The shape of results.json (what one run measured), as far as the report reads it."""

from __future__ import annotations

from typing import TypedDict

# Every benchmark's entry is either its measurements or {"error": "..."} (it failed or was not
# run); so every key is optional here, and the report checks for what it needs.

Cores = dict[str, float]  # process name → CPU cores busy on average over the measurement


class Machine(TypedDict, total=False):
    date: str
    nproc: int
    memory_gib: float
    cpu: str
    kernel: str
    python: str
    mosquitto: str
    sqlite: str
    packages: dict[str, str]
    git: str
    nofile: int


class Load(TypedDict, total=False):
    system_cores: float
    bench_cores: float
    other_cores: float


class Consumer(TypedDict, total=False):
    """One consumer draining its queue (bench/drain.py)."""

    consumer: str
    count: int
    rate: float
    wall_s: float
    cpu_cores: Cores
    # the backend only
    stored: int
    duplicates: int
    dead_lettered: int
    rate_incl_startup: float


class Queueing(TypedDict, total=False):
    n: int
    shipped: float
    prefill_config: float


class Profile(TypedDict, total=False):
    """A py-spy profile of the backend: its text and the share of samples per function."""

    n: int
    rate_under_profiler: float
    devices: int
    rate: float
    seconds: float
    stored_rate: float
    text: str | None
    shares: dict[str, float]


class Drain(TypedDict, total=False):
    error: str
    n: int
    payload_bytes_mean: float
    devices: int
    results: dict[str, Consumer]  # the headline config's consumers
    by_config: dict[str, dict[str, Consumer]]
    queueing: Queueing
    profile: Profile


class Run(TypedDict, total=False):
    """One fixed-rate run of the live benchmark: against the backend, or a bare subscriber."""

    rate: float
    seconds: float
    offered_rate: float
    stored_rate: float
    received_rate: float  # bare subscriber
    lost: int
    backlog_at_stop: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    sustained: bool
    cpu_cores: Cores


class Sweep(TypedDict, total=False):
    """The live benchmark on one broker config: probes, confirmations, latency, baselines."""

    overrides: dict[str, str]
    devices: int
    steps: list[Run]
    confirms: list[Run]
    confirm: Run
    sustainable_rate: int
    latency: Run
    baseline_half: Run
    baseline_full: Run


Live = TypedDict(
    "Live",
    {"error": str, "shipped": Sweep, "autosave-1s": Sweep, "profile": Profile},
    total=False,
)


class SimRow(TypedDict, total=False):
    """One simulator size (bench/simulator.py)."""

    devices: int
    connected_at_end: int
    broker_clients_connected: int
    connect_s: float
    msgs_per_s: float
    cpu_cores: float
    rss_delta_mb: float
    kb_per_device: float
    broker_cpu_cores: float
    hold_s: float


class Allocations(TypedDict, total=False):
    devices: int
    text: str | None


class Simulator(TypedDict, total=False):
    error: str
    busy_speed: float
    hold_s: float
    fleet: list[SimRow]
    bare: list[SimRow]
    realtime: list[SimRow]
    memory: Allocations


class Delivery(TypedDict, total=False):
    """One publisher → one subscriber at a rate, or the burst (bench/embedded.py)."""

    rate: float
    sent: int
    received_rate: float
    lost: int
    p50_ms: float
    p99_ms: float
    sustained: bool
    cpu_cores: Cores


class Broker(TypedDict, total=False):
    steps: list[Delivery]
    burst: Delivery
    sustainable_rate: int


class Embedded(TypedDict, total=False):
    error: str
    seconds: float
    brokers: dict[str, Broker]


class Query(TypedDict, total=False):
    """One API query's latencies (bench/api.py)."""

    path: str
    params: dict[str, object]
    requests: int
    rows_per_request: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    page1_p95_ms: float
    deeper_p95_ms: float
    ratio_to_health: float


class ApiLoad(TypedDict, total=False):
    days: float
    rows_per_s: float
    load_s: float
    stat_rows: int


class Api(TypedDict, total=False):
    error: str
    rows: int
    devices: int
    rounds: int
    rare_type: str
    load: ApiLoad
    results: dict[str, Query]
    plans: dict[str, str]
    profiles: dict[str, str | None]


class Results(TypedDict, total=False):
    """The whole file."""

    machine: Machine
    quick: bool
    command: str
    timings: dict[str, float]
    load: dict[str, Load]
    drain: Drain
    live: Live
    simulator: Simulator
    embedded: Embedded
    api: Api
