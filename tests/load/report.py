"""Per-phase figures from the locustfile's event lines: throughput, p50/p95/p99, errors by kind."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.load.cluster import Phase


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    # The last line may be cut short if locust was stopped while writing it.
    return [json.loads(line) for line in lines if line.endswith("}")]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class PhaseStats:
    phase: str
    seconds: float
    logins_ok: int
    logins_per_s: float
    #: Successful attempts' durations (a whole login: every request of the flow), in ms.
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    requests_per_s: float
    #: Failed attempts by kind (http_503, connection, ...); each was retried from the start.
    attempt_errors: dict[str, int] = field(default_factory=dict)
    #: Logins still failing after every retry, by the last attempt's kind.
    logins_failed: dict[str, int] = field(default_factory=dict)
    #: Responses by status, over every request of the phase.
    statuses: dict[str, int] = field(default_factory=dict)
    by_flow: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def phase_stats(events: list[dict[str, Any]], phase: Phase) -> PhaseStats:
    def inside(event: dict[str, Any]) -> bool:
        return phase.started <= event["t"] < phase.ended

    attempts = [e for e in events if e["k"] == "attempt" and inside(e)]
    logins = [e for e in events if e["k"] == "login" and inside(e)]
    requests = [e for e in events if e["k"] == "req" and inside(e)]
    durations = [(e["t"] - e["t0"]) * 1000 for e in attempts if e["ok"]]
    seconds = max(phase.ended - phase.started, 1e-9)
    ok = [e for e in logins if e["ok"]]
    return PhaseStats(
        phase=phase.name,
        seconds=round(seconds, 1),
        logins_ok=len(ok),
        logins_per_s=round(len(ok) / seconds, 1),
        p50_ms=round(percentile(durations, 0.50)),
        p95_ms=round(percentile(durations, 0.95)),
        p99_ms=round(percentile(durations, 0.99)),
        requests=len(requests),
        requests_per_s=round(len(requests) / seconds, 1),
        attempt_errors=dict(Counter(e["kind"] for e in attempts if not e["ok"])),
        logins_failed=dict(Counter(e["kinds"][-1] for e in logins if not e["ok"])),
        statuses=dict(Counter(str(e["status"] or e["error"] or "none") for e in requests)),
        by_flow=dict(Counter(e["flow"] for e in ok)),
        notes=phase.notes,
    )


def table(rows: list[PhaseStats]) -> str:
    header = (
        "| phase | s | logins ok | logins/s | p50 ms | p95 ms | p99 ms | failed attempts (retried) | 5xx responses |"
    )
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(row.attempt_errors.items())) or "0"
        fivexx = ", ".join(f"{k} {v}" for k, v in sorted(row.statuses.items()) if k.startswith("5")) or "0"
        lines.append(
            f"| {row.phase} | {row.seconds:.0f} | {row.logins_ok} | {row.logins_per_s} | {row.p50_ms:.0f} | "
            f"{row.p95_ms:.0f} | {row.p99_ms:.0f} | {errors} | {fivexx} |"
        )
    return "\n".join(lines)


def write(rows: list[PhaseStats], folder: Path, extra: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "phases.json").write_text(json.dumps({**extra, "phases": [asdict(r) for r in rows]}, indent=2) + "\n")
    (folder / "phases.md").write_text(table(rows) + "\n")
    with (folder / "phases.csv").open("w") as handle:
        handle.write("phase,seconds,logins_ok,logins_per_s,p50_ms,p95_ms,p99_ms,requests,failed_attempts,http_5xx\n")
        for r in rows:
            fivexx = sum(v for k, v in r.statuses.items() if k.startswith("5"))
            handle.write(
                f"{r.phase},{r.seconds},{r.logins_ok},{r.logins_per_s},{r.p50_ms},{r.p95_ms},{r.p99_ms},"
                f"{r.requests},{sum(r.attempt_errors.values())},{fivexx}\n"
            )
