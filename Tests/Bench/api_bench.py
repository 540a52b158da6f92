#!/usr/bin/env python3
"""make bench-api (issue #13): the API's read and write paths through Bindery's own HTTPS
transport, against the same generated handlers served by Hummingbird 2 with NIOSSL.

Servers, all with mutual TLS on the same temporary PKI and loaded by the same client
(bindery-load, 64 keep-alive connections by default):
  - bindery: `bindery serve --kernel simulated` with the client's identity granted admin;
  - hummingbird: Tests/Bench/HummingbirdPeer (`PeerAPI`: the same handlers, store and simulated
    kernel; every request runs as the admin, with none of bindery's routing, authorization or
    contract checks);
  - bare: `bindery-bench http-server`, BinderyHTTP with a fixed 13-byte body (the transport's ceiling).
Workloads: GET /v1/bindings/{id}, GET /v1/vms/{id}, GET /v1/vms?limit=100, POST /v1/vms (and
GET /healthz on bindery). Every start of a server gets a fresh copy of one seeded data
directory (200 VMs, a device assigned, one binding), so the rounds see the same store.
ROUNDS rounds interleave the servers; medians and min-max are reported, with the server's CPU
per request (utime+stime from /proc). Then WALK_VMS VMs (default 20,000; 0 skips) are created
with distinct labels and a client pages through all of them (limit=100, keep-alive), against the
first page read as many times: what a full sync costs once the VMs outnumber any memo. Then
WRITES VMs (default 1,000,000; 0 skips) go through POST /v1/vms on bindery: the durable create
rate and the daemon's RSS after.
Results: a table on stdout, progress on stderr, .build/bench/api.json.
Environment: ROUNDS (3), SECONDS_PER_RUN (5), CONNECTIONS (64), WRITES (1000000), WALK_VMS (20000), SEED_VMS (200),
LOAD, BINDERY, BENCH, PEER (binaries).
"""
import datetime, json, os, platform, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench  # noqa: E402
from http_bench import cpu_seconds, free_port, make_pki, spread  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE = os.path.join(ROOT, ".build/release")
LOAD = os.environ.get("LOAD", f"{RELEASE}/bindery-load")
BINDERY = os.environ.get("BINDERY", f"{RELEASE}/bindery")
BENCH = os.environ.get("BENCH", f"{RELEASE}/bindery-bench")
PEER = os.environ.get("PEER", os.path.join(ROOT, "Tests/Bench/HummingbirdPeer/.build/release/bindery-hummingbird-peer"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "5"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
WRITES = int(os.environ.get("WRITES", "1000000"))
WALK_VMS = int(os.environ.get("WALK_VMS", "20000"))
SEED_VMS = int(os.environ.get("SEED_VMS", "200"))
SETTLE = float(os.environ.get("SETTLE_SECONDS", "1"))  # after a start, while the reconciler reopens the seeded VMs
WORK = os.path.join(ROOT, ".build/bench/api")  # on disk, not tmpfs: the writes are durable
CALLER = "spiffe://bench/client"
VM_BODY = '{"name":"%s-{n}","labels":{"bench":"api"},"memory":[{"guestAddress":"0x0","size":1073741824}]}'
http_bench.BENCH = BENCH

commands = {}


def log(message):
    print(message, file=sys.stderr, flush=True)


def memory_kib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fresh_data(template, name):
    """A copy of the seeded data directory for one server start (no sockets)."""
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(template, path, ignore=shutil.ignore_patterns("*.sock"))
    return path


class Bindery:
    name = "bindery"

    def __init__(self, pki):
        self.pki = pki

    def start(self, data):
        self.port = free_port()
        self.data = data
        command = [BINDERY, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{self.port}", "--kernel", "simulated",
                   "--tls-cert", f"{self.pki}/server.pem", "--tls-key", f"{self.pki}/server-key.pem",
                   "--client-ca", f"{self.pki}/ca.pem", "--roles-file", f"{self.pki}/roles.json"]
        commands[self.name] = " ".join(command)
        self.log_path = f"{data}.log"
        self.proc = subprocess.Popen(command, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if "serving https" in open(self.log_path).read():
                return self
            if self.proc.poll() is not None:
                sys.exit("bindery serve exited: " + open(self.log_path).read())
            time.sleep(0.05)
        sys.exit("bindery serve did not come up")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Peer(Bindery):
    name = "hummingbird"

    def start(self, data):
        self.port = free_port()
        self.data = data
        command = [PEER, "--data-dir", data, "--listen", f"127.0.0.1:{self.port}", "--certificate", f"{self.pki}/server.pem",
                   "--key", f"{self.pki}/server-key.pem", "--ca", f"{self.pki}/ca.pem"]
        commands[self.name] = " ".join(command)
        self.log_path = f"{data}.log"
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), text=True)
        line = self.proc.stdout.readline()
        if "serving https" not in line:
            self.proc.wait(timeout=10)
            sys.exit(f"{PEER} did not come up: {line!r} " + open(self.log_path).read())
        return self


def load(server, path, method=None, body=None, seconds=SECONDS, connections=CONNECTIONS):
    command = [LOAD, "keepalive", str(server.port), f"{server.pki}/ca.pem", f"{server.pki}/client.pem",
               f"{server.pki}/client-key.pem", str(connections), str(seconds), path] + ([method, body] if method else [])
    before = cpu_seconds(server.proc.pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["server_cpu_s"] = cpu_seconds(server.proc.pid) - before
    result["cpu_us_per_request"] = result["server_cpu_s"] / max(result["requests"], 1) * 1e6
    return result


def curl(pki, port, method, path, body=None):
    command = ["curl", "-sS", "--fail", "--cacert", f"{pki}/ca.pem", "--cert", f"{pki}/client.pem", "--key", f"{pki}/client-key.pem",
               "-X", method, f"https://localhost:{port}{path}"]
    if body is not None:
        command[-1:-1] = ["-H", "Content-Type: application/json", "--data-binary", body]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout or "null")


def seed(pki):
    """The template data directory: SEED_VMS VMs, a device assigned to the first, one binding on it."""
    template = os.path.join(WORK, "template")
    shutil.rmtree(template, ignore_errors=True)
    server = Bindery(pki).start(template)
    try:
        vms = [curl(pki, server.port, "POST", "/v1/vms", VM_BODY.replace("{n}", str(i)) % "seed")["id"] for i in range(SEED_VMS)]
        vm = vms[0]
        device = next(d["address"] for d in curl(pki, server.port, "GET", "/v1/devices")["items"] if d["assignable"])
        curl(pki, server.port, "PUT", f"/v1/vms/{vm}/devices/{device}", '{"managed":false}')
        binding = curl(pki, server.port, "POST", "/v1/bindings", json.dumps(
            {"vm": vm, "device": device, "type": "guest-page-table", "guestPasid": 1, "format": "intel-vtd", "version": 1,
             "pageTable": {"address": "0x1000", "addressWidth": 48}}))["id"]
        deadline = time.time() + 30  # let the reconciler bind it, so the reads see a settled binding
        while curl(pki, server.port, "GET", f"/v1/bindings/{binding}")["status"]["phase"] != "Bound" and time.time() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    return template, vm, binding


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "kernel": platform.release(), "cpu": model}


