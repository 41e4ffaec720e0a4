#!/usr/bin/env python3
"""`kill -9` of the service at random points, repeated: the server, or one of its job processes, is killed every
0.5-2.5 s for a while, the server started again whenever it was the one killed. Then every job must end succeeded
(nothing lost), no job may ever have had two processes at once nor left one running after its parent died (nothing
run twice), the listing must hold exactly the jobs submitted, and every train job must end with the weights of one
uninterrupted `dojo train` of its arguments (resumed from its checkpoints, not started over or run twice into the
same files); one of them runs on two MPI ranks (`mpirun`), checked against `mpirun -np 2 dojo train`.

Usage: service_kill_test.py DOJO [--seconds 30] [--seed 7]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from service_process import ServeProcess

MAX_KILLS = 5  # a job killed more often than this fails (runner.h kMaxKills): the test kills each job at most so often
TRAIN = {"model": "lenet", "epochs": 2, "train_limit": 19200, "test_limit": 200, "checkpoint_every": 25}


def fail(message):
    sys.exit("kill test: " + message)


def job_processes(server_pid, state):
    """{job id: [pids]} of the server's job processes (their command lines name STATE/jobs/ID; a job on MPI ranks is
    its mpirun), and the pids of any job process orphaned (its parent gone: adopted by init)."""
    jobs, orphans = {}, []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            parts = arg.decode(errors="replace").split(state + "/jobs/")
            if len(parts) == 2 and parts[1].split("/")[0].isdigit():
                if parent == server_pid:
                    jobs.setdefault(int(parts[1].split("/")[0]), []).append(int(entry))
                elif parent == 1:
                    orphans.append(int(entry))
                break
    return jobs, orphans


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dojo")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    state = tempfile.mkdtemp(prefix="dojo-kill-")
    server = ServeProcess(args.dojo, state, ["--slots", "2"])
    try:
        token = subprocess.run([args.dojo, "tenant", "add", "alice", "--state", state, "--max-slots", "2"],
                               capture_output=True, text=True, check=True).stdout.strip()
        server.start()
        submitted = []
        for k in range(8):
            body = ({"kind": "train", "args": TRAIN} if k % 2 == 0 else
                    {"kind": "sim", "args": {"model": "resnet50", "machine": "dgx-a100", "batch": 256}})
            submitted.append((server.submit(token, body), body["kind"]))
        # and one data-parallel job on two MPI ranks: its ranks must die with it, never left training unseen
        ranks_job = server.submit(token, {"kind": "train", "args": TRAIN, "slots": 2, "ranks": 2})
        submitted.append((ranks_job, "train-ranks"))

        kills = {"server": 0, "job": 0}
        kills_of = {}  # job id -> times this test killed its process
        deadline = time.time() + args.seconds
        while time.time() < deadline:
            pause_end = time.time() + chance.uniform(0.5, 2.5)
            while time.time() < pause_end:  # watch for two processes of one job, or orphans, meanwhile
                running, orphans = job_processes(server.process.pid, state)
                for job, pids in running.items():
                    if len(pids) > 1:
                        fail(f"job {job} runs twice at once: processes {pids}")
                if orphans:
                    time.sleep(0.5)  # a process whose parent was just killed takes a moment to die
                    _, still = job_processes(server.process.pid, state)
                    if set(orphans) & set(still):
                        fail(f"job processes {sorted(set(orphans) & set(still))} outlived their parent")
                time.sleep(0.05)
            running, _ = job_processes(server.process.pid, state)
            killable = sorted(job for job in running if kills_of.get(job, 0) < MAX_KILLS)
            if killable and chance.random() < 0.5:
                job = chance.choice(killable)
                os.kill(running[job][0], signal.SIGKILL)
                kills["job"] += 1
                kills_of[job] = kills_of.get(job, 0) + 1
            else:
                server.kill(signal.SIGKILL)
                server.start()
                kills["server"] += 1

        finish_by = time.time() + 240
        jobs = []
        while time.time() < finish_by:
            jobs = server.call(token, "GET", "/v1/jobs")
            jobs = jobs["jobs"] if isinstance(jobs, dict) else jobs
            if all(j["state"] not in ("queued", "running", "preempted") for j in jobs):
                break
            time.sleep(0.5)
        ids = sorted(j["id"] for j in jobs)
        if ids != sorted(job for job, _ in submitted):
            fail(f"the listing holds jobs {ids}, submitted {sorted(job for job, _ in submitted)}")
        lost = [j for j in jobs if j["state"] != "succeeded"]
        if lost:
            fail(f"jobs that did not succeed: {[(j['id'], j['state'], j.get('error')) for j in lost]}")
        lenet = ["train", "lenet", "--epochs", "2", "--train-limit", "19200", "--test-limit", "200", "--threads", "1",
                 "--json"]
        direct = json.loads(subprocess.run([args.dojo] + lenet, capture_output=True, text=True,
                                           check=True).stdout)["parameter_digest"]
        mpirun = ["mpirun", "-np", "2", "--bind-to", "none", "--oversubscribe"] + (
            ["--allow-run-as-root"] if os.geteuid() == 0 else [])
        direct_ranks = json.loads(subprocess.run(mpirun + [args.dojo] + lenet, capture_output=True, text=True,
                                                 check=True).stdout)["parameter_digest"]
        attempts = 0
        for job, kind in submitted:
            record = server.call(token, "GET", f"/v1/jobs/{job}")
            attempts += record["attempts"]
            if record["kills"] > kills_of.get(job, 0):  # server kills (restarts) are not the job's and never count
                fail(f"job {job} counts {record['kills']} kills; its process was killed {kills_of.get(job, 0)} times")
            if kind.startswith("train"):
                result = server.call(token, "GET", f"/v1/jobs/{job}/result")
                if kind == "train-ranks" and result["ranks"] != 2:
                    fail(f"the two-rank job ran on {result['ranks']} rank(s)")
                if result["parameter_digest"] != (direct_ranks if kind == "train-ranks" else direct):
                    fail(f"train job {job} ended with other weights than an uninterrupted run "
                         f"(attempts {record['attempts']}, resumed from step {result['resumed_from_step']})")
        print(f"kill test: {kills['server']} server kills and {kills['job']} job kills over {args.seconds:.0f} s; "
              f"all {len(submitted)} jobs (one on 2 MPI ranks) succeeded in {attempts} starts, none ran twice at once "
              f"or outlived its parent, and every train job ended with the uninterrupted weights")
    finally:
        if server.running():
            server.kill(signal.SIGTERM)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
