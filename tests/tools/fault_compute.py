#!/usr/bin/env python3
"""Fault driver for tests/e2e/fault-compute.sh: kills sf-compute at every crash point of
an instance's create and delete (lib/crashpoint.h, SF_CRASHPOINT), restarts it, and
checks after each run that the instance reached its terminal state and left nothing:
no instance directory, no address in IPAM, no MAC claim, no live or unexpiring lock, no
pending intent.  Scenarios (each a list of runs):

  lifecycle  create (a disk from the image, a blank disk, one NIC) then delete;
             SF_CRASHPOINT=*:N for N = 1, 2, ... until a run reaches no crash point
  failure    the same with an image URL that 404s: the failure path (<state>-error,
             teardown, error) and then the delete
  double     a crash at a named point, then a second crash at the first point the
             restarted worker reaches (SF_CRASHPOINT=*:1), then a clean start
  random     kill -9 after a random delay after the POST and after the DELETE

Environment: API, TOKEN, BUILD, STORAGE, NET (network uuid), IMAGE_URL, W (log dir),
REDIS_PORT, REDISCLI_AUTH (redis-cli reads it), SF_* for sf-compute (inherited).
Prints one line per run and a summary; exits 1 on the first broken invariant.
FAULT_MIN_RUNS (50): fewer runs in all is a failure too.
"""
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.parse

API = os.environ["API"]
TOKEN = os.environ["TOKEN"]
BUILD = os.environ["BUILD"]
STORAGE = os.environ["STORAGE"]
NET = os.environ["NET"]
IMAGE_URL = os.environ["IMAGE_URL"]
W = os.environ["W"]
REDIS_PORT = os.environ["REDIS_PORT"]
VIRSH = os.environ.get("SF_LIBVIRT_URI", "").startswith("qemu")
MIN_RUNS = int(os.environ.get("FAULT_MIN_RUNS", "50"))
SCENARIOS = os.environ.get("FAULT_SCENARIOS", "lifecycle,failure,double,random").split(",")

u = urllib.parse.urlparse(API)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
T0 = time.time()


