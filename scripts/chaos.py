#!/usr/bin/env python3
"""Chaos on the real servers: kills, hangs and slows each dependency of a gateway under a steady load, and one of
three upstream instances, and records what the clients saw. Run by scripts/chaos (which starts the servers).

Every dependency is reached through a fault proxy of this script (a TCP relay on loopback that can add latency,
black-hole or reset); kills and hangs act on the real server processes (SIGKILL and a restart, SIGSTOP and SIGCONT).
For each scenario: requests sent, answers by status, 5xx that are not the designed 502/503/504, requests that hung
past the client's time-out, whether the gateway still runs, and the time from the dependency's return (it answers
again) to full service (/readyz 200 and the scenario's probe request answered). At the end every acknowledged upload
must be listed and downloadable with its SHA-256.
"""
import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

CLIENT_TIMEOUT = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def p99(values):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class FaultProxy:
    """A TCP relay to 127.0.0.1:target: `pass`, `latency` (each chunk waits `delay` seconds), `blackhole` (bytes are
    swallowed, nothing answers; the connections are cut when it ends, as retransmissions would time out) or `reset`
    (every connection is cut, and new ones at once)."""

    def __init__(self, loop, target):
        self.loop, self.target, self.mode, self.delay = loop, target, "pass", 0.3
        self.connections = set()
        self.port = None

    async def start(self):
        server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def accept(self, reader, writer):
        if self.mode == "reset":
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, upstream_writer)
        self.connections.add(pair)
        try:
            await asyncio.gather(self.pipe(reader, upstream_writer), self.pipe(upstream_reader, writer))
        finally:
            self.connections.discard(pair)
            for side in pair:
                side.transport.abort()

    async def pipe(self, source, destination):
        try:
            while True:
                data = await source.read(65536)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue
                if self.mode == "latency":
                    await asyncio.sleep(self.delay)
                destination.write(data)
                await destination.drain()
        except (ConnectionError, OSError):
            pass
        destination.transport.abort()

    def set(self, mode):
        def change():
            previous, self.mode = self.mode, mode
            if mode == "reset" or previous == "blackhole":
                for pair in list(self.connections):
                    for side in pair:
                        side.transport.abort()
        self.loop.call_soon_threadsafe(change)


