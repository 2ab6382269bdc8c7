"""Fleet: many accounts, several ``followup serve`` workers, one PostgreSQL store.

For each worker count (``--workers 1,2,4``): a fresh PostgreSQL database, a fresh multi-portal HubSpot
sandbox and a fresh multi-org Salesforce sandbox (half the accounts each, ``--deals`` deals per account,
every portal/org built before the clock starts), one settings file, and that many real ``followup serve``
processes started together. Every account is scheduled ``every: 1h``, so each is due once at the start:

* **first pass**: every account's first cycle (a full pull, every action written), until each account has
  one finished ``ok`` cycle;
* **steady pass**: every account made due again at once (``next_due_at`` set to now in the store, as a
  schedule coming round does), an incremental cycle each.

Per pass: wall time (first start to last finish, from the store's ``runs``), accounts cycled per minute,
the worst lag of a cycle's start behind its due time, CRM API calls (the connector's count in ``runs``;
per account), the most PostgreSQL connections seen (``pg_stat_activity``, sampled every second), each
worker's peak RSS (``VmHWM``), cycles of an account that overlapped (must be 0) and, after the run, tasks
written twice in any CRM (every portal's and org's tasks read back through the official clients: must be
0). Then SIGTERM: every worker must exit 0 and leave no lease.

``--takeover`` (with 2 or more workers): in the first pass, SIGKILL a worker while it holds leases; the
takeover time is, per account it held, from the kill to a cycle of that account starting in another
worker (on one host the survivors see the dead process at once; across hosts it is the lease TTL).

The sandboxes run in two child processes of this one (one per CRM); the workers are separate processes;
everything shares this machine's cores. Run (PostgreSQL from ``.ci/postgres.sh``):

    url=$(.ci/postgres.sh start /tmp/pg-bench)
    .venv/bin/python -m bench.bench_fleet --postgres "$url" [--accounts 500] [--deals 200]
        [--workers 1,2,4] [--max-cycles 4] [--takeover] [--write]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from bench.harness import FOLLOWUP, ROOT, machine, write_section

SECTION = "## Fleet: accounts per worker on one PostgreSQL"
POLICY = ROOT / "config" / "policies"


# ---------------------------------------------------------------------------------------------- sandboxes


def _hubspot_tasks(base_url: str, token: str) -> Counter[str]:
    """The crm-followup keys of a portal's tasks, read over plain HTTP (bench/ imports no SDK)."""
    import requests

    keys: Counter[str] = Counter()
    params: dict[str, Any] = {"limit": 100, "properties": "hs_task_body"}
    with requests.Session() as session:
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {token}"
        while True:
            page = session.get(f"{base_url}/crm/v3/objects/tasks", params=params, timeout=60)
            page.raise_for_status()
            body = page.json()
            for task in body["results"]:
                for line in (task["properties"].get("hs_task_body") or "").splitlines():
                    if line.startswith("crm-followup key: "):
                        keys[line.split()[2]] += 1
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after is None:
                return keys
            params["after"] = after


def _salesforce_tasks(instance_url: str, ca_file: str, token: str) -> Counter[str]:
    """The ``Followup_Key__c`` of an org's tasks, by SOQL over the REST API (bench/ imports no SDK)."""
    import requests

    keys: Counter[str] = Counter()
    with requests.Session() as session:
        session.trust_env = False
        session.verify = ca_file
        session.headers["Authorization"] = f"Bearer {token}"
        soql = "SELECT Followup_Key__c FROM Task WHERE Followup_Key__c != null"
        answer = session.get(f"{instance_url}/services/data/v62.0/query", params={"q": soql}, timeout=60)
        while True:
            answer.raise_for_status()
            body = answer.json()
            keys.update(row["Followup_Key__c"] for row in body["records"])
            if body.get("done", True):
                return keys
            answer = session.get(f"{instance_url}{body['nextRecordsUrl']}", timeout=60)


