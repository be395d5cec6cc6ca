#!/usr/bin/env python3
"""The live event stream (GET /events/stream) against a whole node: run by
tests/e2e/event-stream.sh, which starts the node and passes its addresses in the
environment.  Every check prints one line; any failure raises and exits non-zero.

Environment: API (http://127.0.0.1:port), TOKEN (system), NS2 + NS2_TOKEN (another
namespace), IMAGE_URL, NATS_PORT + NATS_USER + NATS_PASSWORD_FILE, API_LOG (sf-api's log),
and sf-api runs with SF_STREAM_HEARTBEAT=2, SF_STREAM_BACKLOG=100,
SF_STREAM_WRITE_TIMEOUT=5, SF_STREAM_MAX_SUBSCRIBERS=10, SF_STREAM_RING=64.
"""
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

API = os.environ["API"]
HOST, PORT = urllib.parse.urlsplit(API).hostname, urllib.parse.urlsplit(API).port
TOKEN = os.environ["TOKEN"]


def log(msg):
    print(f"[{time.strftime('%T')}] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    log(f"ok: {msg}")


def api(method, path, body=None, token=TOKEN):
    c = http.client.HTTPConnection(HOST, PORT, timeout=30)
    c.request(method, path, body=json.dumps(body if body is not None else {}),
              headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


class Sub:
    """One subscriber on its own thread: records (receipt time, id, event, data)."""

    def __init__(self, name, token=TOKEN, query="", last_id=None):
        self.name, self.events, self.errors, self.comments = name, [], [], 0
        self.ended = threading.Event()
        self.conn = http.client.HTTPConnection(HOST, PORT, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        self.conn.request("GET", "/events/stream" + query, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        if self.status != 200:
            self.body = self.resp.read()
            self.ended.set()
            return
        check(self.resp.getheader("Content-Type", "").startswith("text/event-stream"),
              f"{name}: 200 text/event-stream")
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        rec = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                now = time.time()
                line = line.decode().rstrip("\n")
                if line == "":
                    if "data" in rec:
                        rec["t"] = now
                        if rec.get("event") == "error":
                            self.errors.append(json.loads(rec["data"]))
                        else:
                            rec["json"] = json.loads(rec["data"])
                            self.events.append(rec)
                    rec = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    k, _, v = line.partition(": ")
                    rec[k] = v
        except (OSError, http.client.HTTPException):
            pass
        self.ended.set()

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.ended.wait(0.2)

    def of(self, uuid):
        return [e for e in self.events if e["json"]["object_uuid"] == uuid]


def wait_for(what, fn, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError(f"timeout ({timeout}s) waiting for {what}")


def states(evs):
    return [e["json"]["extra"].get("value") for e in evs
            if e["json"]["message"] == "set attribute" and e["json"]["extra"].get("attribute") == "state"]


def same_as_stored(evs, stored, what):
    """The stream's events of one object equal GET .../events (oldest first)."""
    def key(e):
        return (round(e["timestamp"], 6), e["type"], e["message"], json.dumps(e["extra"], sort_keys=True))
    got = [key(e["json"]) for e in evs]
    want = [key(e) for e in reversed(stored)]
    if got != want:
        log(f"stream: {got}")
        log(f"stored: {want}")
    check(got == want, f"{what}: {len(got)} events, identical to GET .../events, same order and timestamps")


def nats_purge_keep(keep):
    """Purge SF_EVENTS down to its newest `keep` messages (JetStream API, raw protocol)."""
    pw = open(os.environ["NATS_PASSWORD_FILE"]).read().strip()
    s = socket.create_connection(("127.0.0.1", int(os.environ["NATS_PORT"])), timeout=10)
    f = s.makefile("rb")
    f.readline()  # INFO
    body = json.dumps({"keep": keep})
    conn = json.dumps({"user": os.environ["NATS_USER"], "pass": pw, "verbose": False, "pedantic": False})
    s.sendall(f"CONNECT {conn}\r\nSUB _INBOX.purge 1\r\nPUB $JS.API.STREAM.PURGE.SF_EVENTS _INBOX.purge "
              f"{len(body)}\r\n{body}\r\nPING\r\n".encode())
    while True:
        line = f.readline().decode()
        if line.startswith("MSG"):
            reply = json.loads(f.readline())
            break
        if line.startswith("-ERR") or not line:
            raise AssertionError(f"nats: {line}")
    s.close()
    check(reply.get("success"), f"SF_EVENTS purged to its newest {keep} ({reply.get('purged')} removed)")


def main():
    ns2, ns2_tok = os.environ["NS2"], os.environ["NS2_TOKEN"]

    # ---- refusals
    st, body = api("GET", "/events/stream?type=bogus")
    check(st == 400 and body == {"error": "unknown object type bogus", "status": 400},
          "unknown type => 400 envelope")
    st, body = api("GET", "/events/stream?colour=red")
    check(st == 400 and body["status"] == 400, "unknown query parameter => 400")
    st, body = api("GET", "/events/stream", token="nope")
    check(st == 401, "bad token => 401")
    c = http.client.HTTPConnection(HOST, PORT, timeout=10)
    c.request("GET", "/events/stream", headers={"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": "x1"})
    r = c.getresponse()
    check(r.status == 400 and json.loads(r.read())["status"] == 400, "Last-Event-ID not a number => 400")
    c.close()

    # ---- subscribers: all, all (kept open throughout), instances only, another namespace
    a = Sub("system-a")
    live = Sub("system-live")
    only_inst = Sub("system-instances", query="?type=instance")
    only_none = Sub("system-uuid", query="?type=instance&uuid=00000000-0000-0000-0000-000000000000")
    other = Sub(f"{ns2}", token=ns2_tok)

    # ---- an instance: create, wait for created
    t0 = time.time()
    st, inst = api("POST", "/instances", {"name": "ssevm", "cpus": 1, "memory": 256,
                                          "disk": [{"base": os.environ["IMAGE_URL"] + "/sftest.qcow2", "size": 1}]})
    check(st == 200, f"instance {inst.get('uuid')} requested")
    uuid = inst["uuid"]
    with open(os.environ["INST_FILE"], "w") as f:
        f.write(uuid)
    wait_for("state created on the stream", lambda: "created" in states(a.of(uuid)), 240)
    log(f"created after {time.time() - t0:.1f} s")
    time.sleep(1.5)
    seen = states(a.of(uuid))
    check(seen == ["preflight", "creating", "created"], f"states in order: {seen}")
    power = [e["json"]["extra"].get("value") for e in a.of(uuid)
             if e["json"]["extra"].get("attribute") == "power_state"]
    check(power == ["on"], f"power state change on the stream: {power}")
    check(a.of(uuid)[0]["json"]["message"] == "db record created", "first event: db record created")
    for e in a.events:
        for k in ("type", "timestamp", "fqdn", "duration", "message", "extra", "object_type", "object_uuid",
                  "namespace"):
            assert k in e["json"], f"{k} missing in {e['json']}"
    check(True, "every record has the api.md §5 keys plus object_type, object_uuid, namespace")
    st, stored = api("GET", f"/instances/{uuid}/events", {"limit": 1000})
    same_as_stored(a.of(uuid), stored, "create")

    # ---- disconnect, let more happen, reconnect with Last-Event-ID
    last_id = int(a.events[-1]["id"])
    a.close()
    n_before = len(a.of(uuid))
    st, _ = api("DELETE", f"/instances/{uuid}")
    check(st == 200, "instance delete requested while disconnected")
    wait_for("deleted on the live subscriber", lambda: "deleted" in states(live.of(uuid)), 120)
    time.sleep(1.5)
    back = Sub("system-a-again", last_id=last_id)
    wait_for("the missed events", lambda: "deleted" in states(back.of(uuid)), 30)
    time.sleep(1.5)
    ids = [int(e["id"]) for e in back.events]
    check(ids and ids[0] == last_id + 1 and ids == list(range(last_id + 1, last_id + 1 + len(ids))),
          f"resumed at {last_id + 1}: ids contiguous, no gap, no duplicate ({len(ids)} events)")
    live_after = [(e["id"], e["data"]) for e in live.events if int(e["id"]) > last_id]
    check([(e["id"], e["data"]) for e in back.events] == live_after,
          "the resumed stream equals what a subscriber that stayed connected got after that id")
    st, stored = api("GET", f"/instances/{uuid}/events", {"limit": 1000})
    same_as_stored(back.of(uuid), stored[: len(stored) - n_before], "missed while disconnected")
    same_as_stored(live.of(uuid), stored, "stayed connected")
    check(states(live.of(uuid))[-2:] == ["delete-wait", "deleted"], "delete-wait -> deleted on the stream")

    # ---- resume from before the hub's memory: the start comes from JetStream, then the ring
    first_live = int(live.events[0]["id"])
    check(first_live > 1, f"the hub started at {first_live}: earlier events are only in JetStream")
    full = Sub("from-the-start", last_id=0)
    wait_for("the catch-up to reach the live end", lambda: full.events and full.events[-1]["id"] == live.events[-1]["id"], 20)
    ids = [int(e["id"]) for e in full.events]
    check(ids == list(range(1, len(ids) + 1)), f"Last-Event-ID 0: ids 1..{len(ids)} contiguous (JetStream, then memory)")
    check([(e["id"], e["data"]) for e in full.events if int(e["id"]) >= first_live] ==
          [(e["id"], e["data"]) for e in live.events], "the switch to live events has no gap and no duplicate")
    full.close()
    time.sleep(6)  # sf-api notices a closed subscriber within two heartbeats (2 s)

    # ---- timing: every event within 1 s of its timestamp
    lat = sorted(e["t"] - e["json"]["timestamp"] for e in live.events)
    check(lat and lat[-1] < 1.0, f"{len(lat)} events, receipt - timestamp: max {lat[-1] * 1000:.1f} ms, "
          f"p50 {lat[len(lat) // 2] * 1000:.1f} ms")

    # ---- isolation and filters
    check(not other.of(uuid), f"{ns2} received none of the instance's {len(live.of(uuid))} events")
    bad = [e["json"] for e in other.events
           if not (e["json"]["namespace"] == ns2 or e["json"]["object_type"] == "namespace")]
    check(not bad, f"{ns2} received only its own events ({len(other.events)})")
    check(only_inst.events and all(e["json"]["object_type"] == "instance" for e in only_inst.events)
          and [e["id"] for e in only_inst.events] == [e["id"] for e in live.events
                                                       if e["json"]["object_type"] == "instance"],
          f"type=instance: exactly the instance events ({len(only_inst.events)})")
    check(not only_none.events, "type=instance&uuid=<other>: nothing")

    # ---- subscriber cap (SF_STREAM_MAX_SUBSCRIBERS=10): live, only_inst, only_none, other, back open
    extra, deadline = [], time.time() + 15
    while len(extra) < 5:
        s = Sub(f"extra{len(extra)}")
        if s.status == 200:
            extra.append(s)
        elif s.status == 503 and time.time() < deadline:
            time.sleep(0.5)  # a closed subscriber still counts until sf-api notices
        else:
            raise AssertionError(f"extra subscriber: {s.status}")
    check(True, "10 subscribers at once")
    over = Sub("over")
    check(over.status == 503 and json.loads(over.body) == {
        "error": "too many event stream subscribers, retry later", "status": 503}, "the 11th => 503 envelope")
    for s in extra:
        s.close()
    time.sleep(6)  # suspended streams notice a closed peer within two heartbeats (2 s)

    # ---- a slow client is dropped; the others keep receiving, publishers are not held
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    slow.connect((HOST, PORT))
    slow.sendall(f"GET /events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    time.sleep(0.5)
    n0 = len(live.events)
    burst = 600
    t = time.time()
    for i in range(burst):
        st, _ = api("POST", "/auth/namespaces", {"namespace": f"burst{i}"})
        assert st == 200, st
    took = time.time() - t
    wait_for("the burst on the live subscriber", lambda: len(live.events) >= n0 + burst, 30)
    check(True, f"{burst} namespace creates in {took:.1f} s; the live subscriber got all of them "
          f"{live.events[n0 + burst - 1]['t'] - t:.1f} s after the first")
    slow.settimeout(15)
    got, closed = 0, False
    try:
        while True:
            d = slow.recv(65536)
            if not d:
                closed = True
                break
            got += len(d)
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    check(closed, f"the non-reading client was disconnected (it had {got} bytes waiting)")
    check("dropped" in open(os.environ["API_LOG"]).read(), "sf-api logged the drop")
    st, _ = api("POST", "/auth/namespaces", {"namespace": "afterslow"})
    wait_for("an event after the drop", lambda: any(e["json"]["object_uuid"] == "afterslow" for e in live.events), 5)
    check(True, "the live subscriber still receives after the drop")

    # ---- too old a Last-Event-ID: an error event, then live
    nats_purge_keep(5)
    old = Sub("too-old", last_id=1)
    wait_for("the error event", lambda: old.errors, 10)
    check("no longer kept" in old.errors[0]["error"], f"too old => event: error ({old.errors[0]['error']})")
    api("POST", "/auth/namespaces", {"namespace": "afterold"})
    wait_for("live after the error", lambda: any(e["json"]["object_uuid"] == "afterold" for e in old.events), 5)
    check(all(e["json"]["object_uuid"] == "afterold" for e in old.events), "then live events only")


    # ---- heartbeats, and the stream ends when the key is deleted
    check(live.comments >= 2, f"keepalive comments seen ({live.comments})")
    st, _ = api("DELETE", f"/auth/namespaces/{ns2}/keys/k")
    check(st == 200, f"{ns2}'s key deleted")
    wait_for("the stream of the deleted key to end", lambda: other.ended.is_set(), 10)
    check(other.errors and other.errors[-1]["status"] == 401, f"it ended with event: error {other.errors}")
    for s in (live, only_inst, only_none, back, old):
        s.close()
    log("all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        log(f"FAIL: {e}")
        sys.exit(1)
