#!/usr/bin/env python3
"""`dojo serve --scheduler slurm` against a real one-node Slurm cluster that this test starts and stops itself: a munge
key and munged on a socket of its own, a slurm.conf it writes (the node is this host at 127.0.0.1 with its CPUs),
slurmctld and slurmd in the foreground on free ports. Priorities are Slurm's QOS (`--priorities qos`, the default:
then the test also starts a MariaDB server and slurmdbd for Slurm's accounting database, and creates the QOS high,
normal and low with sacctmgr, each preempting the lower ones by requeue) or partitions of rising PriorityTier
(`--priorities partitions`). Through the service's HTTP API it runs:

  a job        a sim job goes to Slurm (sbatch) and succeeds; its result comes back through the API
  a cancel     a running train job is cancelled (scancel) and ends cancelled
  preemption   a low-priority train job holding every CPU is requeued by Slurm for a high-priority one, which runs
               and succeeds; the low job runs again, resumes from its checkpoint and ends with the weights of an
               uninterrupted `dojo train`
  a kill -9    the server is killed while a job runs in Slurm and started again: the job is not submitted twice and
               its outcome is recorded
  a quota      a tenant with one slot submits two jobs: the second waits in the server's queue, unseen by Slurm,
               until the first is done
  MPI ranks    a train job on 2 ranks is 2 Slurm tasks and runs them under mpirun inside its batch job

Usage: slurm_test.py DOJO [--priorities qos|partitions]
       (exit 77 when Slurm, munge or, for QOS, slurmdbd and MariaDB are not installed, saying what to install; where
       the daemons are installed but do not start, it fails with their logs)
"""
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from service_process import ServeProcess

SLURM_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo")
ACCOUNTING_PROGRAMS = ("slurmdbd", "sacctmgr", "mariadbd", "mariadb-install-db")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged, (for QOS: MariaDB and slurmdbd,) slurmctld and slurmd in `root`, stopped by stop()."""

    def __init__(self, root, qos):
        self.root = root
        self.qos = qos
        self.processes = []
        self.env = dict(os.environ, SLURM_CONF=os.path.join(root, "slurm.conf"))
        self.node = socket.gethostname().split(".")[0]
        self.dbd_port = free_port()

    def write_config(self):
        user = getpass.getuser()
        key = os.path.join(self.root, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        for d in ("state", "spool"):
            os.makedirs(os.path.join(self.root, d))
        r = self.root
        conf = f"""ClusterName=dojotest
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={r}/munge.sock
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
PreemptMode=REQUEUE
JobRequeue=1
ReturnToService=2
MpiDefault=none
KillWait=5
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
"""
        if self.qos:
            conf += f"""AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.dbd_port}
AccountingStoragePass={r}/munge.sock
AccountingStorageEnforce=associations,limits,qos
PriorityType=priority/multifactor
PriorityWeightQOS=10000
PreemptType=preempt/qos
PartitionName=batch Nodes=ALL Default=YES State=UP
"""
        else:
            conf += """AccountingStorageType=accounting_storage/none
PreemptType=preempt/partition_prio
PartitionName=low Nodes=ALL Default=YES PriorityTier=1 PreemptMode=REQUEUE State=UP
PartitionName=normal Nodes=ALL PriorityTier=2 PreemptMode=REQUEUE State=UP
PartitionName=high Nodes=ALL PriorityTier=3 PreemptMode=OFF State=UP
"""
        with open(self.env["SLURM_CONF"], "w") as f:
            f.write(conf)

    def start(self):
        self.write_config()
        r = self.root
        self.spawn(["munged", "--foreground", "--force", f"--socket={r}/munge.sock", f"--key-file={r}/munge.key",
                    f"--log-file={r}/munged.log", f"--pid-file={r}/munged.pid", f"--seed-file={r}/munged.seed"])
        self.wait_for(lambda: os.path.exists(f"{r}/munge.sock"), 10, "munged did not create its socket")
        if self.qos:
            self.start_accounting()
        self.spawn(["slurmctld", "-D", "-i", "-f", self.env["SLURM_CONF"]])
        self.spawn(["slurmd", "-D", "-f", self.env["SLURM_CONF"], "-N", self.node])
        self.wait_for(self.node_idle, 30, "the node did not come up idle in Slurm")

    def start_accounting(self):
        """MariaDB and slurmdbd (its slurmdbd.conf beside slurm.conf), then the cluster, account and QOS."""
        r, user = self.root, getpass.getuser()
        db_port = free_port()
        made = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={r}/db", f"--user={user}",
                               "--auth-root-authentication-method=normal", "--skip-test-db"], capture_output=True,
                              text=True)
        if made.returncode != 0:
            sys.exit("slurm test: the daemons could not start here: mariadb-install-db failed:\n" + made.stderr[-2000:])
        self.spawn(["mariadbd", "--no-defaults", f"--datadir={r}/db", f"--socket={r}/mysql.sock", f"--port={db_port}",
                    "--bind-address=127.0.0.1", f"--user={user}", f"--pid-file={r}/mysqld.pid",
                    f"--log-error={r}/mariadbd.log"])
        self.wait_for(lambda: os.path.exists(f"{r}/mysql.sock"), 30, "MariaDB did not create its socket")
        dbd_conf = os.path.join(r, "slurmdbd.conf")
        with open(dbd_conf, "w") as f:
            f.write(f"""AuthType=auth/munge
