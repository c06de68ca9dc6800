"""Complete SP-initiated SAML logins over HTTP against a real ``vestibule serve``, beside the signature floor.

    .venv/bin/python benchmarks/saml_login_e2e.py [--first-seconds 10] [--seconds 10] [--clients 4] [--users 1000]
        [--only sqlite|postgres] [--pg-url postgres://postgres@127.0.0.1:5432/vestibule_bench]
        [--redis-url redis://127.0.0.1:6379/13]

One login is what a browser does: ``GET /sso/start/<connection>`` (a fresh
pending login, the AuthnRequest ID and RelayState in the 302 to the IdP), then
a Response signed by the IdP for exactly that request ``POST``-ed to the ACS
(validation, InResponseTo, replay key, user upsert, audit event, login trace,
session row) and its 302. Every login is a new browser (no cookies carried
over) from its own client address (``X-Forwarded-For`` behind one trusted
proxy, as in production behind a load balancer), so the per-address start
limit is not what is measured.

Each database gets a fresh server: SQLite is the embedded default (one
worker, threads: what ``serve`` runs without Redis); PostgreSQL + Redis runs
``--workers`` workers (default 2). Each runs two phases: first logins (each of
``--users`` distinct people signs in once, for at most ``--first-seconds``:
user, link, membership, grants and access are created) and returning logins
(the people who got a first login, again, for ``--seconds``). With the
defaults a run takes about a minute and a half.

The client shares the machine's cores with the server, so besides the wall
clock the benchmark reads the CPU time the server's processes spent
(``/proc/<pid>/stat`` of the gunicorn arbiter and workers; the PostgreSQL
backends of the benchmark's database; redis-server's own counter, which is
shared with anything else using that Redis) and reports *logins per server
core-second*: what one core fully given to Vestibule would sustain. The client
is cheap by construction: ``--clients`` processes on keep-alive
``http.client`` connections, and an IdP signer that fills a pre-canonicalised
template (IDs, InResponseTo, subject, email) and does one SHA-256 and one
RSA-2048 signature per login with ``cryptography``; its CPU time is reported
too. The floor is the bare signature check of the very Response posted
(base64 → parse → exclusive C14N → SHA-256 → RSA verify, as in
``benchmarks/saml_acs.py``), in CPU time on one core, in the same run.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import http.client
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vestibule.saml import IdentityProvider, KeyPair, SamlSettings, ServiceProvider, validate_response  # noqa: E402
from vestibule.saml.idp import build_response  # noqa: E402
from vestibule.saml.keys import load_certificate  # noqa: E402
from vestibule.saml.xml import DS, SAML  # noqa: E402

KEYS = ROOT / "tests" / "fixtures" / "saml" / "keys"
VESTIBULE = ROOT / ".venv" / "bin" / "vestibule"
TICK = os.sysconf("SC_CLK_TCK")
DOMAIN = "acme.example"
# Values only the template holds, replaced per login (none needs XML escaping, so C14N is unchanged around them).
SUBJECT, EMAIL, IN_RESPONSE_TO = "subjectplaceholder000000", f"mailplaceholder000000@{DOMAIN}", "_" + "f" * 40


class NoReplay:
    def add_once(self, *, key: str, expires_at: dt.datetime) -> bool:
        return True


# ---- The IdP: a template signed once, filled and re-signed per login ------------------------------------


@dataclass
class Signer:
    """Signs a Response for one AuthnRequest with one digest and one RSA signature.

    The template is a genuine Response from ``vestibule.saml.idp.build_response``;
    its exclusive C14N forms (assertion without its Signature, SignedInfo) are
    kept as text, and per login only values that need no escaping change, so
    replacing them in the text yields exactly the C14N of the changed tree.
    """

    xml: str
    assertion_c14n: str
    signed_info_c14n: str
    placeholders: dict[str, str]
    key_pem: bytes

    @classmethod
    def make(cls, idp: IdentityProvider, sp_entity_id: str, acs_url: str) -> Signer:
        xml = build_response(
            idp, sp_entity_id=sp_entity_id, acs_url=acs_url, name_id=SUBJECT,
            attributes={"email": [EMAIL], "name": ["Benchmark Person"]},
            now=dt.datetime.now(dt.UTC), in_response_to=IN_RESPONSE_TO, lifetime=dt.timedelta(minutes=10),
        )  # fmt: skip
        root = etree.fromstring(xml)
        assertion = root.find(f"{{{SAML}}}Assertion")
        assert assertion is not None
        signature = assertion.find(f"{{{DS}}}Signature")
        assert signature is not None
        signed_info = signature.find(f"{{{DS}}}SignedInfo")
        assert signed_info is not None
        detached = copy.deepcopy(assertion)
        detached.remove(detached.find(f"{{{DS}}}Signature"))
        session_index = assertion.find(f"{{{SAML}}}AuthnStatement")
        assert session_index is not None
        placeholders = {
            "response_id": str(root.get("ID")),
            "assertion_id": str(assertion.get("ID")),
            "session_index": str(session_index.get("SessionIndex")),
            "digest": str(signed_info.findtext(f".//{{{DS}}}DigestValue")),
            "signature": str(signature.findtext(f"{{{DS}}}SignatureValue")),
        }
        return cls(
            xml=xml.decode(),
            assertion_c14n=etree.tostring(detached, method="c14n", exclusive=True).decode(),
            signed_info_c14n=etree.tostring(signed_info, method="c14n", exclusive=True).decode(),
            placeholders=placeholders,
            key_pem=idp.signing.private_key_pem.encode(),
        )

    def sign(self, request_id: str, subject: str, email: str) -> bytes:
        key = _private_key(self.key_pem)
        p = self.placeholders
        values = {
            p["response_id"]: "_" + secrets.token_hex(20),
            p["assertion_id"]: "_" + secrets.token_hex(20),
            p["session_index"]: "_" + secrets.token_hex(20),
            IN_RESPONSE_TO: request_id,
            EMAIL: email,
            SUBJECT: subject,
        }
        assertion_c14n, signed_info_c14n, xml = self.assertion_c14n, self.signed_info_c14n, self.xml
        for old, new in values.items():
            assertion_c14n = assertion_c14n.replace(old, new)
            signed_info_c14n = signed_info_c14n.replace(old, new)
            xml = xml.replace(old, new)
        digest = base64.b64encode(hashlib.sha256(assertion_c14n.encode()).digest()).decode()
        signed_info_c14n = signed_info_c14n.replace(p["digest"], digest)
        value = key.sign(signed_info_c14n.encode(), padding.PKCS1v15(), hashes.SHA256())
        xml = xml.replace(p["digest"], digest).replace(p["signature"], base64.b64encode(value).decode())
        return xml.encode()


_KEYS: dict[bytes, rsa.RSAPrivateKey] = {}


def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = _KEYS.get(pem)
    if key is None:
        loaded = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        key = _KEYS[pem] = loaded
    return key


# ---- The browser ------------------------------------------------------------------------------------------

_REQUEST_ID = re.compile(rb'ID="(_[0-9a-f]+)"')


@dataclass
class Task:
    base_url: str
    connection_id: str
    acs_path: str
    signer: Signer
    people: list[int]
    deadline: float  # time.time()
    once: bool  # each person at most once (first logins), else round and round until the deadline
    ip_base: int


def _browser(task: Task) -> dict[str, Any]:
    """One client process: logins one after the other on one keep-alive connection."""
    cpu0 = time.process_time()
    url = urlsplit(task.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    start_ms: list[float] = []
    acs_ms: list[float] = []
    errors: dict[str, int] = {}
    done: list[int] = []
    n = 0
    while True:
        for person in task.people:
            if time.time() >= task.deadline:
                break
            n += 1
            if n % 25 == 0:
                # A new connection now and then, as browsers behind a load balancer come and go: each
                # connection stays with the worker that accepted it, and all must not end up on one.
                conn.close()
            ip = task.ip_base + n
            forwarded = f"10.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"
            t0 = time.perf_counter()
            conn.request("GET", f"/sso/start/{task.connection_id}", headers={"X-Forwarded-For": forwarded})
            r = conn.getresponse()
            r.read()
            t1 = time.perf_counter()
            if r.status != 302:
                errors[f"start {r.status}"] = errors.get(f"start {r.status}", 0) + 1
                continue
            cookies = "; ".join(c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or [])
            query = parse_qs(urlsplit(r.headers["Location"]).query)
            relay_state = query["RelayState"][0]
            request_xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
            found = _REQUEST_ID.search(request_xml)
            assert found is not None
            xml = task.signer.sign(found.group(1).decode(), f"subject-{person}", f"user{person:06d}@{DOMAIN}")
            t2 = time.perf_counter()
            body = urlencode({"SAMLResponse": base64.b64encode(xml).decode(), "RelayState": relay_state})
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": forwarded}
            if cookies:
                headers["Cookie"] = cookies
            conn.request("POST", task.acs_path, body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            t3 = time.perf_counter()
            if r.status != 302:
                errors[f"acs {r.status}"] = errors.get(f"acs {r.status}", 0) + 1
                continue
            start_ms.append((t1 - t0) * 1000)
            acs_ms.append((t3 - t2) * 1000)
            done.append(person)
        if task.once or time.time() >= task.deadline:
            break
    conn.close()
    cpu = time.process_time() - cpu0
    return {"start_ms": start_ms, "acs_ms": acs_ms, "errors": errors, "cpu": cpu, "done": done}


# ---- The server and its CPU time ----------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


@dataclass
class Server:
    name: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    base_url: str
    pg_url: str | None
    redis_url: str | None

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: gunicorn (arbiter + workers), PostgreSQL backends of our database, redis-server."""
        pid = self.process.pid
        usage = {"vestibule": _proc_cpu(pid) + sum(_proc_cpu(c) for c in _children(pid)), "postgres": 0.0, "redis": 0.0}
        if self.pg_url:
            import psycopg

            with psycopg.connect(_admin_url(self.pg_url), autocommit=True) as db:
                pids = [
                    row[0]
                    for row in db.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        [urlsplit(self.pg_url).path.lstrip("/")],
                    )
                ]
            usage["postgres"] = sum(_proc_cpu(p) for p in pids)
        if self.redis_url:
            import redis

            info = redis.Redis.from_url(self.redis_url).info("cpu")
            usage["redis"] = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return usage

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _admin_url(pg_url: str) -> str:
    return pg_url.rsplit("/", 1)[0] + "/postgres"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    name: str,
    data_dir: Path,
    *,
    workers: int,
    threads: int,
    pg_url: str | None,
    redis_url: str | None,
    src: str | None = None,
) -> Server:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VESTIBULE_DATA_DIR": str(data_dir),
        "VESTIBULE_BASE_URL": base_url,
        "VESTIBULE_TRUSTED_PROXIES": "1",
        "VESTIBULE_LOG_LEVEL": "WARNING",
    }
    for var in ("VESTIBULE_DATABASE_URL", "VESTIBULE_REDIS_URL", "VESTIBULE_DEBUG"):
        env.pop(var, None)
    if src:
        # Another source tree (an older commit, for a before/after in one run) ahead of the installed one.
        env["PYTHONPATH"] = str(Path(src).resolve())
    if pg_url:
        import psycopg

        db_name = urlsplit(pg_url).path.lstrip("/")
        with psycopg.connect(_admin_url(pg_url), autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            db.execute(f'CREATE DATABASE "{db_name}"')
        env["VESTIBULE_DATABASE_URL"] = pg_url
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        env["VESTIBULE_REDIS_URL"] = redis_url
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115  (open for the server's whole life)
    command = [str(VESTIBULE), "serve", "--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    if pg_url:
        command.append("--migrate")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    server = Server(name, env, process, base_url, pg_url, redis_url)
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: vestibule serve exited; see {data_dir / 'server.log'}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200 and len(_children(process.pid)) >= workers:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{name}: the server did not answer /healthz in 120 s")


def configure(server: Server, idp: IdentityProvider) -> dict[str, Any]:
    """An account, a project and an enabled SAML connection, through the CLI and the public API."""
    key = subprocess.run(
        [str(VESTIBULE), "api-key", "create", "--operator"], env=server.env, check=True, capture_output=True,
        cwd=server.env["VESTIBULE_DATA_DIR"],
    ).stdout.decode().strip()  # fmt: skip
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        data = json.loads(r.read() or b"{}")
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data}")
        return dict(data)

    call("POST", "/api/v1/accounts", {"slug": "acme", "name": "Acme"})
    call("POST", "/api/v1/accounts/acme/projects", {"slug": "production", "name": "Production"})
    created = call(
        "POST", "/api/v1/accounts/acme/connections",
        {
            "protocol": "saml", "name": "Okta", "domains": [DOMAIN], "auto_provision": True,
            "provisioned_users_can_login": True,
            "saml": {"idp_entity_id": idp.entity_id, "sso_url": idp.sso_url, "certificates": [idp.signing.certificate_pem]},
        },
    )  # fmt: skip
    call("PATCH", f"/api/v1/connections/{created['id']}", {"enabled": True, "linked_projects": ["production"]})
    return created


# ---- Runs ---------------------------------------------------------------------------------------------------


def run_phase(
    pool: Any,
    server: Server,
    conn: dict[str, Any],
    signer: Signer,
    people: list[int],
    clients: int,
    seconds: float,
    *,
    once: bool = False,
) -> dict[str, Any]:
    deadline = time.time() + seconds
    acs_path = urlsplit(conn["acs_url"]).path
    tasks = [
        Task(server.base_url, conn["id"], acs_path, signer, people[i::clients], deadline, once, i << 20)
        for i in range(clients)
    ]
    before, t0 = server.cpu(), time.perf_counter()
    results = pool.map(_browser, tasks)
    wall, after = time.perf_counter() - t0, server.cpu()
    start_ms = [x for r in results for x in r["start_ms"]]
    acs_ms = [x for r in results for x in r["acs_ms"]]
    total_ms = [s + a for r in results for s, a in zip(r["start_ms"], r["acs_ms"], strict=True)]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    logins = len(total_ms)
    cpu = {k: after[k] - before[k] for k in after}
    return {
        "logins": logins,
        "wall": wall,
        "rate": logins / wall if wall else 0.0,
        "p50": statistics.median(total_ms) if total_ms else 0.0,
        "p95": statistics.quantiles(total_ms, n=20)[-1] if len(total_ms) > 20 else max(total_ms, default=0.0),
        "start_p50": statistics.median(start_ms) if start_ms else 0.0,
        "acs_p50": statistics.median(acs_ms) if acs_ms else 0.0,
        "cpu": cpu,
        "client_cpu": sum(r["cpu"] for r in results),
        "errors": errors,
        "done": sorted(p for r in results for p in r["done"]),
    }


def floor_rate(signer: Signer, idp: IdentityProvider, seconds: float) -> float:
    """Bare signature checks per CPU-second of the Response the benchmark posts (benchmarks/saml_acs.py's floor)."""
    b64 = base64.b64encode(signer.sign("_" + "0" * 40, "subject-floor", f"floor@{DOMAIN}"))
    public_key = load_certificate(idp.signing.certificate_pem).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)

    def check() -> None:
        root = etree.fromstring(base64.b64decode(b64))
        assertion = root.find(f"{{{SAML}}}Assertion")
        signature = assertion.find(f"{{{DS}}}Signature")
        signed_info = signature.find(f"{{{DS}}}SignedInfo")
        detached = copy.deepcopy(assertion)
        detached.remove(detached.find(f"{{{DS}}}Signature"))
        digest = hashlib.sha256(etree.tostring(detached, method="c14n", exclusive=True)).digest()
        assert digest == base64.b64decode(signed_info.findtext(f".//{{{DS}}}DigestValue"))
        public_key.verify(
            base64.b64decode(signature.findtext(f"{{{DS}}}SignatureValue")),
            etree.tostring(signed_info, method="c14n", exclusive=True),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    check()
    count, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        check()
        count += 1
    return count / elapsed


def check_signer(signer: Signer, idp: IdentityProvider, conn: dict[str, Any]) -> None:
    """The template signer's output is a Response vestibule.saml accepts (else every login would fail)."""
    request_id = "_" + secrets.token_hex(20)
    xml = signer.sign(request_id, "subject-check", f"check@{DOMAIN}")
    validate_response(
        base64.b64encode(xml).decode(),
        sp=ServiceProvider(conn["sp_entity_id"], conn["acs_url"], conn["sp_entity_id"]),
        settings=SamlSettings.from_dict(
            {"idp_entity_id": idp.entity_id, "sso_url": idp.sso_url, "certificates": [idp.signing.certificate_pem]}
        ),
        now=dt.datetime.now(dt.UTC),
        expected_request_id=request_id,
        replay=NoReplay(),
    )


def bench(
    name: str,
    args: argparse.Namespace,
    idp: IdentityProvider,
    *,
    workers: int,
    pg_url: str | None,
    redis_url: str | None,
) -> dict[str, Any]:
    if args.label:
        name = f"{name} {args.label}"
    data_dir = Path(tempfile.mkdtemp(prefix="vestibule-e2e-"))
    server = start_server(
        name, data_dir, workers=workers, threads=args.threads, pg_url=pg_url, redis_url=redis_url, src=args.src
    )
    print(f"{name}: vestibule serve pid {server.process.pid}, workers {_children(server.process.pid)}", flush=True)
    try:
        conn = configure(server, idp)
        signer = Signer.make(idp, conn["sp_entity_id"], conn["acs_url"])
        check_signer(signer, idp, conn)
        people = list(range(args.users))
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.clients) as pool:
            # Warm-up: every worker imports its URL configuration and builds its caches on its first requests.
            # A worker's first request imports every app's views (seconds of CPU on this machine): rounds of
            # --warmup seconds run until the rate settles (two rounds within 20 %), for at most a minute.
            rates: list[float] = []
            deadline = time.time() + 60
            while time.time() < deadline:
                warm = run_phase(
                    pool, server, conn, signer, [10**6 + i for i in range(1000)], args.clients, args.warmup
                )
                if warm["errors"]:
                    raise SystemExit(f"{name}: logins fail: {warm['errors']}; see {data_dir / 'server.log'} (--keep)")
                rates.append(warm["rate"])
                if len(rates) >= 2 and abs(rates[-1] - rates[-2]) <= 0.2 * max(rates[-2:]):
                    break
            print(f"{name}: warm-up rounds at {', '.join(f'{r:.0f}' for r in rates)} logins/s", flush=True)
            workers_before = sorted(_children(server.process.pid))
            # Each person's first login (bounded by --first-seconds), then the people who got one, again.
            first = run_phase(pool, server, conn, signer, people, args.clients, args.first_seconds, once=True)
            returning = run_phase(pool, server, conn, signer, first["done"], args.clients, args.seconds)
            if sorted(_children(server.process.pid)) != workers_before:
                print(f"{name}: WARNING: gunicorn replaced a worker during the run; its CPU time is partly lost")
        floor = floor_rate(signer, idp, args.floor_seconds)
        if args.profile_pause:
            input(f"{name}: server pid {server.process.pid} still up; Enter to stop")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept {data_dir}")
    return {
        "name": name,
        "workers": workers,
        "threads": args.threads,
        "first": first,
        "returning": returning,
        "floor": floor,
    }


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.clients} client processes, keep-alive; first = first logins of up to {args.users} people in at most"
        f" {args.first_seconds:.0f} s, returning = {args.seconds:.0f} s of their repeat logins."
        " CPU: server = gunicorn + PostgreSQL backends + redis-server."
    )
    head = (
        f"{'database':28} {'phase':9} {'logins':>6} {'/s wall':>8} {'p50 ms':>7} {'p95 ms':>7} {'start':>6} {'acs':>6}"
        f" {'app ms':>7} {'db ms':>6} {'redis':>6} {'srv ms':>7} {'/core-s':>8} {'client':>7} {'floor/s':>8} {'ratio':>6}"
    )
    print(head)
    for result in results:
        for phase in ("first", "returning"):
            r = result[phase]
            n = max(r["logins"], 1)
            app, db, rd = (r["cpu"][k] * 1000 / n for k in ("vestibule", "postgres", "redis"))
            server_ms = app + db + rd
            per_core = 1000 / server_ms if server_ms else 0.0
            print(
                f"{result['name']:28} {phase:9} {r['logins']:6d} {r['rate']:8.1f} {r['p50']:7.1f} {r['p95']:7.1f}"
                f" {r['start_p50']:6.1f} {r['acs_p50']:6.1f} {app:7.2f} {db:6.2f} {rd:6.2f} {server_ms:7.2f}"
                f" {per_core:8.0f} {r['client_cpu'] * 1000 / n:7.2f} {result['floor']:8.0f}"
                f" {per_core / result['floor']:6.3f}"
            )
            if r["errors"]:
                print(f"   errors: {r['errors']}")
    print(
        "\nstart/acs: median ms of each request; app/db/redis ms: CPU per login of gunicorn, of the PostgreSQL backends,"
        " of redis-server (shared); /core-s = 1000 / srv ms: logins per server core-second; client: the benchmark's"
        " own CPU ms per login; floor/s: bare signature checks per CPU-second; ratio = /core-s ÷ floor/s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="returning-login phase per database (default 10)")
    parser.add_argument("--users", type=int, default=1000, help="distinct people (first-login phase: each once)")
    parser.add_argument("--first-seconds", type=float, default=10.0, help="bound of the first-login phase (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (serve's default 8)")
    parser.add_argument("--workers", type=int, default=2, help="workers with PostgreSQL + Redis (default 2)")
    parser.add_argument("--floor-seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per warm-up round (default 2)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/vestibule_bench"),
        help="a scratch database: dropped and created again at the start of the run",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--label", default="", help="appended to the database name in the table")
    parser.add_argument("--src", help="run the server from this source tree (e.g. an older commit's src/)")
    parser.add_argument("--keep", action="store_true", help="keep the data folders (server.log) for inspection")
    parser.add_argument("--profile-pause", action="store_true", help="wait for Enter before stopping each server")
    args = parser.parse_args()
    idp = IdentityProvider(
        "https://idp.bench.test/metadata",
        "https://idp.bench.test/sso",
        KeyPair((KEYS / "idp.key").read_text(), (KEYS / "idp.crt").read_text()),
    )
    results = []
    if args.only in (None, "sqlite"):
        results.append(bench("SQLite (embedded)", args, idp, workers=1, pg_url=None, redis_url=None))
    if args.only in (None, "postgres"):
        results.append(
            bench("PostgreSQL+Redis", args, idp, workers=args.workers, pg_url=args.pg_url, redis_url=args.redis_url)
        )
    report(results, args)


if __name__ == "__main__":
    main()
