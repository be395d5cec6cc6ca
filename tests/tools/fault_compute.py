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
  power      power operations on one created instance: each of the six operations
             killed at each power crash point (power.locked, power.applied,
             power.recorded), a poweron of an instance whose domain is gone walked
             through every point of its rebuild (*:N), two double kills and random
             kills; each run must end with the instance `created`, the operation's
             intent finished, power_state what the operation leaves (and, on
             qemu:///system, what libvirt says), and no lock held

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
SCENARIOS = os.environ.get("FAULT_SCENARIOS", "lifecycle,failure,double,random,power").split(",")

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
        # Until it consumes (or dies at a crash point): a signal that came before its
        # handlers were installed (the dynamic loader's few ms) would take the default
        # action, and a stop right after a start is then not a graceful one.
        deadline = time.time() + 20
        while self.alive() and time.time() < deadline:
            with open(self.logpath, errors="replace") as f:
                if " consuming " in f.read():
                    break
            time.sleep(0.02)

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


# ---- power operations ------------------------------------------------------------------
POWER_AFTER = {"poweron": "on", "poweroff": "off", "rebootsoft": "on", "reboothard": "on",
               "pause": "paused", "unpause": "on"}
POWER_BEFORE = {"poweron": "poweroff", "unpause": "pause"}   # the state an op starts from
DOMSTATE = {"on": "running", "off": "shut off", "paused": "paused"}


def pending_of(uuid):
    out = []
    for iid in redis_raw("ZRANGE", "sf:intents:pending", "0", "-1").split():
        if redis_raw("HGET", "sf:intent:" + iid, "object") == "instance/" + uuid:
            out.append("%s (%s)" % (iid, redis_raw("HGET", "sf:intent:" + iid, "kind")))
    return out


class PowerCall:
    """POST /instances/<uuid>/<op> on a connection of its own, in a thread: the API
    waits (up to 15 s) for the intent, which a killed sf-compute finishes only after
    its restart."""

    def __init__(self, uuid, op):
        import threading
        self.code, self.resp = None, None
        self.t = threading.Thread(target=self._run, args=(uuid, op), daemon=True)
        self.t.start()

    def _run(self, uuid, op):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            c.request("POST", "/instances/%s/%s" % (uuid, op), "{}", {"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            data = r.read()
            self.code, self.resp = r.status, (json.loads(data) if data else None)
        except (http.client.HTTPException, OSError) as e:
            self.code, self.resp = -1, str(e)
        finally:
            c.close()

    def done(self):
        return not self.t.is_alive()


def power_state_is(uuid, want, label):
    """power_state (and on qemu:///system the domain) settle on want (a state, or a
    tuple of acceptable ones) within 15 s; returns the one reached."""
    wants = want if isinstance(want, tuple) else (want,)
    deadline = time.time() + 15
    while True:
        st = instance(uuid)
        dom = domain_state(uuid) if VIRSH else None
        if st.get("state") != "created":
            fail("%s: instance %s is %s (%s), not created" % (label, uuid, st.get("state"), st.get("error_message")))
        ps = st.get("power_state")
        if ps in wants and (not VIRSH or dom == DOMSTATE[ps]):
            return ps
        if time.time() > deadline:
            fail("%s: power_state %s, domain %s; want %s" % (label, ps, dom, " or ".join(wants)))
        time.sleep(0.1)


def power_clean(uuid, op, label):
    """op with a clean sf-compute running: 200 and the state it leaves."""
    call = PowerCall(uuid, op)
    call.t.join(70)
    if call.code != 200:
        fail("%s: clean %s gave %s %s (log %s)" % (label, op, call.code, call.resp, compute.logpath))
    power_state_is(uuid, POWER_AFTER[op], "%s (clean %s)" % (label, op))


def power_run(label, uuid, op, crash=None, second_crash=None, kill_delay=None, lose_domain=False):
    """op on a created instance with sf-compute crashing as asked; returns the points."""
    lost = lose_domain
    compute.stop()
    if lose_domain and VIRSH:   # as if libvirt lost the domain while sf-compute was away
        for verb in ("destroy", "undefine --nvram"):
            subprocess.run(["virsh", "-q", "-c", "qemu:///system"] + verb.split() + ["sf:" + uuid],
                           capture_output=True, timeout=30)
    compute.start(crash, label)
    if not lose_domain:
        # The test driver lost the domain with the restart; poweron rebuilds it.  The
        # crash point counts these clean passes: aim it at the operation under test.
        power_clean(uuid, "poweron", label)
        if op in POWER_BEFORE:
            power_clean(uuid, POWER_BEFORE[op], label)
    call = PowerCall(uuid, op)
    kill_at = time.time() + kill_delay if kill_delay is not None else None
    points, restarts = [], 0
    deadline = time.time() + 90
    while True:
        if kill_at and time.time() >= kill_at and compute.alive():
            compute.kill9()
            kill_at = None
        if not compute.alive():
            points.append(compute.crashed_at())
            restarts += 1
            if restarts > 3:
                fail("%s: sf-compute died %d times" % (label, restarts))
            compute.start(second_crash if restarts == 1 else None, label + "-r%d" % restarts)
            lost = lost or not VIRSH   # the test driver's domains die with the process
        if call.done() and not pending_of(uuid):
            break
        if time.time() > deadline:
            fail("%s: op %s not finished: API %s, pending %s (crash points %s, log %s)" % (
                label, op, "answered" if call.done() else "waiting", pending_of(uuid), points, compute.logpath))
        time.sleep(0.05)
    # What the operation leaves.  A domain that is gone (the test driver's, after a kill)
    # is off: poweron builds it again, poweroff has nothing to do, the rest conflict (409).
    # The watcher says `off` for a domain that is gone, so a kill that came after the
    # operation had finished (only a random kill can) leaves `off` whatever the op was.
    want = POWER_AFTER[op]
    codes = (200,)
    if lost and op not in ("poweron", "poweroff"):
        want, codes = "off", (200, 409)   # 200: the API's 15 s wait ran out first
    if lost and kill_delay is not None:
        want = (want, "off")
    if call.code not in codes:
        fail("%s: %s answered %s %s, want %s (crash points %s)" % (label, op, call.code, call.resp, codes, points))
    want = power_state_is(uuid, want, label)
    deadline = time.time() + 10
    while compute.alive() and redis_raw("GET", "sf:lock:instance/" + uuid).endswith("/%d" % compute.proc.pid):
        if time.time() > deadline:
            fail("%s: sf-compute %d still holds the lock of instance %s" % (label, compute.proc.pid, uuid))
        time.sleep(0.1)
    log("%-24s crash at %-32s -> %s %s, power_state %s" % (label, ",".join(points) or "(none reached)", op,
                                                            call.code, want))
    return points


def power_scenario():
    """Returns (runs, crashes, points covered)."""
    runs, crashes, covered = 0, 0, set()
    compute.start(None, "power-setup")
    inst = post_instance("f-power", IMAGE_URL + "/sftest.qcow2")
    uuid = inst["uuid"]
    ifaces = interfaces_of(uuid)
    deadline = time.time() + 120
    while instance(uuid).get("state") != "created":
        if time.time() > deadline or instance(uuid).get("state") == "error":
            fail("power: instance %s did not reach created: %s" % (uuid, instance(uuid)))
        time.sleep(0.1)

    def count(pts, want=None, label=""):
        nonlocal runs, crashes
        runs += 1
        crashes += len(pts)
        covered.update(pts)
        if want is not None and pts[:len(want)] != want:
            fail("%s: crashed at %s, want %s" % (label, pts, want))

    for op in ("poweroff", "poweron", "rebootsoft", "reboothard", "pause", "unpause"):
        # The clean poweron (and the op's starting state) before it pass each point once.
        n = 2 + (1 if op in POWER_BEFORE else 0)
        for point in ("power.locked", "power.applied", "power.recorded"):
            label = "power-%s-%s" % (op, point.split(".")[1])
            count(power_run(label, uuid, op, crash="%s:%d" % (point, n)), [point], label)
    # A poweron that must define the domain again (libvirt lost it), killed at every
    # point it reaches, in turn.
    n = 1
    while True:
        pts = power_run("power-rebuild-%d" % n, uuid, "poweron", crash="*:%d" % n, lose_domain=True)
        count(pts)
        if not pts:
            break
        n += 1
        if n > 40:
            fail("power-rebuild: still crashing after 40 points")
    log("power-rebuild: %d crash points, each survived" % (n - 1))
    count(power_run("power-double-poweroff", uuid, "poweroff", crash="power.applied:2", second_crash="*:1"),
          ["power.applied", "power.locked"], "power-double-poweroff")
    count(power_run("power-double-rebuild", uuid, "poweron", crash="create.define-start", second_crash="*:1",
                    lose_domain=True))
    rnd = random.Random(int(os.environ.get("FAULT_SEED", "0")) or None)
    for i in range(int(os.environ.get("FAULT_POWER_RANDOM", "5"))):
        op = rnd.choice(sorted(POWER_AFTER))
        count(power_run("power-random-%d-%s" % (i, op), uuid, op, kill_delay=rnd.uniform(0, 0.03)))
    # The instance still deletes cleanly and leaves nothing.
    compute.stop()
    compute.start(None, "power-delete")
    code, resp = api("DELETE", "/instances/" + uuid)
    if code != 200:
        fail("power: DELETE: %d %s" % (code, resp))
    deadline = time.time() + 60
    while instance(uuid).get("state") != "deleted":
        if time.time() > deadline:
            fail("power: instance %s not deleted: %s" % (uuid, instance(uuid)))
        time.sleep(0.1)
    check_no_leak(uuid, ifaces, "power")
    compute.stop()
    return runs, crashes, covered


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
        elif sc == "power":
            r, c, cov = power_scenario()
            runs += r
            crashes += c
            covered.update(cov)
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