def main():
    for binary in (LOAD, BINDERY, BENCH, PEER):
        if not os.access(binary, os.X_OK):
            sys.exit(f"missing {binary} (make bench-api builds them)")
    os.makedirs(WORK, exist_ok=True)
    pki = tempfile.mkdtemp(prefix="bench-api-pki-")
    make_pki(pki)
    with open(f"{pki}/roles.json", "w") as f:
        json.dump({f"uri:{CALLER}": "admin"}, f)
    template, vm, binding = seed(pki)
    log(f"seeded {template}: {SEED_VMS} VMs, binding {binding} on {vm}")

    workloads = [("GET binding", f"/v1/bindings/{binding}", None), ("GET VM", f"/v1/vms/{vm}", None),
                 ("list VMs (100)", "/v1/vms?limit=100", None), ("POST VM", "/v1/vms", "POST")]
    servers = [Bindery(pki), Peer(pki)]
    bare = http_bench.Server("bare", pki)
    runs = {}  # (server, workload) -> [result per round]

    def record(server_name, workload, result):
        runs.setdefault((server_name, workload), []).append(result)
        log(f"  {server_name:11} {workload:15} {result['rps']:8.0f} req/s  p50 {result['p50_us'] / 1000:6.2f} ms  "
            f"p99 {result['p99_us'] / 1000:6.2f} ms  {result['cpu_us_per_request']:6.1f} µs CPU/req  errors {result['errors']}")

    for round_number in range(1, ROUNDS + 1):
        log(f"round {round_number}/{ROUNDS}")
        bare.start()
        try:
            result = load(bare, "/")
        finally:
            bare.stop()
        record("bare", "GET / (13 bytes)", result)
        for server in servers:
            server.start(fresh_data(template, server.name))
            time.sleep(SETTLE)
            try:
                if server.name == "bindery":
                    record(server.name, "GET /healthz", load(server, "/healthz"))
                for name, path, method in workloads:
                    body = VM_BODY % f"r{round_number}" if method else None
                    record(server.name, name, load(server, path, method, body))
            finally:
                server.stop()
    commands["bare"] = f"{BENCH} http-server --listen 127.0.0.1:PORT --certificate server.pem --key server-key.pem --ca ca.pem"
    commands["load"] = f"{LOAD} keepalive PORT ca.pem client.pem client-key.pem {CONNECTIONS} {SECONDS} PATH [POST BODY]"

    summary = {}
    for (server_name, workload), results in runs.items():
        summary.setdefault(server_name, {})[workload] = {
            "rps": spread([r["rps"] for r in results]),
            "p50_us": spread([r["p50_us"] for r in results]),
            "p99_us": spread([r["p99_us"] for r in results]),
            "cpu_us_per_request": spread([r["cpu_us_per_request"] for r in results]),
            "requests": sum(r["requests"] for r in results),
            "errors": sum(r["errors"] for r in results),
        }

    def median(server_name, workload, key="rps"):
        return summary[server_name][workload][key]["median"]

    bare_rps = median("bare", "GET / (13 bytes)")
    ratios = {}
    for name, _, _ in workloads:
        ratios[name] = {"bindery_over_hummingbird_rps": median("bindery", name) / max(median("hummingbird", name), 1e-9),
                        "hummingbird_over_bindery_cpu": median("hummingbird", name, "cpu_us_per_request")
                        / max(median("bindery", name, "cpu_us_per_request"), 1e-9),
                        "bindery_over_bare_rps": median("bindery", name) / bare_rps}
    single = "GET VM"
    list_cost = {"cpu": median("bindery", "list VMs (100)", "cpu_us_per_request") / max(median("bindery", single, "cpu_us_per_request"), 1e-9),
                 "inverse_rps": median("bindery", single) / max(median("bindery", "list VMs (100)"), 1e-9)}

    walk = walk_phase(pki, template, median("bindery", "POST VM")) if WALK_VMS > 0 else None

    writes = None
    if WRITES > 0:
        writes = write_phase(pki, template, median("bindery", "POST VM"))

    print(f"\n{ROUNDS} round(s), {SECONDS:g} s per run, {CONNECTIONS} keep-alive connections; medians (min–max)\n")
    print("| server | workload | req/s | p50 ms | p99 ms | server CPU µs/req | errors | bindery ÷ hummingbird req/s | ÷ bare req/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for server_name, per_workload in summary.items():
        for workload, s in per_workload.items():
            ratio = ratios.get(workload, {})
            print(f"| {server_name} | {workload} | {s['rps']['median']:.0f} ({s['rps']['min']:.0f}–{s['rps']['max']:.0f}) | "
                  f"{s['p50_us']['median'] / 1000:.2f} | {s['p99_us']['median'] / 1000:.2f} | "
                  f"{s['cpu_us_per_request']['median']:.1f} ({s['cpu_us_per_request']['min']:.1f}–{s['cpu_us_per_request']['max']:.1f}) | "
                  f"{s['errors']} | "
                  + (f"{ratio['bindery_over_hummingbird_rps']:.2f}×" if server_name == "bindery" and ratio else "") + " | "
                  + (f"{s['rps']['median'] / bare_rps:.2f}×" if server_name != "bare" else "") + " |")

    goals = []

    def goal(text, ok):
        goals.append({"goal": text, "met": ok if ok is None else bool(ok)})  # None: not measured at the stated size

    for name in ("GET binding", "list VMs (100)", "POST VM"):
        goal(f"{name}: bindery ≥ 1.3 × hummingbird req/s ({ratios[name]['bindery_over_hummingbird_rps']:.2f}×)",
             ratios[name]["bindery_over_hummingbird_rps"] >= 1.3)
    for name in ("GET binding", "GET VM"):
        goal(f"{name}: ≥ 0.5 × bare req/s ({ratios[name]['bindery_over_bare_rps']:.2f}×)", ratios[name]["bindery_over_bare_rps"] >= 0.5)
        cpu = median("bindery", name, "cpu_us_per_request")
        goal(f"{name}: ≤ 25 µs server CPU/req ({cpu:.1f} µs)", cpu <= 25)
        p99 = median("bindery", name, "p99_us") / 1000
        goal(f"{name}: p99 ≤ 5 ms at {CONNECTIONS} connections ({p99:.2f} ms)", p99 <= 5)
    goal(f"list of 100 ≤ 4 × a single get: CPU/req {list_cost['cpu']:.2f}×, inverse req/s {list_cost['inverse_rps']:.2f}×",
         list_cost["cpu"] <= 4 and list_cost["inverse_rps"] <= 4)
    if writes:
        goal(f"RSS ≤ 150 MiB after 1,000,000 writes ({writes['rss_after_mib']:.0f} MiB after {writes['created']:,})",
             writes["rss_after_mib"] <= 150 if writes["created"] >= 1_000_000 else None)
        print(f"\nwrites: {writes['created']:,} VMs created through POST /v1/vms at {CONNECTIONS} connections in "
              f"{writes['seconds']:.0f} s: {writes['created_per_second']:,.0f} created/s, {writes['errors']} errors; "
              f"bindery RSS {writes['rss_start_mib']:.0f} MiB at start, {writes['rss_peak_mib']:.0f} MiB peak sampled, "
              f"{writes['rss_after_mib']:.0f} MiB after; database {writes['database_mib']:.0f} MiB")
    if walk:
        print(f"\nwalk: {walk['vms']:,} VMs, {walk['pages']} pages of 100 read in order: {walk['walk_cpu_us_per_page']:.0f} µs server CPU "
              f"and {walk['walk_ms_per_page']:.2f} ms per page; the first page read {walk['pages']} times: "
              f"{walk['first_page_cpu_us_per_page']:.0f} µs and {walk['first_page_ms_per_page']:.2f} ms per page")
    print("\n| goal | met |\n|---|---|")
    for g in goals:
        print(f"| {g['goal']} | {'n/a' if g['met'] is None else 'yes' if g['met'] else 'no'} |")

    git = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout.strip())
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": git, "dirty": dirty,
              "machine": machine(), "rounds": ROUNDS, "seconds_per_run": SECONDS, "connections": CONNECTIONS, "seed_vms": SEED_VMS,
              "commands": commands, "summary": summary, "ratios": ratios, "list_vs_single_get": list_cost,
              "bare_rps": bare_rps, "walk": walk, "writes": writes, "goals": goals,
              "runs": {f"{s}/{w}": r for (s, w), r in runs.items()}}
    with open(os.path.join(ROOT, ".build/bench/api.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"wrote {os.path.join(ROOT, '.build/bench/api.json')}")


def create_in_runs(server, count, rate, body, what):
    """POST /v1/vms until `count` succeeded, in runs of bindery-load sized to what is left at the
    last run's rate (the rounds' median first; at most 60 s each), `body(run)` the run's body;
    yields each run's result with the total created so far."""
    created, run, rate = 0, 0, max(rate, 1.0)
    while created < count:
        seconds = min(max((count - created) / rate, 0.5), 60.0)
        result = load(server, "/v1/vms", "POST", body(run), seconds=f"{seconds:.2f}")
        if result["requests"] == 0:
            sys.exit(f"{what}: no create succeeded: " + json.dumps(result))
        run, created, rate = run + 1, created + result["requests"], max(result["rps"], 1.0)
        yield result, created


def walk_phase(pki, template, rate):
    """WALK_VMS creates (distinct labels), then every page of VMs read in order by one keep-alive client,
    against the first page read as many times: server CPU and wall time per page."""
    import http.client, ssl
    data = fresh_data(template, "walk")
    server = Bindery(pki).start(data)
    time.sleep(SETTLE)
    try:
        body = '{"name":"walk-{n}","labels":{"bench":"walk","shard":"s{n}"},"memory":[{"guestAddress":"0x0","size":1073741824}]}'
        created = errors = 0
        for result, created in create_in_runs(server, WALK_VMS, rate, lambda run: body.replace("{n}", f"{run}-{{n}}"), "walk"):
            errors += result["errors"]
        # Until the reconciler has accepted them all: the daemon idle for a second.
        deadline = time.time() + 60
        while time.time() < deadline:
            before = cpu_seconds(server.proc.pid)
            time.sleep(1)
            if cpu_seconds(server.proc.pid) - before < 0.02:
                break
        context = ssl.create_default_context(cafile=f"{pki}/ca.pem")
        context.load_cert_chain(f"{pki}/client.pem", f"{pki}/client-key.pem")
        connection = http.client.HTTPSConnection("localhost", server.port, context=context)

        def get(path):
            connection.request("GET", path)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                sys.exit(f"walk: {path}: {response.status} {payload[:200]!r}")
            return json.loads(payload)

        pages, after = 0, None
        cpu, wall = cpu_seconds(server.proc.pid), time.time()
        while True:
            page = get("/v1/vms?limit=100" + (f"&after={after}" if after else ""))
            pages += 1
            cursor = page.get("nextCursor")
            if cursor is not None and after is not None and cursor <= after or pages > (created + SEED_VMS) // 100 + 2:
                sys.exit(f"walk: the cursor did not advance ({after!r} then {cursor!r}, page {pages})")
            after = cursor
            if not after:
                break
        walk_cpu, walk_wall = cpu_seconds(server.proc.pid) - cpu, time.time() - wall
        cpu, wall = cpu_seconds(server.proc.pid), time.time()
        for _ in range(pages):
            get("/v1/vms?limit=100")
        first_cpu, first_wall = cpu_seconds(server.proc.pid) - cpu, time.time() - wall
        connection.close()
    finally:
        server.stop()
    shutil.rmtree(data, ignore_errors=True)
    log(f"  walk: {created + SEED_VMS:,} VMs ({errors} failed creates), {pages} pages: {walk_cpu / pages * 1e6:.0f} µs CPU/page walking, "
        f"{first_cpu / pages * 1e6:.0f} on the first page")
    return {"vms": created + SEED_VMS, "create_errors": errors, "pages": pages, "walk_cpu_us_per_page": walk_cpu / pages * 1e6, "walk_ms_per_page": walk_wall / pages * 1e3,
            "first_page_cpu_us_per_page": first_cpu / pages * 1e6, "first_page_ms_per_page": first_wall / pages * 1e3}


def write_phase(pki, template, rate):
    """WRITES creates through POST /v1/vms on bindery, in runs of bindery-load sized to what is left."""
    data = fresh_data(template, "writes")
    server = Bindery(pki).start(data)
    time.sleep(SETTLE)
    try:
        rss_start = memory_kib(server.proc.pid) / 1024
        peak = rss_start
        created = errors = 0
        elapsed = 0.0
        for result, created in create_in_runs(server, WRITES, rate, lambda run: VM_BODY % f"w{run}", "writes"):
            errors += result["errors"]
            elapsed += result["seconds"]
            peak = max(peak, memory_kib(server.proc.pid) / 1024)
            log(f"  writes: {created:,}/{WRITES:,} ({result['rps']:.0f}/s, RSS {memory_kib(server.proc.pid) / 1024:.0f} MiB)")
        time.sleep(1)  # let the reconciler catch up before reading RSS
        rss_after = memory_kib(server.proc.pid) / 1024
        database = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.startswith("bindery.sqlite"))
    finally:
        server.stop()
    shutil.rmtree(data, ignore_errors=True)
    return {"created": created, "errors": errors, "seconds": elapsed, "created_per_second": created / max(elapsed, 1e-9),
            "rss_start_mib": rss_start, "rss_peak_mib": max(peak, rss_after), "rss_after_mib": rss_after,
            "database_mib": database / 2**20}


if __name__ == "__main__":
    main()