def serve_fleet(conn: Connection, crm: str, count: int, deals: int, seed: int) -> None:
    """A child process's work: a multi-tenant sandbox of ``count`` portals/orgs, every one built; sends
    what a settings file needs, then answers ``"duplicates"`` (tasks written twice, over every tenant)
    and ``"stats"`` until ``"stop"``."""
    if crm == "hubspot":
        from crm_sandbox.hubspot.fleet import running_hubspot_fleet

        with running_hubspot_fleet(portals=count, deals=deals, seed=seed) as hs:
            for n in range(count):
                hs.server.tenant(n)
            conn.send({"base_url": hs.base_url, "tokens": list(hs.tokens)})
            while (message := conn.recv()) != "stop":
                if message == "duplicates":
                    keys = [_hubspot_tasks(hs.base_url, token) for token in hs.tokens]
                    conn.send((sum(1 for k in keys for n in k.values() if n > 1), sum(map(len, keys))))
                elif message == "stats":
                    conn.send(hs.control.stats())
        return
    from crm_sandbox.salesforce.fleet import running_salesforce_fleet

    with running_salesforce_fleet(orgs=count, deals=deals, seed=seed) as sf:
        for n in range(count):
            sf.server.tenant(n)
        conn.send(
            {
                "instance_url": sf.instance_url,
                "ca_file": str(sf.ca_file),
                "consumer_key": sf.consumer_key,
                "private_key_file": str(sf.private_key_file),
                "usernames": list(sf.usernames),
            }
        )
        while (message := conn.recv()) != "stop":
            if message == "duplicates":
                twice = written = 0
                for n in range(count):
                    token = sf.server.tenant(n).issue_token()
                    org_keys = _salesforce_tasks(sf.instance_url, str(sf.ca_file), token)
                    twice += sum(1 for v in org_keys.values() if v > 1)
                    written += len(org_keys)
                conn.send((twice, written))
            elif message == "stats":
                conn.send(sf.control.stats())


@dataclass
class Sandbox:
    process: BaseProcess
    conn: Connection
    reach: dict[str, Any]

    def ask(self, message: str) -> Any:
        self.conn.send(message)
        return self.conn.recv()


@contextmanager
def sandboxes(hubspot: int, salesforce: int, deals: int) -> Iterator[tuple[Sandbox | None, Sandbox | None]]:
    started: list[Sandbox] = []
    context = multiprocessing.get_context("spawn")
    try:
        for crm, count, seed in (("hubspot", hubspot, 100), ("salesforce", salesforce, 200)):
            if count == 0:
                continue
            mine, theirs = context.Pipe()
            process = context.Process(target=serve_fleet, args=(theirs, crm, count, deals, seed), daemon=True)
            process.start()
            started.append(Sandbox(process, mine, {}))
        for box in started:
            box.reach = box.conn.recv()
        by_crm = {("hubspot" if "tokens" in b.reach else "salesforce"): b for b in started}
        yield by_crm.get("hubspot"), by_crm.get("salesforce")
    finally:
        for box in started:
            if box.process.is_alive():
                box.conn.send("stop")
                box.process.join(timeout=30)
            if box.process.is_alive():
                box.process.kill()


# ---------------------------------------------------------------------------------------------- settings


