#!/usr/bin/env python3
"""make bench-http: Bindery's HTTPS server against nginx, same certificates, same client.

Both servers require a client certificate (wrk cannot present one), so the load comes from
bindery-load (Sources/BinderyLoad). Rounds interleave the servers; medians and min-max are
reported, with the servers' CPU time per request read from /proc.
"""
import json, os, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(ROOT, ".build/release/bindery-load")
BENCH = os.path.join(ROOT, ".build/release/bindery-bench")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
IDLE = int(os.environ.get("IDLE_CONNECTIONS", "10000"))
TICKS = os.sysconf("SC_CLK_TCK")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{d}/ca-key.pem",
            "-out", f"{d}/ca.pem", "-days", "2", "-subj", "/CN=bench-ca", "-addext", "basicConstraints=critical,CA:TRUE")
    for name, ext in [("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "subjectAltName=URI:spiffe://bench/client")]:
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(ext + "\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{d}/{name}-key.pem",
                "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca-key.pem", "-CAcreateserial",
                "-out", f"{d}/{name}.pem", "-days", "2", "-extfile", f"{d}/{name}.ext")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pids_of(root_pid):
    """The process and its children (nginx workers)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(root_pid)], capture_output=True, text=True).stdout.split()
    return [root_pid] + [int(p) for p in out]


def cpu_seconds(root_pid):
    total = 0
    for pid in pids_of(root_pid):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / TICKS


def rss_mib(root_pid):
    total = 0
    for pid in pids_of(root_pid):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


class Server:
    def __init__(self, name, pki, workers=None, loops=None):
        self.name, self.pki, self.workers, self.loops = name, pki, workers, loops

    def start(self):
        self.port = free_port()
        if self.workers is None:
            self.proc = subprocess.Popen([BENCH, "http-server", "--listen", f"127.0.0.1:{self.port}", "--certificate",
                                          f"{self.pki}/server.pem", "--key", f"{self.pki}/server-key.pem", "--ca", f"{self.pki}/ca.pem"]
                                         + (["--loops", str(self.loops)] if self.loops else []),
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.proc.stdout.readline()
        else:
            prefix = tempfile.mkdtemp(prefix="bench-nginx-")
            conf = f"""
worker_processes {self.workers};
worker_rlimit_nofile 40000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log crit;
user root;
events {{ worker_connections 20000; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix}; uwsgi_temp_path {prefix}; scgi_temp_path {prefix};
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {self.pki}/server.pem;
    ssl_certificate_key {self.pki}/server-key.pem;
    ssl_client_certificate {self.pki}/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    location / {{ default_type text/plain; return 200 "hello, world\\n"; }}
  }}
}}
"""
            with open(f"{prefix}/nginx.conf", "w") as f:
                f.write(conf)
            self.proc = subprocess.Popen(["nginx", "-p", prefix, "-c", f"{prefix}/nginx.conf", "-g", "daemon off;"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM if self.workers is None else signal.SIGQUIT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(mode, server, connections, seconds):
    before = cpu_seconds(server.proc.pid)
    out = subprocess.run([LOAD, mode, str(server.port), f"{server.pki}/ca.pem", f"{server.pki}/client.pem",
                          f"{server.pki}/client-key.pem", str(connections), str(seconds)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = cpu_seconds(server.proc.pid) - before
    work = result["requests"] if mode == "keepalive" else result["handshakes"]
    result["server_cpu_us_per_op"] = result["server_cpu_s"] / max(work, 1) * 1e6
    return result


def idle_rss(server, count):
    proc = subprocess.Popen([LOAD, "idle", str(server.port), f"{server.pki}/ca.pem", f"{server.pki}/client.pem",
                             f"{server.pki}/client-key.pem", str(count), "120"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    held = json.loads(line) if line else {"held": 0}
    time.sleep(1)
    rss = rss_mib(server.proc.pid)
    proc.kill()
    proc.wait()
    return held, rss


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "samples": values}


def main():
    pki = tempfile.mkdtemp(prefix="bench-pki-")
    make_pki(pki)
    servers = [Server("bindery", pki), Server("bindery-1-loop", pki, loops=1), Server("nginx-1-worker", pki, 1),
               Server("nginx-2-workers", pki, 2)]
    results = {s.name: {"keepalive": [], "handshake": []} for s in servers}
    for round_number in range(1, ROUNDS + 1):
        for server in servers:
            server.start()
            try:
                ka = load("keepalive", server, CONNECTIONS, SECONDS)
                hs = load("handshake", server, 32, SECONDS / 2)
            finally:
                server.stop()
            results[server.name]["keepalive"].append(ka)
            results[server.name]["handshake"].append(hs)
            print(f"round {round_number} {server.name}: {ka['rps']:.0f} req/s (p50 {ka['p50_us']:.0f} us, p99 {ka['p99_us']:.0f} us, "
                  f"{ka['server_cpu_us_per_op']:.1f} us CPU/req, errors {ka['errors']}); {hs['handshakes_per_second']:.0f} handshakes/s",
                  file=sys.stderr, flush=True)
    memory = {}
    for server in (servers[0], servers[3]):
        server.start()
        try:
            held, rss = idle_rss(server, IDLE)
        finally:
            server.stop()
        memory[server.name] = {"held": held.get("held", 0), "rss_mib": rss}
        print(f"{server.name}: {held.get('held', 0)} idle TLS connections, {rss:.0f} MiB resident", file=sys.stderr, flush=True)

    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "rps": spread([r["rps"] for r in runs["keepalive"]]),
            "p50_us": spread([r["p50_us"] for r in runs["keepalive"]]),
            "p99_us": spread([r["p99_us"] for r in runs["keepalive"]]),
            "cpu_us_per_request": spread([r["server_cpu_us_per_op"] for r in runs["keepalive"]]),
            "handshakes_per_second": spread([r["handshakes_per_second"] for r in runs["handshake"]]),
            "cpu_us_per_handshake": spread([r["server_cpu_us_per_op"] for r in runs["handshake"]]),
            "errors": sum(r["errors"] for r in runs["keepalive"] + runs["handshake"]),
        }
    base = summary["nginx-2-workers"]["rps"]["median"]
    print(f"| server | keep-alive req/s (min–max) | vs nginx 2 workers | p50 µs | p99 µs | server CPU µs/req | full handshakes/s | server CPU µs/handshake | idle 10k conns RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in summary.items():
        mem = memory.get(name)
        memory_text = f"{mem['rss_mib']:.0f} MiB ({mem['held']} held)" if mem else "—"
        print(f"| {name} | {s['rps']['median']:.0f} ({s['rps']['min']:.0f}–{s['rps']['max']:.0f}) | {s['rps']['median'] / base:.2f}× | "
              f"{s['p50_us']['median']:.0f} | {s['p99_us']['median']:.0f} | {s['cpu_us_per_request']['median']:.1f} | "
              f"{s['handshakes_per_second']['median']:.0f} | {s['cpu_us_per_handshake']['median']:.0f} | "
              f"{memory_text} |")
    os.makedirs(os.path.join(ROOT, ".build/bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".build/bench/http.json"), "w") as f:
        json.dump({"summary": summary, "memory": memory, "rounds": ROUNDS, "seconds": SECONDS, "connections": CONNECTIONS}, f, indent=2)


if __name__ == "__main__":
    main()