AuthInfo=socket={r}/munge.sock
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort={self.dbd_port}
SlurmUser={user}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=root
StorageLoc=dojo_slurm_acct
PidFile={r}/slurmdbd.pid
LogFile={r}/slurmdbd.log
""")
        os.chmod(dbd_conf, 0o600)
        self.spawn(["slurmdbd", "-D"])
        self.wait_for(lambda: self.sacctmgr(["show", "cluster"], check=False), 30, "slurmdbd did not answer")
        for command in (["add", "cluster", "dojotest"], ["add", "qos", "low", "priority=10", "preemptmode=requeue"],
                        ["modify", "qos", "normal", "set", "priority=100", "preempt=low", "preemptmode=requeue"],
                        ["add", "qos", "high", "priority=1000", "preempt=normal,low", "preemptmode=requeue"],
                        ["modify", "user", user, "set", "qos=high,normal,low"]):
            self.sacctmgr(command)

    def sacctmgr(self, args, check=True):
        r = subprocess.run(["sacctmgr", "-i"] + args, env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            sys.exit(f"slurm test: sacctmgr {' '.join(args)} failed: {r.stderr}\n{self.logs()}")
        return r.returncode == 0

    def spawn(self, argv):
        log = open(os.path.join(self.root, os.path.basename(argv[0]) + ".out"), "w")
        self.processes.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def node_idle(self):
        r = subprocess.run(["sinfo", "--noheader", "--format=%t"], env=self.env, capture_output=True, text=True)
        return r.returncode == 0 and "idle" in r.stdout

    def wait_for(self, condition, seconds, failure):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if condition():
                return
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.2)
        sys.exit(f"slurm test: the daemons could not start here: {failure}\n{self.logs()}")

    def logs(self):
        text = ""
        for name in ("munged.out", "munged.log", "mariadbd.log", "slurmdbd.out", "slurmdbd.log", "slurmctld.out",
                     "slurmctld.log", "slurmd.out", "slurmd.log"):
            path = os.path.join(self.root, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f"--- {name} (last lines)\n" + "".join(f.readlines()[-15:])
        return text

    def jobs(self):
        """Slurm's jobs: [(id, name, state)]"""
        out = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=self.env, capture_output=True,
                             text=True).stdout
        jobs = []
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if "JobId" in fields:
                jobs.append((int(fields["JobId"]), fields.get("JobName", ""), fields.get("JobState", "")))
        return jobs

    def job_fields(self, name_suffix):
        """The Key=Value fields of the Slurm job whose name ends with name_suffix (the newest), or {}"""
        out = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=self.env, capture_output=True,
                             text=True).stdout
        found = {}
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields.get("JobName", "").endswith(name_suffix):
                found = fields
        return found

    def stop(self):
        subprocess.run(["scancel", "--full", "--user", getpass.getuser()], env=self.env, capture_output=True)
        for p in reversed(self.processes):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Service(ServeProcess):
    """dojo serve --scheduler slurm, with waits for a job's state."""

    def __init__(self, dojo, state, env, priorities):
        super().__init__(dojo, state, ["--scheduler", "slurm", "--slurm-priorities", priorities], env)

    def wait(self, token, job, states, seconds):
        deadline = time.time() + seconds
        seen = set()
        while time.time() < deadline:
            now = self.call(token, "GET", f"/v1/jobs/{job}")
            seen.add(now["state"])
            if now["state"] in states:
                return now, seen
            time.sleep(0.2)
        sys.exit(f"slurm test: job {job} did not reach {states} in {seconds} s (states seen: {sorted(seen)}; last: "
                 f"{now})\n{self.errors()}")