def process_tree(pid):
    """`pid` and its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def signal_tree(pid, number):
    """Sends `number` to `pid` and its descendants; returns how many there were."""
    members = process_tree(pid)
    for member in members:
        try:
            os.kill(member, number)
        except ProcessLookupError:
            pass
    return len(members)


def wait_until(what, condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"chaos: {what} did not happen within {timeout} s")


def port_answers(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class Dependency:
    """A real server: its main PID (from the services directory), how to kill and start it again."""

    def __init__(self, name, services, port, password=None):
        self.name, self.services, self.port, self.password = name, services, port, password

    def pid(self):
        if self.name == "postgres":
            with open(f"{self.services}/postgres/data/postmaster.pid") as file:
                return int(file.readline())
        with open(f"{self.services}/{self.name}.pid") as file:
            return int(file.read().split()[0])

    def hang(self):
        stopped = signal_tree(self.pid(), signal.SIGSTOP)
        print(f"chaos: {self.name}: SIGSTOP to {stopped} processes", file=sys.stderr)

    def resume(self):
        signal_tree(self.pid(), signal.SIGCONT)

    def control(self):
        return ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D",
                f"{self.services}/postgres/data"]

    def kill(self):
        if self.name == "postgres":
            # `immediate` is PostgreSQL's crash: every backend quits at once, without a checkpoint.
            subprocess.run(self.control() + ["-m", "immediate", "-w", "stop"], check=True, stdout=subprocess.DEVNULL)
            return
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)

        def dead():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        wait_until(f"{self.name} to die", dead)

    def start(self):
        """Starts the server again as scripts/services did, and waits until it listens."""
        services = self.services
        if self.name == "postgres":
            # Durable, unlike the test suite's: a crash must not lose a commit the gateway was told of.
            options = (f"-p {self.port} -k {services}/postgres -c listen_addresses=127.0.0.1 -c fsync=on "
                       "-c synchronous_commit=on -c max_connections=300")
            subprocess.run(self.control() + ["-l", f"{services}/postgres/pg.log", "-w", "-t", "60", "-o", options,
                                             "start"], check=True, stdout=subprocess.DEVNULL)
        elif self.name == "redis":
            subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                            f"{services}/redis", "--save", "", "--appendonly", "no", "--daemonize", "yes",
                            "--pidfile", f"{services}/redis.pid", "--logfile", f"{services}/redis/redis.log",
                            "--requirepass", self.password], check=True)
        else:
            log = open(f"{services}/clickhouse/log/stdout.log", "ab")
            started = subprocess.Popen(["clickhouse-server", f"--config-file={services}/clickhouse/config.xml"],
                                       stdout=log, stderr=log, start_new_session=True)
            with open(f"{services}/clickhouse.pid", "w") as file:
                file.write(str(started.pid))
        wait_until(f"{self.name} to listen again", lambda: port_answers(self.port))


class Load:
    """Threads sending a steady mix: snapshot lists (metadata), overviews (metadata, analytics, storage, cache),
    uploads (storage, metadata) and proxied GETs (an upstream), each recording (start, duration, class, status)."""

    def __init__(self, port, snapshot):
        self.port, self.snapshot = port, snapshot
        self.records, self.lock, self.running = [], threading.Lock(), True
        self.uploads = {}  # acknowledged id -> SHA-256
        self.in_flight = {}  # thread index -> start of its request in flight
        self.threads = []
        self.counter = 0

    def start(self):
        plan = ["list", "overview", "overview", "upload", "upstream", "upstream"]
        for index, kind in enumerate(plan):
            thread = threading.Thread(target=self.run, args=(kind, index), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)

    def request(self, kind):
        if kind == "list":
            return "GET", "/api/v1/snapshots?limit=5", None
        if kind == "overview":
            return "GET", f"/internal/api/v1/snapshots/{self.snapshot}/overview", None
        if kind == "upstream":
            return "GET", "/svc/ping", None
        with self.lock:
            self.counter += 1
            seed = self.counter
        body = json.dumps({"kind": "NodeList", "seed": seed, "items": [], "pad": "x" * 2000}).encode()
        return "POST", f"/api/v1/snapshots?cluster=chaos-{seed}", body

    def run(self, kind, index):
        connection = None
        while self.running:
            method, path, body = self.request(kind)
            started = time.monotonic()
            with self.lock:
                self.in_flight[index] = started
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
                connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except socket.timeout:
                status, data = "hung", b""
                # Where the bytes are: a Recv-Q on the gateway's side means it stopped reading this connection.
                local = connection.sock.getsockname()[1] if connection.sock else None
                sockets = subprocess.run(["ss", "-tn", f"( sport = :{local} or dport = :{local} )"],
                                         capture_output=True, text=True).stdout if local else ""
                began = time.strftime('%H:%M:%S', time.gmtime(time.time() - (time.monotonic() - started)))
                print(f"chaos: {method} {path} hung from {began} (local port {local}):\n{sockets}", file=sys.stderr,
                      flush=True)
                connection.close()
                connection = None
            except (OSError, http.client.HTTPException) as error:
                status, data = f"error:{type(error).__name__}", b""
                if connection:
                    connection.close()
                connection = None
            duration = time.monotonic() - started
            partial = False
            if kind == "overview" and status == 200:
                partial = bool(json.loads(data).get("missing"))
            if kind == "upload" and status == 202:
                with self.lock:
                    self.uploads[json.loads(data)["id"]] = hashlib.sha256(body).hexdigest()
            with self.lock:
                self.records.append((started, duration, kind, status, partial))
                del self.in_flight[index]
            if status != 200 and status != 202:
                time.sleep(0.02)  # a failing dependency is not hammered by one thread alone


def call(port, method, path, body=None, timeout=10):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def upstream_instance():
    """A tiny upstream instance on a free port, answering /ping."""
    port = free_port()
    code = ("import http.server, sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    protocol_version = 'HTTP/1.1'\n"
            "    def do_GET(self):\n"
            "        self.send_response(200); self.send_header('Content-Length', '4'); self.end_headers()\n"
            "        self.wfile.write(b'pong')\n"
            "    def log_message(self, *a): pass\n"
            f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), H).serve_forever()\n")
    process = subprocess.Popen([sys.executable, "-c", code])
    wait_until("an upstream instance", lambda: port_answers(port))
    return port, process


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--services", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--fault-seconds", type=float, default=4)
    parser.add_argument("--report", help="write the scenario table (Markdown) here")
    parser.add_argument("--only", help="only the scenarios of this dependency (postgres, redis, clickhouse, s3)")
    arguments = parser.parse_args()
    env = {}
    with open(f"{arguments.services}/env") as file:
        for line in file:
            key, _, value = line.strip().partition("=")
            env[key] = value.strip("'")

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def proxy(target):
        relay = FaultProxy(loop, target)
        asyncio.run_coroutine_threadsafe(relay.start(), loop).result()
        return relay

    postgres = urllib.parse.urlparse(env["KUBIN_TEST_POSTGRES_URL"])
    redis = urllib.parse.urlparse(env["KUBIN_TEST_REDIS_URL"])
    clickhouse = urllib.parse.urlparse(env["KUBIN_TEST_CLICKHOUSE_URL"])
    s3_endpoint = urllib.parse.parse_qs(urllib.parse.urlparse(env["KUBIN_TEST_S3_OPEN_URL"]).query)["endpoint"][0]
    s3_port = urllib.parse.urlparse(s3_endpoint).port
    dependencies = {
        "postgres": Dependency("postgres", arguments.services, postgres.port),
        "redis": Dependency("redis", arguments.services, redis.port, redis.password),
        "clickhouse": Dependency("clickhouse", arguments.services, clickhouse.port),
        "s3": Dependency("s3-open", arguments.services, s3_port),
    }
    proxies = {name: proxy(dependency.port) for name, dependency in dependencies.items()}
    # scripts/services starts PostgreSQL for speed (fsync and synchronous commit off); chaos needs it durable.
    subprocess.run(dependencies["postgres"].control() + ["-m", "fast", "-w", "stop"], check=True,
                   stdout=subprocess.DEVNULL)
    dependencies["postgres"].start()

    instances = [upstream_instance() for _ in range(3)]
    routing = f"{arguments.work}/routing.yaml"
    with open(routing, "w") as file:
        urls = ", ".join(f"{{url: 'http://127.0.0.1:{port}'}}" for port, _ in instances)
        file.write(f"upstreams:\n  svc:\n    instances: [{urls}]\n"
                   "    healthCheck: {path: /ping, interval: 500ms, timeout: 300ms}\n"
                   "    outlierDetection: {consecutiveFailures: 2, baseEjectionTime: 30s}\n"
                   "routes:\n  - {name: svc, pathPrefix: /svc, upstream: svc, auth: none, rewritePrefix: /}\n")

    port, metrics = free_port(), free_port()
    gateway_env = dict(os.environ,
                       KUBIN_METADATA_URL=f"postgres://{postgres.username}@127.0.0.1:{proxies['postgres'].port}"
                                          f"{postgres.path}?sslmode=disable",
                       KUBIN_CACHE_URL=f"redis://:{redis.password}@127.0.0.1:{proxies['redis'].port}{redis.path}",
                       KUBIN_ANALYTICS_URL=f"clickhouse://default@127.0.0.1:{proxies['clickhouse'].port}/default",
                       KUBIN_STORAGE_URL=f"s3://kubin/chaos-{random.randrange(1 << 30)}?endpoint="
                                         f"http://127.0.0.1:{proxies['s3'].port}&region=us-east-1",
                       AWS_ACCESS_KEY_ID="open", AWS_SECRET_ACCESS_KEY="open",
                       KUBIN_STORES_BREAKER_COOL_DOWN="2s", KUBIN_READINESS_INTERVAL="250ms",
                       KUBIN_READINESS_TIMEOUT="1s", KUBIN_QUERY_TIMEOUT="5s", KUBIN_QUERY_BRANCH_TIMEOUT="2s")
    log = open(f"{arguments.work}/gateway.log", "wb")
    gateway = subprocess.Popen(
        [arguments.binary, "--data-dir", f"{arguments.work}/data", "--http-port", str(port), "--metrics-port",
         str(metrics), "--log-level", "info", "--routing-file", routing, "--auth-disabled", "true",
         "--rate-limit-query", "off", "--rate-limit-upload", "off", "--rate-limit-admin", "off"],
        env=gateway_env, stdout=log, stderr=log)
    try:
        run(arguments, gateway, port, dependencies, proxies, instances)
    finally:
        gateway.terminate()
        try:
            gateway.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gateway.kill()
        for _, process in instances:
            process.kill()


def run(arguments, gateway, port, dependencies, proxies, instances):
    wait_until("the gateway to be ready", lambda: call(port, "GET", "/readyz")[0] == 200, timeout=120)
    dump = f"{arguments.work}/dump.tar.gz"
    subprocess.run([sys.executable, "scripts/generate-dump.py", "--out", dump, "--namespaces", "3",
                    "--pods-per-namespace", "4", "--lines-per-container", "20"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(dump, "rb") as file:
        status, body = call(port, "POST", "/api/v1/snapshots?cluster=chaos", file.read())
    assert status == 202, (status, body)
    snapshot = json.loads(body)["id"]
    wait_until("the dump to be indexed", lambda: b'"ready"' in call(port, "GET", f"/api/v1/snapshots/{snapshot}")[1])

    probes = {
        "postgres": lambda: call(port, "GET", "/api/v1/snapshots?limit=1")[0] == 200,
        "redis": lambda: json.loads(call(port, "GET", "/readyz")[1])["checks"]["cache"]["status"] == "up",
        "clickhouse": lambda: (lambda answer: answer[0] == 200 and not json.loads(answer[1]).get("missing"))(
            call(port, "GET", f"/internal/api/v1/snapshots/{snapshot}/overview")),
        "s3": lambda: call(port, "GET", f"/api/v1/snapshots/{snapshot}/archive", timeout=10)[0] == 200,
    }
    load = Load(port, snapshot)
    load.start()
    time.sleep(1)
    scenarios = []
    for name, dependency in dependencies.items():
        if arguments.only and name != arguments.only:
            continue
        relay = proxies[name]
        if name == "s3":
            # moto keeps its objects in memory: a killed moto loses them, which no gateway could help. Its
            # connections are reset instead, the network's view of a killed server.
            scenarios.append((f"{name} reset", lambda relay=relay: relay.set("reset"), lambda relay=relay: relay.set("pass"),
                              name))
        else:
            scenarios.append((f"{name} killed", dependency.kill, dependency.start, name))
        scenarios.append((f"{name} hung", dependency.hang, dependency.resume, name))
        scenarios.append((f"{name} slowed (+300 ms a chunk)", lambda relay=relay: relay.set("latency"),
                          lambda relay=relay: relay.set("pass"), name))
        scenarios.append((f"{name} black-holed", lambda relay=relay: relay.set("blackhole"),
                          lambda relay=relay: relay.set("pass"), name))
    results = []
    for title, fault, restore, name in scenarios:
        results.append(scenario(arguments, title, fault, restore, probes[name], load, gateway, port))
    # One of three upstream instances killed (and left dead): retries and ejection keep its share answered.
    instance = instances[0][1]
    results.append(scenario(arguments, "upstream instance killed (1 of 3)", instance.kill, lambda: None,
                            lambda: call(port, "GET", "/svc/ping")[0] == 200, load, gateway, port,
                            upstream=True))
    load.stop()

    lost = []
    for upload, digest in sorted(load.uploads.items()):
        status, body = call(port, "GET", f"/api/v1/snapshots/{upload}/archive", timeout=30)
        if status != 200 or hashlib.sha256(body).hexdigest() != digest:
            lost.append((upload, status, call(port, "GET", f"/api/v1/snapshots/{upload}")[1][:300].decode()))
    report(arguments, results, load, lost, gateway)


def scenario(arguments, title, fault, restore, probe, load, gateway, port, upstream=False):
    began = time.monotonic()
    fault()
    time.sleep(arguments.fault_seconds)
    restore()
    returned = time.monotonic()
    # Full service: /readyz 200 and the probe answered, ten times in a row.
    recovered, streak = None, 0
    while time.monotonic() - returned < 60:
        try:
            ok = call(port, "GET", "/readyz", timeout=5)[0] == 200 and probe()
        except Exception:
            ok = False
        if ok:
            streak += 1
            recovered = recovered or time.monotonic()
            if streak == 10:
                break
        else:
            recovered, streak = None, 0
        time.sleep(0.05)
    time.sleep(1)
    ended = time.monotonic()

    # Requests started in the window are counted once they end (a hung one at the client's time-out).
    def settled():
        with load.lock:
            return all(start >= ended for start in load.in_flight.values())
    wait_until("the window's requests to end", settled, timeout=CLIENT_TIMEOUT + 10)
    with load.lock:
        # Every request that overlapped the window: one in flight when the fault began counts too.
        window = [record for record in load.records if record[0] < ended and record[0] + record[1] >= began]
    statuses = {}
    for _, _, _, status, _ in window:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    undesigned = sum(1 for record in window if isinstance(record[3], int) and record[3] >= 500
                     and record[3] not in (502, 503, 504))
    hung = sum(1 for record in window if record[3] == "hung")
    hung_kinds = sorted({record[2] for record in window if record[3] == "hung"})
    refused_fast = [record[1] for record in window if record[3] == 503]
    partial = [record[1] for record in window if record[2] == "overview" and record[4]]
    upstream_failed = sum(1 for record in window if record[2] == "upstream" and record[3] != 200)
    upstream_sent = sum(1 for record in window if record[2] == "upstream")
    result = {
        "scenario": title, "sent": len(window), "statuses": statuses, "undesigned_5xx": undesigned, "hung": hung,
        "crashed": gateway.poll() is not None, "hung_kinds": hung_kinds,
        "recovery_s": None if recovered is None else round(max(0.0, recovered - returned), 2),
        "p99_503_ms": None if not refused_fast else round(p99(refused_fast) * 1000, 1),
        "p99_partial_overview_ms": None if not partial else round(p99(partial) * 1000, 1),
    }
    if upstream:
        result["upstream_failed"] = f"{upstream_failed}/{upstream_sent}"
    print(json.dumps(result), flush=True)
    return result


def report(arguments, results, load, lost, gateway):
    lines = ["| scenario | sent | answers | undesigned 5xx | hung | crashed | recovery (s) | p99 503 (ms) | "
             "p99 partial overview (ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(result["statuses"].items()))
        if "upstream_failed" in result:
            answers += f" (upstream failed {result['upstream_failed']})"
        lines.append(f"| {result['scenario']} | {result['sent']} | {answers} | {result['undesigned_5xx']} | "
                     f"{result['hung']} | {'yes' if result['crashed'] else 'no'} | {result['recovery_s']} | "
                     f"{result['p99_503_ms']} | {result['p99_partial_overview_ms']} |")
    lines.append("")
    lines.append(f"acknowledged uploads: {len(load.uploads)}, lost: {len(lost)} {lost[:5] if lost else ''}")
    table = "\n".join(lines)
    print(table)
    if arguments.report:
        with open(arguments.report, "w") as file:
            file.write(table + "\n")
    failures = []
    for result in results:
        if result["undesigned_5xx"] or result["crashed"] or result["hung"]:
            failures.append(f"{result['scenario']}: undesigned 5xx {result['undesigned_5xx']}, hung "
                            f"{result['hung']}, crashed {result['crashed']}")
        if result["recovery_s"] is None or result["recovery_s"] > 5:
            failures.append(f"{result['scenario']}: recovery {result['recovery_s']} s (target <= 5)")
        if result.get("upstream_failed", "0/").split("/")[0] != "0":
            failures.append(f"{result['scenario']}: upstream requests failed {result['upstream_failed']}")
    if lost:
        failures.append(f"{len(lost)} acknowledged uploads lost")
    if gateway.poll() is not None:
        failures.append("the gateway exited")
    print("targets: met" if not failures else "targets NOT met:\n  " + "\n  ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
