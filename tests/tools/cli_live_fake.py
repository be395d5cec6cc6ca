#!/usr/bin/env python3
"""The sf CLI against a fake API that misbehaves on purpose (tests/e2e/cli-live.sh):
  * 406 (dependencies not ready) is retried every second until the --async deadline, and
    with --async continue the first 406 is the answer (cli.md §2.2 step 6);
  * `sf events follow` survives a hostile event stream (a line of several MiB, data that is
    not JSON or not an object, missing fields, a NUL byte, ids that are not numbers), keeps
    the events around them, reconnects with Last-Event-ID after the server drops it, and
    ends as interrupted on SIGINT.
Usage: cli_live_fake.py SF_BINARY; exits non-zero on the first mismatch."""
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

SF = sys.argv[1]
state = {'n406': 0, 'gets': [], 'streams': [], 'inst_gets': 0}
BURST = 3000
lock = threading.Lock()


def ev(i, msg):
    return {'type': 'audit', 'timestamp': 1796178316.5 + i, 'fqdn': 'node1', 'duration': None,
            'message': msg, 'extra': {'n': i}, 'object_type': 'instance',
            'object_uuid': '5c1b0000-0000-4000-8000-00000000000%d' % i, 'namespace': 'system'}


def rec(i, doc):
    return ('id: %d\ndata: %s\n\n' % (i, json.dumps(doc))).encode()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def reply(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        self.rfile.read(n)
        if self.path == '/auth':
            return self.reply(200, {'access_token': 't', 'token_type': 'Bearer', 'expires_in': 900})
        self.reply(404, {'error': 'no', 'status': 404})

    def do_GET(self):
        n = int(self.headers.get('Content-Length') or 0)
        if n:
            self.rfile.read(n)
        if self.path == '/':  # upstream's client probes the root first
            return self.reply(200, {})
        if self.path == '/auth/namespaces':
            with lock:
                state['gets'].append(time.monotonic())
                if state['n406'] > 0:
                    state['n406'] -= 1
                    return self.reply(406, {'error': 'network x is not ready (creating)', 'status': 406})
            return self.reply(200, [])
        if self.path.startswith('/events/stream?type=instance&uuid='):  # as an API without the stream
            return self.reply(404, {'error': 'not found', 'status': 404})
        if self.path.startswith('/events/stream'):
            return self.stream()
        if self.path == '/instances/vmx':  # a state further along at every GET
            with lock:
                state['inst_gets'] += 1
                st = ['initial', 'preflight', 'creating', 'created'][min(state['inst_gets'] - 1, 3)]
            return self.reply(200, {'uuid': '5c1b0000-0000-4000-8000-0000000000aa', 'name': 'vmx', 'state': st,
                                    'power_state': 'on' if st == 'created' else 'initial'})
        self.reply(404, {'error': 'no', 'status': 404})

    def stream(self):
        with lock:
            state['streams'].append(self.headers.get('Last-Event-ID'))
            first = len(state['streams']) == 1
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Connection', 'close')
        self.end_headers()
        w = self.wfile
        try:
            if first:
                w.write(b': sf event stream\n\n')
                w.write(rec(1, ev(1, 'one')))
                w.write(b'id: 2\ndata: ' + b'x' * (3 * 1024 * 1024) + b'\n\n')    # 3 MiB line
                w.write(b'id: 3\ndata: {"not json\n\n')
                w.write(b'id: 4\ndata: [1, 2, 3]\n\n')                             # JSON, not an object
                w.write(b'id: 5\ndata: {"message": "a\x00b"}\n\n')                 # NUL
                w.write(rec(6, {'message': 'fields missing'}))
                w.write(b'id: 7x\ndata: {"message": "bad id"}\n\n')                # not an event id
                w.write(b'event: error\ndata: {"error": "events after 0 are no longer kept", "status": 410}\n\n')
                w.write(b'id: 8\r\ndata: ' + json.dumps(ev(8, 'crlf, "quoted"\nsecond line')).encode() + b'\r\n\r\n')
                w.flush()
                return  # the server drops the connection: sf must resume after 8
            # a burst larger than sf's queue (SF_STREAM_QUEUE): the connection is paused
            # and resumed, nothing lost
            w.write(b''.join(rec(i, {'message': 'burst', 'n': i}) for i in range(9, 9 + BURST)))
            w.write(rec(9 + BURST, ev(9, 'after the reconnect')))
            w.flush()
            for _ in range(300):  # keepalives until sf goes
                w.write(b': keepalive\n\n')
                w.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass


srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
srv.daemon_threads = True
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = 'http://127.0.0.1:%d' % srv.server_address[1]
env = dict(os.environ, HOME='/nonexistent', SHAKENFIST_API_URL=url, SHAKENFIST_NAMESPACE='system',
           SHAKENFIST_KEY='k')
env.pop('SHAKENFIST_ASYNC', None)


def fail(msg):
    print('cli_live_fake: FAIL: ' + msg)
    sys.exit(1)


# ---- 406 ----
state['n406'] = 2
state['gets'] = []
p = subprocess.run([SF, 'namespace', 'list'], env=env, capture_output=True, text=True, timeout=30)
g = state['gets']
if p.returncode != 0 or len(g) != 3:
    fail('406 twice then 200 (pause): rc %d, %d GETs, stderr %r' % (p.returncode, len(g), p.stderr))
if not all(0.9 <= b - a <= 2.0 for a, b in zip(g, g[1:])):
    fail('406 retries not a second apart: %r' % [b - a for a, b in zip(g, g[1:])])
state['n406'] = 2
state['gets'] = []
p = subprocess.run([SF, '--async', 'continue', 'namespace', 'list'], env=env, capture_output=True, text=True,
                   timeout=30)
if p.returncode != 1 or len(state['gets']) != 1 or 'ERROR: Dependencies not ready: network x is not ready' not in p.stderr:
    fail('406 with continue: rc %d, %d GETs, stderr %r' % (p.returncode, len(state['gets']), p.stderr))
print('cli_live_fake: 406 retried a second apart (pause), the first one final (continue)')

# Upstream's client side by side (cli.md §6), when SF_UPSTREAM_CLIENT names it: the same
# retries (it has no event stream commands to compare).
UP = os.environ.get('SF_UPSTREAM_CLIENT')
if UP:
    for strategy, want in (('pause', 3), ('continue', 1)):
        state['n406'] = 2
        state['gets'] = []
        p = subprocess.run([UP, '--async', strategy, 'namespace', 'list'], env=env, capture_output=True, text=True,
                           timeout=60)
        print('cli_live_fake: upstream --async %s: exit %d after %d GETs (sf: %d)'
              % (strategy, p.returncode, len(state['gets']), want))
        if len(state['gets']) != want:
            fail('upstream differs: %r' % (p.stdout + p.stderr)[-400:])

# ---- watch against an API without the stream: it polls, silently ----
p = subprocess.run([SF, 'instance', 'watch', 'vmx'], env=env, capture_output=True, text=True, timeout=30)
want = ['vmx: state %s, power state %s, last event: - (0:0' % s for s in
        (('initial', 'initial'), ('preflight', 'initial'), ('creating', 'initial'), ('created', 'on'))]
got = p.stdout.splitlines()
if p.returncode != 0 or p.stderr or len(got) != 4 or not all(g.startswith(w) for g, w in zip(got, want)):
    fail('watch without a stream: rc %d, stdout %r, stderr %r' % (p.returncode, p.stdout, p.stderr))
print('cli_live_fake: watch without a stream polled through %d states, no error printed' % len(got))

# ---- a hostile stream ----
for fmt in ('--json', '--simple', '--pretty'):
    with lock:
        state['streams'] = []
    p = subprocess.Popen([SF, fmt, 'events', 'follow'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    end = time.monotonic() + 20
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if 'after the reconnect' in line:
            break
    p.send_signal(signal.SIGINT)
    try:
        err = p.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        fail('%s: still running 10 s after SIGINT' % fmt)
    if p.returncode != -signal.SIGINT:
        fail('%s: exit %r after SIGINT (want death by SIGINT, 130 in a shell); stderr %r' % (fmt, p.returncode, err))
    if state['streams'] != [None, '8']:
        fail('%s: Last-Event-ID of the connections %r, want [None, "8"]' % (fmt, state['streams']))
    if 'no longer kept' not in err or 'skipped a malformed event' not in err or 'reconnecting after event 8' not in err:
        fail('%s: stderr %r' % (fmt, err))
    if fmt == '--json':
        got = [json.loads(x) for x in lines]
        if [d['id'] for d in got] != [1, 6, 8] + list(range(9, 10 + BURST)) or got[0] != dict(ev(1, 'one'), id=1) or \
                got[2]['message'] != 'crlf, "quoted"\nsecond line':
            fail('--json lines %r' % lines[:20])
    elif fmt == '--simple':
        want0 = 'object type,object uuid,timestamp,node,duration,message,extra\n'
        if len(lines) != 5 + BURST or lines[0] != want0 or not lines[2].startswith('None,None,None,None,None,fields missing,None'):
            fail('--simple lines %r' % lines)
        if not lines[3].endswith(",node1,None,crlf, \"quoted\" second line,{'n': 8}\n"):
            fail('--simple: a newline in a value must not start a line: %r' % lines[3])
    else:
        if len(lines) != 4 + BURST or ' instance 5c1b0000-0000-4000-8000-000000000001 audit on node1: one ' not in lines[0]:
            fail('--pretty lines %r' % lines)
    print('cli_live_fake: %s follow kept %d events around the hostile ones, resumed after 8, ended by SIGINT'
          % (fmt, len(lines)))