def write_settings(
    folder: Path, store_url: str, hs: Sandbox | None, sf: Sandbox | None, max_cycles: int, lease: str
) -> list[str]:
    """The fleet's settings file (every account ``every: 1h``); the account names."""
    secrets = folder / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    lines = [
        f"store: {{url: '{store_url}'}}",
        "metrics: {port: 0}",
        "logging: {level: info, format: json}",
        f"worker: {{max_concurrent_cycles: {max_cycles}, poll_interval: 1s}}",
        "accounts:",
    ]
    names: list[str] = []
    common = f"    policy: {POLICY}\n    schedule: {{every: 1h}}\n    lease: {lease}\n"
    if hs is not None:
        for n, token in enumerate(hs.reach["tokens"]):
            name = f"hs-{n:04d}"
            (secrets / name).write_text(token)
            lines.append(
                f"  {name}:\n    crm: hubspot\n{common}    hubspot:\n      host: '{hs.reach['base_url']}'\n"
                f"      access_token_file: '{secrets / name}'\n      tier: enterprise"
            )
            names.append(name)
    if sf is not None:
        from crm_sandbox.pipelines import stage_ids_by_name

        stage_ids = json.dumps(stage_ids_by_name())
        r = sf.reach
        for n, username in enumerate(r["usernames"]):
            name = f"sf-{n:04d}"
            lines.append(
                f"  {name}:\n    crm: salesforce\n{common}    salesforce:\n"
                f"      instance_url: '{r['instance_url']}'\n      login_url: '{r['instance_url']}'\n"
                f"      ca_file: '{r['ca_file']}'\n      stage_ids: {stage_ids}\n      auth:\n"
                f"        kind: jwt_bearer\n        consumer_key: '{r['consumer_key']}'\n"
                f"        username: '{username}'\n        private_key_file: '{r['private_key_file']}'"
            )
            names.append(name)
    (folder / "settings.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return names


@contextmanager
def database(base_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, make_url, text

    name = f"followup_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def holder(self) -> str | None:
        for line in self.log.read_text(errors="replace").splitlines():
            if '"fleet_worker_started"' in line:
                return str(json.loads(line)["holder"])
        return None

    def peak_rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        return kb / 1024


@dataclass
class Pass:
    name: str
    cycles: int = 0
    wall_s: float = 0.0
    worst_lag_s: float = 0.0
    api_calls: int = 0
    overlaps: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def per_minute(self) -> float:
        return self.cycles / self.wall_s * 60 if self.wall_s else 0.0


@dataclass
class Result:
    workers: int
    accounts: int
    passes: list[Pass] = field(default_factory=list)
    connections: int = 0
    peak_rss_mb: list[float] = field(default_factory=list)
    duplicates: int = 0
    tasks: int = 0
    clean_stop: bool = False
    leases_left: int = -1
    takeover_s: list[float] = field(default_factory=list)
    killed_holding: int = 0


def _runs(store_url: str) -> list[Any]:
    from sqlalchemy import create_engine

    from store.schema import runs

    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(runs.select().order_by(runs.c.started_at)).all())
    finally:
        engine.dispose()


def _sql(store_url: str, query: str, **params: Any) -> Any:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(query), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def _summarise(name: str, rows: list[Any], dead: str | None = None) -> Pass:
    """A pass from its runs; the unfinished runs of a killed worker (``dead``) overlap nothing."""
    done = [r for r in rows if r.finished_at is not None]
    result = Pass(name, statuses=dict(Counter(r.status for r in done)))
    ok = [r for r in done if r.status == "ok"]
    result.cycles = len(ok)
    if ok:
        result.wall_s = (max(r.finished_at for r in ok) - min(r.started_at for r in rows)).total_seconds()
        lags = [(r.started_at - r.due_at).total_seconds() for r in rows if r.due_at is not None]
        result.worst_lag_s = max(lags, default=0.0)
    result.api_calls = sum(r.api_calls or 0 for r in done)
    by_account: dict[str, list[Any]] = {}
    for r in rows:
        by_account.setdefault(r.account, []).append(r)
    for spans in by_account.values():
        spans.sort(key=lambda r: r.started_at)
        for a, b in itertools.pairwise(spans):
            if a.finished_at is None and a.holder == dead:
                continue
            if a.finished_at is None or b.started_at < a.finished_at:
                result.overlaps += 1
    return result


def measure(args: argparse.Namespace, workers: int) -> Result:
    hubspot = args.accounts // 2
    salesforce = args.accounts - hubspot
    result = Result(workers, args.accounts)
    with (
        database(args.postgres) as store_url,
        sandboxes(hubspot, salesforce, args.deals) as (hs, sf),
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
    ):
        folder = Path(tmp)
        names = write_settings(folder, store_url, hs, sf, args.max_cycles, args.lease)
        dbname = store_url.rsplit("/", 1)[1]
        settings = folder / "settings.yaml"
        from store import StateStore

        StateStore(store_url).close()  # migrated once before the clock starts (workers would take turns)
        procs: list[Worker] = []
        for n in range(workers):
            log = folder / f"worker-{n}.log"
            with log.open("wb") as out:
                procs.append(
                    Worker(
                        subprocess.Popen(
                            [str(FOLLOWUP), "serve", "--settings", str(settings)],
                            cwd=ROOT,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        ),
                        log,
                    )
                )
        rss = [0.0] * workers
        killed: tuple[str, float, set[str]] | None = None

        def sample() -> None:
            result.connections = max(
                result.connections,
                int(
                    _sql(
                        args.postgres,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :d",
                        d=dbname,
                    )
                ),
            )
            for i, w in enumerate(procs):
                rss[i] = max(rss[i], w.peak_rss_mb())

        def wait_for(count: int, since: float) -> list[Any]:
            nonlocal killed
            deadline = time.monotonic() + args.limit
            while time.monotonic() < deadline:
                sample()
                rows = [r for r in _runs(store_url) if r.started_at.timestamp() >= since]
                ok = {r.account for r in rows if r.status == "ok" and r.finished_at is not None}
                if args.takeover and killed is None and workers > 1 and len(ok) >= len(names) // 4:
                    victim = procs[-1]
                    holder = victim.holder()
                    held = {r.account for r in rows if r.holder == holder and r.finished_at is None}
                    if held:
                        victim.process.send_signal(signal.SIGKILL)
                        victim.process.wait()  # reaped, as a supervisor does: a zombie still "exists"
                        killed = (holder or "", time.time(), held)
                        print(f"  killed {holder} holding {sorted(held)}", file=sys.stderr, flush=True)
                if len(ok) >= count:
                    return rows
                time.sleep(1)
            raise SystemExit(f"gave up after {args.limit} s: {len(ok)} of {count} accounts cycled")

        start = time.time() - 1
        first = wait_for(len(names), start)
        result.passes.append(_summarise("first (full)", first, killed[0] if killed else None))
        if killed is not None:
            holder, at, held = killed
            result.killed_holding = len(held)
            for account in sorted(held):
                later = [
                    r.started_at.timestamp()
                    for r in _runs(store_url)
                    if r.account == account and r.holder != holder
                ]
                later = [t for t in later if t >= at]
                if later:
                    result.takeover_s.append(min(later) - at)
        print(f"  first pass: {result.passes[-1]}", file=sys.stderr, flush=True)
        again = time.time()
        _sql(store_url, "UPDATE accounts SET next_due_at = now()")
        steady = wait_for(len(names), again)
        result.passes.append(_summarise("steady (incremental)", steady))
        print(f"  steady pass: {result.passes[-1]}", file=sys.stderr, flush=True)
        sample()
        live = [w for w in procs if w.process.poll() is None]
        for w in live:
            w.process.send_signal(signal.SIGTERM)
        result.clean_stop = all(w.process.wait(timeout=600) == 0 for w in live)
        result.leases_left = int(_sql(store_url, "SELECT count(*) FROM leases"))
        result.peak_rss_mb = rss
        for box in (hs, sf):
            if box is not None:
                twice, written = box.ask("duplicates")
                result.duplicates += twice
                result.tasks += written
    return result


# ---------------------------------------------------------------------------------------------- report


def markdown(results: list[Result], args: argparse.Namespace, command: str, load: str) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}; load average before the run {load} (the machine's 2 cores are shared with "
        "other work: the workers, both sandboxes and PostgreSQL all run on them). "
        f"{args.accounts} accounts (half HubSpot portals, half Salesforce orgs, one sandbox process each) x "
        f"{args.deals} deals, the bundled policies, `worker.max_concurrent_cycles: {args.max_cycles}`, one "
        f"PostgreSQL database, lease {args.lease}.",
        "",
        f"Command: `{command}`",
        "",
        "| workers | pass | cycles | wall | accounts/min | worst lag | API calls (per account) "
        "| PG connections (max) | peak RSS per worker | overlapping cycles | tasks written twice |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for p in r.passes:
            lines.append(
                f"| {r.workers} | {p.name} | {p.cycles} | {p.wall_s:.0f} s | {p.per_minute:.1f} | "
                f"{p.worst_lag_s:.0f} s | {p.api_calls:,} ({p.api_calls / max(1, p.cycles):.1f}) | "
                f"{r.connections} | {', '.join(f'{m:.0f} MB' for m in r.peak_rss_mb)} | {p.overlaps} | "
                f"{r.duplicates} of {r.tasks:,} |"
            )
    lines.append("")
    for r in results:
        stop = "every worker exited 0" if r.clean_stop else "a worker did NOT exit 0"
        lines.append(f"- {r.workers} worker(s): SIGTERM: {stop}, {r.leases_left} lease(s) left in the store.")
        if r.takeover_s:
            ordered = sorted(r.takeover_s)
            lines.append(
                f"  SIGKILL of a worker holding {r.killed_holding} account(s): taken over by another worker "
                f"after {ordered[0]:.1f}-{ordered[-1]:.1f} s ({len(ordered)} of {r.killed_holding})."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("FOLLOWUP_BENCH_POSTGRES_URL"), required=False)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--max-cycles", type=int, default=4)
    parser.add_argument("--lease", default="2m")
    parser.add_argument("--takeover", action="store_true", help="SIGKILL a worker mid-pass (2+ workers)")
    parser.add_argument("--limit", type=float, default=3600, help="seconds a pass may take before giving up")
    parser.add_argument("--write", action="store_true", help="replace our section of docs/benchmarks.md")
    args = parser.parse_args()
    if not args.postgres:
        parser.error(
            "--postgres URL (or FOLLOWUP_BENCH_POSTGRES_URL): a PostgreSQL server to create databases on"
        )
    command = ".venv/bin/python -m bench.bench_fleet --postgres URL" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--accounts", args.accounts, 500),
            ("--deals", args.deals, 200),
            ("--workers", args.workers, "1,2,4"),
            ("--max-cycles", args.max_cycles, 4),
            ("--lease", args.lease, "2m"),
        )
        if value != default
    )
    command += " --takeover" * args.takeover + " --write" * args.write
    load = "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    results = []
    for count in [int(n) for n in args.workers.split(",")]:
        print(f"{count} worker(s)", file=sys.stderr, flush=True)
        results.append(measure(args, count))
    section = markdown(results, args, command, load)
    print(section)
    if args.write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
