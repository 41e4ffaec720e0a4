#!/usr/bin/env python3
"""A bounded load test of `dojo serve` on 127.0.0.1: CLIENTS concurrent clients (default 200, over 20 tenants) submit
jobs and poll them for SECONDS (default 60); then every reply is checked: no error, every accepted job listed exactly
once (none lost, none duplicated), each client's jobs its own. Prints the request count and the p50/p99 latency.

The jobs are `dojo sim` of a small model at low priority on one slot: they queue faster than they run, as on a busy
cluster; the server keeps accepting and answering while its one slot works through them.

Usage: service_load_test.py DOJO [--clients N] [--seconds S] [--json FILE]
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TENANTS = 20
JOB = {"kind": "sim", "priority": "low", "args": {"model": "mlp", "machine": "dgx-a100", "batch": 64}}


def request(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Authorization": "Bearer " + token})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            payload = json.load(reply)
            status = reply.status
    except urllib.error.HTTPError as e:
        payload, status = {"error": e.read().decode(errors="replace")}, e.code
    except Exception as e:  # connection refused or reset: an error the test reports
        payload, status = {"error": repr(e)}, 0
    return status, payload, time.perf_counter() - start


def client(base, token, seconds, record):
    deadline = time.time() + seconds
    ids, latencies, failures = [], [], []
    while time.time() < deadline:
        status, payload, latency = request(base, token, "POST", "/v1/jobs", JOB)
        latencies.append(latency)
        if status != 201:
            failures.append(f"POST /v1/jobs: {status} {payload}")
            continue
        ids.append(payload["id"])
        for _ in range(3):
            status, payload, latency = request(base, token, "GET", f"/v1/jobs/{ids[-1]}")
            latencies.append(latency)
            if status != 200 or payload.get("id") != ids[-1]:
                failures.append(f"GET /v1/jobs/{ids[-1]}: {status} {payload}")
    record.append((token, ids, latencies, failures))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dojo")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json")
    args = parser.parse_args()
    state = tempfile.mkdtemp(prefix="dojo-load-")
    server = None
    try:
        tokens = [subprocess.run([args.dojo, "tenant", "add", f"team{t}", "--state", state, "--max-queued", "1000000"],
                                 capture_output=True, text=True, check=True).stdout.strip() for t in range(TENANTS)]
        admin = subprocess.run([args.dojo, "tenant", "add", "ops", "--state", state, "--admin"],
                               capture_output=True, text=True, check=True).stdout.strip()
        server = subprocess.Popen([args.dojo, "serve", "--state", state, "--listen", "127.0.0.1:0", "--slots", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        record = []
        threads = [threading.Thread(target=client, args=(base, tokens[c % TENANTS], args.seconds, record))
                   for c in range(args.clients)]
        start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - start
        failures = [f for r in record for f in r[3]]
        accepted = {}
        for token, ids, _, _ in record:
            for i in ids:
                accepted.setdefault(token, []).append(i)
        status, listing, _ = request(base, admin, "GET", "/v1/jobs?limit=999999")
        listed = [j["id"] for j in listing.get("jobs", [])] if status == 200 else []
        all_ids = [i for ids in accepted.values() for i in ids]
        latencies = sorted(l for r in record for l in r[2])
        p50 = statistics.median(latencies) if latencies else 0.0
        p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
        problems = failures[:5]
        if len(set(all_ids)) != len(all_ids):
            problems.append("an id was handed out twice")
        if sorted(listed) != sorted(all_ids):
            problems.append(f"{len(all_ids)} jobs accepted but {len(listed)} listed")
        summary = {"clients": args.clients, "seconds": round(elapsed, 1), "requests": len(latencies),
                   "jobs_accepted": len(all_ids), "errors": len(failures), "p50_ms": round(p50 * 1e3, 2),
                   "p99_ms": round(p99 * 1e3, 2), "requests_per_s": round(len(latencies) / elapsed, 1)}
        print("service load test: " + json.dumps(summary))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2)
        if problems:
            print("service load test: FAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
