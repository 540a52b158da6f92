#!/usr/bin/env python3
"""make bench-audit: the audit history at 1,000,000 events, through a release `bindery serve`.

Fills a data dir with `bindery-bench audit-fill` (through AuditChain.append, so hashes are
real), then measures through the API with mutual TLS and the project's client (bindery-load):
  - each documented filter of GET /v1/audit, alone and with after=500000: a 100-event page,
    latency at 1 connection (p50/p99: about the server's time) and req/s at 64 connections,
    with the server's CPU per request from /proc;
  - the NDJSON export of the whole history: events/s and the server's RSS growth, sampled;
  - GET /v1/audit/verify and `bindery audit verify`.
Results: a table on stdout and .build/bench/audit.json. EVENTS, SECONDS_PER_RUN override.
"""
import json, os, signal, subprocess, sys, threading, time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_bench import cpu_seconds, free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE = os.path.join(ROOT, ".build/release")
EVENTS = int(os.environ.get("EVENTS", "1000000"))
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "3"))
DATA = os.path.join(ROOT, ".build/bench/audit")


def memory_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fill():
    marker = os.path.join(DATA, f"filled-{EVENTS}")
    if os.path.exists(marker):
        print(f"reusing {DATA} ({EVENTS} events); rm -rf it to refill", file=sys.stderr)
        return None
    subprocess.run(["rm", "-rf", DATA], check=True)
    out = subprocess.run([f"{RELEASE}/bindery-bench", "audit-fill", "--data-dir", DATA, "--events", str(EVENTS)],
                         check=True, capture_output=True, text=True).stdout
    open(marker, "w").close()
    return json.loads(out.strip().splitlines()[-1])


def serve(port):
    log = open(os.path.join(DATA, "serve.log"), "w")
    server = subprocess.Popen([f"{RELEASE}/bindery", "serve", "--data-dir", DATA, "--listen", f"127.0.0.1:{port}",
                               "--kernel", "simulated"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if "serving https" in open(os.path.join(DATA, "serve.log")).read():
            return server
        if server.poll() is not None:
            sys.exit("bindery serve exited: " + open(os.path.join(DATA, "serve.log")).read())
        time.sleep(0.1)
    sys.exit("bindery serve did not come up")


def pki():
    d = os.path.join(DATA, "pki")
    return [f"{d}/ca.pem", f"{d}/admin.pem", f"{d}/admin-key.pem"]


def load(port, server, path, connections):
    before = cpu_seconds(server.pid)
    out = subprocess.run([f"{RELEASE}/bindery-load", "keepalive", str(port), *pki(), str(connections), str(SECONDS), path],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    result["cpu_us_per_request"] = (cpu_seconds(server.pid) - before) / max(result["requests"], 1) * 1e6
    return result


def curl(port, path, *extra):
    ca, cert, key = pki()
    return subprocess.run(["curl", "-sS", "--fail", "--cacert", ca, "--cert", cert, "--key", key, *extra,
                           f"https://localhost:{port}{path}"], check=True, capture_output=True, text=True).stdout


def main():
    filled = fill()
    port = free_port()
    server = serve(port)
    try:
        results = {"events": EVENTS, "fill": filled, "queries": [], "commit": subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()}
        filters = [("plain page", ""), ("actor", "actor=" + urllib.parse.quote("spiffe://fleet/nova", safe="")),
                   ("action", "action=vm.create"), ("resourceType", "resourceType=vm"), ("resourceId", "resourceId=vm-123"),
                   ("outcome=denied (1 in 1,000)", "outcome=denied"), ("outcome=failed (no match)", "outcome=failed"),
                   ("resourceType+action", "resourceType=vm&action=vm.create"),
                   ("since/until (a range holding everything)", "since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z")]
        print("| filter | after | 1 conn p50 ms | 1 conn p99 ms | 64 conn req/s | CPU µs/req |")
        print("|---|---|---:|---:|---:|---:|")
        for name, query in filters:
            for after in ["", "after=500000"]:
                path = "/v1/audit?limit=100" + "".join("&" + q for q in [query, after] if q)
                single = load(port, server, path, 1)
                many = load(port, server, path, 64)
                if single["errors"] or many["errors"]:
                    sys.exit(f"{path}: errors {single['errors']}/{many['errors']}")
                results["queries"].append({"filter": name, "path": path, "p50_ms": single["p50_us"] / 1000,
                                           "p99_ms": single["p99_us"] / 1000, "rps_64": many["rps"],
                                           "cpu_us_per_request": many["cpu_us_per_request"]})
                print(f"| {name} | {after or '-'} | {single['p50_us'] / 1000:.2f} | {single['p99_us'] / 1000:.2f} | "
                      f"{many['rps']:.0f} | {many['cpu_us_per_request']:.0f} |", flush=True)

        ca, cert, key = pki()
        runs = []
        for _ in range(3):
            baseline = memory_kib(server.pid, "VmRSS")
            peak = [baseline]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], memory_kib(server.pid, "VmRSS"))
                    time.sleep(0.05)
            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.time()
            exported = subprocess.run(["curl", "-sS", "--fail", "--cacert", ca, "--cert", cert, "--key", key, "-H",
                                       "Accept: application/x-ndjson", "-o", "/dev/null", "-w", "%{size_download}",
                                       f"https://localhost:{port}/v1/audit"], check=True, capture_output=True, text=True).stdout
            seconds = time.time() - started
            done.set()
            sampler.join()
            runs.append({"seconds": seconds, "bytes": int(exported), "events_per_second": EVENTS / seconds,
                         "rss_baseline_mib": baseline / 1024, "rss_peak_mib": peak[0] / 1024, "rss_growth_mib": (peak[0] - baseline) / 1024})
        rates = sorted(r["events_per_second"] for r in runs)
        growth = max(r["rss_growth_mib"] for r in runs)
        results["export"] = {"runs": runs, "median_events_per_second": rates[1]}
        print(f"\nexport ×3: {EVENTS} events, {runs[0]['bytes'] / 2**20:.0f} MiB each; median {rates[1]:,.0f} events/s "
              f"({rates[0]:,.0f}–{rates[2]:,.0f}); server RSS {runs[0]['rss_baseline_mib']:.0f} MiB before, at most +{growth:.0f} MiB during")

        started = time.time()
        verification = json.loads(curl(port, "/v1/audit/verify"))
        api_seconds = time.time() - started
        results["verify_api"] = {"seconds": api_seconds, **verification}
        print(f"GET /v1/audit/verify: {api_seconds:.2f} s, valid {verification['valid']}, {verification['events']} events")
        results["rss_after_mib"] = memory_kib(server.pid, "VmRSS") / 1024
        print(f"server RSS after everything: {results['rss_after_mib']:.0f} MiB")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    started = time.time()
    cli = subprocess.run([f"{RELEASE}/bindery", "audit", "verify", "--data-dir", DATA], capture_output=True, text=True)
    results["verify_cli"] = {"seconds": time.time() - started, "exit": cli.returncode}
    print(f"bindery audit verify: {results['verify_cli']['seconds']:.2f} s, exit {cli.returncode}")
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    json.dump(results, open(os.path.join(ROOT, ".build/bench/audit.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