def log(msg):
    print("[fault +%ds] %s" % (time.time() - T0, msg), flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def api(method, path, body=None):
    global conn
    for attempt in range(3):
        try:
            conn.request(method, path, json.dumps(body or {}), {"Authorization": "Bearer " + TOKEN})
            r = conn.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            time.sleep(0.2)
    fail("%s %s: no answer from the API" % (method, path))


def redis(*args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", REDIS_PORT, "--no-raw"] + list(args),
                         capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        fail("redis-cli %s: %s" % (" ".join(args), out.stderr))
    return out.stdout


def redis_raw(*args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", REDIS_PORT, "--raw"] + list(args),
                         capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        fail("redis-cli %s: %s" % (" ".join(args), out.stderr))
    return out.stdout.rstrip("\n")


class Compute:
    """sf-compute processes started here, one at a time."""

    def __init__(self):
        self.proc = None
        self.logpath = None
        self.starts = 0

    def start(self, crashpoint=None, tag="run"):
        env = dict(os.environ)
        env.pop("SF_CRASHPOINT", None)
        if crashpoint:
            env["SF_CRASHPOINT"] = crashpoint
        self.starts += 1
        self.logpath = os.path.join(W, "compute-%03d-%s.log" % (self.starts, tag))
        f = open(self.logpath, "ab")
        self.proc = subprocess.Popen([os.path.join(BUILD, "sf-compute")], env=env, stdout=f,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        f.close()
        with open(os.path.join(W, "compute.pids"), "a") as p:
            p.write("%d\n" % self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def crashed_at(self):
        """The crash point it died at (it must have died of SIGKILL), else None."""
        if self.proc is None or self.proc.poll() is None:
            return None
        rc = self.proc.returncode
        with open(self.logpath, errors="replace") as f:
            m = re.findall(r"crashpoint (\S+) \(#\d+\): SIGKILL", f.read())
        if rc != -signal.SIGKILL:
            fail("sf-compute exited with %s, not by SIGKILL (log %s)" % (rc, self.logpath))
        return m[-1] if m else "kill -9"

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM: it must exit 0 within 30 s (graceful stop)."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("sf-compute did not stop within 30 s of SIGTERM (log %s)" % self.logpath)
        if rc != 0:
            fail("sf-compute exited %d after SIGTERM (log %s)" % (rc, self.logpath))


compute = Compute()


def post_instance(name, base):
    disks = [{"base": base, "size": 1}, {"size": 1}]
    body = {"name": name, "cpus": 1, "memory": 128, "disk": disks, "network": [{"network_uuid": NET}]}
    for _ in range(100):
        code, resp = api("POST", "/instances", body)
        if code == 507:   # the node's heartbeat after a restart is not in yet
            time.sleep(0.2)
            continue
        if code != 200:
            fail("POST /instances: %d %s" % (code, resp))
        return resp
    fail("POST /instances: still 507")


def instance(uuid):
    code, resp = api("GET", "/instances/" + uuid)
    if code != 200:
        fail("GET /instances/%s: %d %s" % (uuid, code, resp))
    return resp


def interfaces_of(uuid):
    doc = redis_raw("HGET", "sf:obj:instance:" + uuid, "doc")
    return json.loads(doc).get("interfaces") or []


def domain_state(uuid):
    """virsh domstate of sf:<uuid> on qemu:///system, None if there is no such domain."""
    out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "domstate", "sf:" + uuid],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        if "ailed to get domain" in out.stderr or "Domain not found" in out.stderr:
            return None
        fail("virsh domstate sf:%s: %s" % (uuid, out.stderr.strip()))
    return out.stdout.strip()


def check_no_leak(uuid, ifaces, point):
    """Everything the instance held is given back (retries for a few seconds: the last
    intent's finish may still be in flight)."""
    deadline = time.time() + 15
    while True:
        problems = []
        if VIRSH and domain_state(uuid) is not None:
            problems.append("domain sf:%s is left (%s)" % (uuid, domain_state(uuid)))
        if os.path.exists(os.path.join(STORAGE, "instances", uuid)):
            problems.append("instance directory %s/instances/%s is left" % (STORAGE, uuid))
        for iu in ifaces:
            doc = redis_raw("HGET", "sf:obj:networkinterface:" + iu, "doc")
            d = json.loads(doc) if doc else {}
            if d and d.get("state") != "deleted":
                problems.append("interface %s is %s" % (iu, d.get("state")))
            if redis_raw("HGET", "sf:ipamowners:" + NET, iu):
                problems.append("interface %s still holds an address" % iu)
            mac = d.get("macaddr")
            if mac and redis_raw("GET", "sf:mac:" + mac) == iu:
                problems.append("interface %s still holds MAC %s" % (iu, mac))
        lock = redis_raw("GET", "sf:lock:instance/" + uuid)
        if lock:
            pttl = int(redis_raw("PTTL", "sf:lock:instance/" + uuid) or "-2")
            pid = int(lock.rsplit("/", 1)[1])
            if pttl < 0:
                problems.append("lock of instance %s never expires" % uuid)
            if os.path.exists("/proc/%d" % pid) and pid == (compute.proc.pid if compute.alive() else -1):
                problems.append("lock of instance %s is still held by live sf-compute %d" % (uuid, pid))
        for iid in redis_raw("ZRANGE", "sf:intents:pending", "0", "-1").split():
            if redis_raw("HGET", "sf:intent:" + iid, "object") == "instance/" + uuid:
                problems.append("intent %s (%s) is still pending" % (iid, redis_raw("HGET", "sf:intent:" + iid, "kind")))
        if not problems:
            return
        if time.time() > deadline:
            fail("after a crash at %s, instance %s leaked: %s" % (point, uuid, "; ".join(problems)))
        time.sleep(0.2)


def run_once(label, base, expect, crash=None, second_crash=None, kill_delays=None, delete_while_dead=False):
    """One instance from POST to deleted with sf-compute crashing as asked.  Returns the
    crash points it died at (empty: it reached no crash point)."""
    compute.start(crash, label)
    name = ("f-" + re.sub(r"[^A-Za-z0-9-]", "-", label))[:63]
    inst = post_instance(name, base)
    uuid = inst["uuid"]
    ifaces = interfaces_of(uuid)
    points, delete_sent, restarts = [], False, 0
    kill_at = None
    if kill_delays:
        kill_at = time.time() + kill_delays[0]
    deadline = time.time() + 90
    seen = []
    while True:
        if kill_at and time.time() >= kill_at and compute.alive():
            compute.kill9()
            kill_at = None
        if not compute.alive():
            p = compute.crashed_at()
            points.append(p)
            if delete_while_dead and not delete_sent:
                code, resp = api("DELETE", "/instances/" + uuid)
                if code != 200:
                    fail("%s: DELETE: %d %s" % (label, code, resp))
                delete_sent = True
            restarts += 1
            if restarts > 3:
                fail("%s: sf-compute died %d times" % (label, restarts))
            nxt = second_crash if restarts == 1 else None
            compute.start(nxt, label + "-r%d" % restarts)
        st = instance(uuid)
        state = st.get("state")
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("created", "error") and not delete_sent:
            if state != expect:
                fail("%s: instance %s ended %s, want %s (%s); states %s; crash points %s" % (
                    label, uuid, state, expect, st.get("error_message"), seen, points))
            if VIRSH and state == "created" and domain_state(uuid) not in ("running", "shut off"):
                fail("%s: instance %s is created but its domain is %s" % (label, uuid, domain_state(uuid)))
            if state == "error" and not st.get("error_message"):
                fail("%s: instance %s is error without an error_message" % (label, uuid))
            code, resp = api("DELETE", "/instances/" + uuid)
            if code != 200:
                fail("%s: DELETE: %d %s" % (label, code, resp))
            delete_sent = True
            if kill_delays and len(kill_delays) > 1:
                kill_at = time.time() + kill_delays[1]
        if state == "deleted":
            break
        if state == "delete-wait-error":
            fail("%s: delete failed: %s" % (label, st.get("error_message")))
        if time.time() > deadline:
            fail("%s: instance %s stuck in %s (states %s, crash points %s, log %s)" % (
                label, uuid, state, seen, points, compute.logpath))
        time.sleep(0.05)
    check_no_leak(uuid, ifaces, ",".join(points) or "none")
    compute.stop()
    log("%-14s crash at %-40s -> %s" % (label, ",".join(points) or "(none reached)", " > ".join(seen)))
    return points


def main():
    runs, crashes, covered = 0, 0, set()
    good = IMAGE_URL + "/sftest.qcow2"
    for sc in SCENARIOS:
        if sc in ("lifecycle", "failure"):
            n = 1
            while True:
                base = good if sc == "lifecycle" else "%s/missing-%d.qcow2" % (IMAGE_URL, n)
                pts = run_once("%s-%d" % (sc, n), base, "created" if sc == "lifecycle" else "error",
                               crash="*:%d" % n)
                runs += 1
                if not pts:
                    break
                crashes += 1
                covered.update(pts)
                n += 1
                if n > 60:
                    fail("%s: still crashing after 60 points" % sc)
            log("%s: %d crash points, each survived" % (sc, n - 1))
        elif sc == "double":
            for first in ("create.disk", "create.define-start", "create.created", "remove.files",
                          "delete.delete-wait", "remove.interface"):
                pts = run_once("double-%s" % first, good, "created", crash=first, second_crash="*:1")
                runs += 1
                crashes += len(pts)
                covered.update(pts)
                if len(pts) < 2:
                    fail("double-%s: want two crashes, got %s" % (first, pts))
        elif sc == "libvirt":
            # Real domains: the crash points next to libvirt calls, and a delete asked
            # while sf-compute is dead after it started the domain.
            for point, early in (("create.define-start", False), ("create.define-start", True),
                                 ("remove.domain", False), ("create.record", False)):
                pts = run_once("libvirt-%s%s" % (point, "-deleted" if early else ""), good, "created",
                               crash=point, delete_while_dead=early)
                runs += 1
                crashes += len(pts)
                covered.update(pts)
                if pts != [point]:
                    fail("libvirt-%s: crashed at %s" % (point, pts))
        elif sc == "random":
            rnd = random.Random(int(os.environ.get("FAULT_SEED", "0")) or None)
            for i in range(10):
                d = (rnd.uniform(0, 1.5), rnd.uniform(0, 0.5))
                pts = run_once("random-%d" % i, good, "created", kill_delays=d)
                runs += 1
                crashes += len(pts)
    log("%d runs, %d crashes, %d distinct crash points: %s" % (runs, crashes, len(covered),
                                                               " ".join(sorted(covered))))
    if runs < MIN_RUNS:
        fail("only %d runs (want at least %d)" % (runs, MIN_RUNS))


if __name__ == "__main__":
    try:
        main()
    finally:
        compute.kill9()   # only after a failure is one still running
