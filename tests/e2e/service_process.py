"""A `dojo serve` process for the service's end-to-end tests (dashboard, kill and Slurm tests): started on a free
port of 127.0.0.1 with the given options, its standard error appended to STATE/serve.err, stopped with any signal,
and called over HTTP with a tenant's token."""
import json
import os
import signal
import subprocess
import sys
import urllib.request


class ServeProcess:
    def __init__(self, dojo, state, options=(), env=None):
        self.dojo, self.state, self.options, self.env = dojo, state, list(options), env
        self.process = None
        self.port = None

    def start(self):
        with open(os.path.join(self.state, "serve.err"), "a") as err:
            self.process = subprocess.Popen([self.dojo, "serve", "--state", self.state, "--listen", "127.0.0.1:0"] +
                                            self.options, env=self.env, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            sys.exit(f"dojo serve {' '.join(self.options)} did not start: {self.errors()}")
        self.port = int(line)

    def errors(self):
        with open(os.path.join(self.state, "serve.err"), errors="replace") as f:
            return f.read()[-2000:]

    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait(30)

    def call(self, token, method, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)

    def submit(self, token, body):
        return self.call(token, "POST", "/v1/jobs", body)["id"]