def need(condition, message):
    if not condition:
        sys.exit("slurm test: " + message)


# Long enough (seconds) that the server sees it run; a checkpoint every 50 steps for the preempted one to resume from.
LENET = {"model": "lenet", "epochs": 3, "train_limit": 38400, "test_limit": 200, "checkpoint_every": 50}
# The job Slurm preempts must still run when Slurm gets to it: 3 epochs (1,800 steps) take about 3 s on a fast
# core, and Slurm requeued the job after 1,850 and 2,100 steps in two runs on the development VM.
PREEMPTED = dict(LENET, epochs=20)


def uninterrupted_digest(dojo, threads, args):
    out = subprocess.run([dojo, "train", args["model"], "--epochs", str(args["epochs"]), "--train-limit",
                          str(args["train_limit"]), "--test-limit", str(args["test_limit"]), "--threads", str(threads),
                          "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["parameter_digest"]


def add_tenant(dojo, state, name, max_slots):
    return subprocess.run([dojo, "tenant", "add", name, "--state", state, "--max-slots", str(max_slots)],
                          capture_output=True, text=True, check=True).stdout.strip()


def run(dojo, cluster, state):
    token = add_tenant(dojo, state, "alice", os.cpu_count())
    other = add_tenant(dojo, state, "bob", os.cpu_count())
    small = add_tenant(dojo, state, "carol", 1)
    service = Service(dojo, state, cluster.env, "qos" if cluster.qos else "partitions")
    service.start()
    try:
        cluster_view = service.call(token, "GET", "/v1/cluster")
        need(cluster_view["engine"] == "slurm" and cluster_view["total_slots"] == os.cpu_count(),
             f"the cluster view is not Slurm's: {cluster_view}")

        # A job: through sbatch to success, its result back through the API.
        sim = service.submit(token, {"kind": "sim", "args": {"model": "mlp", "machine": "dgx-a100", "batch": 64}})
        done, _ = service.wait(token, sim, ("succeeded", "failed"), 60)
        need(done["state"] == "succeeded", f"the sim job did not succeed: {done}")
        need("step_s" in service.call(token, "GET", f"/v1/jobs/{sim}/result"), "the sim job has no result")
        need(any(name.endswith(f"-{sim}") for _, name, _ in cluster.jobs()), "Slurm never saw the sim job")
        print("slurm test: a sim job ran in Slurm and succeeded")

        # A cancel: a running train job, scancelled.
        long_job = service.submit(token, {"kind": "train", "args": dict(LENET, epochs=20), "priority": "low"})
        service.wait(token, long_job, ("running",), 60)
        need(service.call(token, "POST", f"/v1/jobs/{long_job}/cancel")["state"] == "cancelling",
             "a running job's cancel did not say cancelling")
        done, _ = service.wait(token, long_job, ("cancelled", "failed", "succeeded"), 60)
        need(done["state"] == "cancelled", f"the cancelled job ended {done['state']}")
        print("slurm test: a running train job was cancelled")

        # Preemption: a low job on every CPU is requeued for another tenant's high one, then resumes to the
        # uninterrupted weights.
        cpus = os.cpu_count()
        low = service.submit(token, {"kind": "train", "args": PREEMPTED, "priority": "low", "slots": cpus})
        service.wait(token, low, ("running",), 60)
        checkpoint = os.path.join(state, "jobs", str(low), "checkpoint", "checkpoint.dojo")
        deadline = time.time() + 60
        while not os.path.exists(checkpoint) and time.time() < deadline:
            time.sleep(0.05)
        need(os.path.exists(checkpoint), "the low job wrote no checkpoint")
        high = service.submit(other, {"kind": "sim", "priority": "high", "slots": cpus,
                                      "args": {"model": "lenet", "machine": "dgx-a100", "batch": 64}})
        _, low_states = service.wait(token, low, ("preempted",), 60)
        done, _ = service.wait(other, high, ("succeeded", "failed"), 120)
        need(done["state"] == "succeeded", f"the high job did not succeed: {done}")
        done, _ = service.wait(token, low, ("succeeded", "failed"), 300)
        need(done["state"] == "succeeded" and done["attempts"] >= 2, f"the preempted job did not resume: {done}")
        result = service.call(token, "GET", f"/v1/jobs/{low}/result")
        need(result["resumed_from_step"] > 0, f"the requeued job started over: {result['resumed_from_step']}")
        need(result["parameter_digest"] == uninterrupted_digest(dojo, cpus, PREEMPTED),
             "the resumed job's weights differ from an uninterrupted run's")
        print(f"slurm test: a low job was preempted by a high one, requeued, resumed from step "
              f"{result['resumed_from_step']} and ended with the uninterrupted weights")

        # kill -9 of the server while Slurm runs a job: started again, it finds the job and records its end.
        job = service.submit(token, {"kind": "train", "args": dict(LENET, epochs=1), "priority": "normal"})
        service.wait(token, job, ("running",), 60)
        service.kill(signal.SIGKILL)
        service.start()
        done, _ = service.wait(token, job, ("succeeded", "failed"), 120)
        need(done["state"] == "succeeded", f"the job did not survive the server's kill -9: {done}")
        submitted = [name for _, name, _ in cluster.jobs() if name.endswith(f"-{job}")]
        need(len(submitted) == 1, f"the job went to Slurm {len(submitted)} times")
        print("slurm test: the server was killed with -9 while a job ran; started again, it recorded the job's end "
              "and submitted nothing twice")

        # A tenant's quota: with one slot, its second job waits in the server's queue (Slurm never sees it) while its
        # first is in Slurm, then runs.
        first, second = (service.submit(small, {"kind": "train", "args": dict(LENET, epochs=1)}) for _ in range(2))
        service.wait(small, first, ("running",), 60)
        need(service.call(small, "GET", f"/v1/jobs/{second}")["state"] == "queued" and
             not cluster.job_fields(f"-{second}"), "a tenant's second job went to Slurm beyond its 1-slot quota")
        done, _ = service.wait(small, first, ("succeeded", "failed"), 120)
        need(done["state"] == "succeeded", f"the quota's first job did not succeed: {done}")
        done, _ = service.wait(small, second, ("succeeded", "failed"), 120)
        need(done["state"] == "succeeded", f"the quota's second job did not succeed: {done}")
        print("slurm test: a 1-slot tenant's second job waited in the server's queue, then ran")

        # A train job on two MPI ranks: two Slurm tasks, mpirun inside the batch job.
        ranked = service.submit(token, {"kind": "train", "args": dict(LENET, epochs=1), "slots": cpus, "ranks": 2})
        done, _ = service.wait(token, ranked, ("succeeded", "failed"), 120)
        need(done["state"] == "succeeded", f"the job on MPI ranks did not succeed: {done}\n" +
             open(os.path.join(state, "jobs", str(ranked), "log.txt"), errors="replace").read()[-2000:])
        need(service.call(token, "GET", f"/v1/jobs/{ranked}/result")["ranks"] == 2, "the job did not run on 2 ranks")
        tasks = cluster.job_fields(f"-{ranked}").get("NumTasks")
        need(tasks == "2", f"Slurm ran the job on MPI ranks as {tasks} tasks, not 2")
        print("slurm test: a train job ran on 2 MPI ranks, 2 Slurm tasks, under mpirun inside its Slurm job")
    finally:
        service.kill()


def main():
    dojo = sys.argv[1]
    qos = not (len(sys.argv) > 3 and sys.argv[2] == "--priorities" and sys.argv[3] == "partitions")
    missing = [p for p in SLURM_PROGRAMS + (ACCOUNTING_PROGRAMS if qos else ()) if not shutil.which(p)]
    if missing:
        print("slurm test: skipped: " + ", ".join(missing) + " not installed (scripts/setup.sh installs slurm-wlm, "
              "munge, slurmdbd and mariadb-server)")
        return 77
    root = tempfile.mkdtemp(prefix="dojo-slurm-")
    state = os.path.join(root, "service")
    os.makedirs(state)
    cluster = Cluster(root, qos)
    try:
        cluster.start()
        run(dojo, cluster, state)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"slurm test: passed, priorities as {'QOS' if qos else 'partitions'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
