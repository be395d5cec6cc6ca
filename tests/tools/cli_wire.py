#!/usr/bin/env python3
"""The sf CLI on the wire (tests/e2e/cli.sh): a fake API records every request sf sends,
so its shapes can be checked against upstream's (cli.md §2.2): POST /auth with a plain
json.dumps body, then Bearer; a 401 re-authenticates once and retries once; bodies as
json.dumps(indent=4, sort_keys=True) with Content-Type only when there is a body; the
upstream User-Agent. Usage: cli_wire.py SF_BINARY; exits non-zero on the first mismatch."""
import http.server
import json
import os
import subprocess
import sys
import threading

SF = sys.argv[1]
UA = 'Mozilla/5.0 (Ubuntu; Linux x86_64) Shaken Fist/0.7.5'
seen = []
state = {'tokens': 0, 'reject': 0}


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def handle_any(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n).decode() if n else None
        seen.append((self.command, self.path, dict(self.headers), body))
        if self.path == '/auth':
            state['tokens'] += 1
            return self.reply(200, {'access_token': 't%d' % state['tokens'], 'token_type': 'Bearer',
                                    'expires_in': 900})
        if state['reject'] > 0:
            state['reject'] -= 1
            return self.reply(401, {'error': 'unauthorized', 'status': 401})
        if self.path == '/auth/namespaces/nosuch':
            return self.reply(404, {'error': 'namespace not found', 'status': 404})
        if self.path == '/auth/namespaces':
            return self.reply(200, [])
        return self.reply(200, None)

    def reply(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = 'http://127.0.0.1:%d' % srv.server_address[1]


def sf(*args):
    seen.clear()
    env = dict(os.environ, HOME='/nonexistent')
    for k in ('SHAKENFIST_API_URL', 'SHAKENFIST_NAMESPACE', 'SHAKENFIST_KEY'):
        env.pop(k, None)
    p = subprocess.run([SF, '--apiurl', url, '--namespace', 'ns', '--key', 'k'] + list(args),
                       capture_output=True, text=True, env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        print('FAIL: %s; requests: %s' % (what, json.dumps(seen, indent=1)))
        sys.exit(1)


rc, out, err = sf('namespace', 'set-metadata', 'n1', 'owner', 'alice')
check(rc == 0, 'set-metadata exit 0 (%s)' % err)
m, p, h, b = seen[0]
check((m, p) == ('POST', '/auth'), 'first request is POST /auth')
check(b == '{"namespace": "ns", "key": "k"}', '/auth body is plain json.dumps: %r' % b)
check('Authorization' not in h, '/auth without Authorization')
m, p, h, b = seen[1]
check((m, p) == ('PUT', '/auth/namespaces/n1/metadata/owner'), 'PUT metadata path')
check(b == json.dumps({'value': 'alice'}, indent=4, sort_keys=True), 'body indent=4: %r' % b)
check(h.get('Content-Type') == 'application/json', 'Content-Type with a body')
check(h.get('Authorization') == 'Bearer t1', 'Bearer token')
check(h.get('User-Agent') == UA, 'User-Agent %r' % h.get('User-Agent'))

rc, out, err = sf('namespace', 'delete', 'n1')
m, p, h, b = seen[1]
check((m, p, b) == ('DELETE', '/auth/namespaces/n1', None), 'DELETE without a body')
check('Content-Type' not in h, 'no Content-Type without a body')

# One 401: a new token and one retry; two 401s: exit 1, "Not authenticated".
state['reject'] = 1
rc, out, err = sf('--json', 'namespace', 'list')
check(rc == 0 and out == '[]\n', 'one 401 then success (rc %d, out %r, err %r)' % (rc, out, err))
check([(m, p) for m, p, _, _ in seen] == [('POST', '/auth'), ('GET', '/auth/namespaces'), ('POST', '/auth'),
                                         ('GET', '/auth/namespaces')], 're-auth sequence')
check(seen[3][2].get('Authorization') != seen[1][2].get('Authorization'), 'retry uses the new token')
state['reject'] = 2
rc, out, err = sf('namespace', 'list')
check(rc == 1 and 'ERROR: Not authenticated: unauthorized' in err and out == '', 'two 401s: %r' % err)
check(len(seen) == 4, 'only one retry')
state['reject'] = 0

rc, out, err = sf('namespace', 'show', 'nosuch')
check(rc == 1 and err.rstrip().endswith('ERROR: Resource not found: namespace not found') and out == '',
      '404 on stderr, exit 1: %r' % err)
rc, out, err = sf('--json', 'namespace', 'create', 'a b')
check(seen[1][3] == json.dumps({'namespace': 'a b'}, indent=4, sort_keys=True), 'create body')
print('cli wire checks ok')
