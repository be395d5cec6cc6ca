#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal, as a person at a terminal would (tests/e2e/cli-live.sh).

usage: pty_run.py [--stdout FILE] [--send-after REGEX BYTES] [--timeout S] OUTFILE -- CMD...

CMD gets a new session whose controlling terminal is a fresh pty (120x30, TERM=xterm):
stdin and stderr are the pty, and so is stdout unless --stdout sends it to FILE. Every byte
written to the terminal is saved to OUTFILE, raw (escape codes included). With --send-after,
BYTES (Python escapes: '\\x03' is Ctrl-C, which the line discipline turns into SIGINT) are
typed once REGEX first matches the terminal output. Exits with CMD's status, 128+N when a
signal N ended it (as a shell reports it), 124 on timeout (CMD is then killed)."""
import fcntl
import os
import re
import select
import signal
import struct
import sys
import termios
import time

args = sys.argv[1:]
stdout_file = None
send_re = send_bytes = None
timeout = 300.0
while args and args[0].startswith('--') and args[0] != '--':
    opt = args.pop(0)
    if opt == '--stdout':
        stdout_file = args.pop(0)
    elif opt == '--send-after':
        send_re = re.compile(args.pop(0).encode())
        send_bytes = args.pop(0).encode().decode('unicode_escape').encode('latin-1')
    elif opt == '--timeout':
        timeout = float(args.pop(0))
    else:
        sys.exit('pty_run.py: unknown option ' + opt)
outfile = args.pop(0)
if not args or args.pop(0) != '--' or not args:
    sys.exit(__doc__)

master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 120, 0, 0))
pid = os.fork()
if pid == 0:
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    os.dup2(slave, 0)
    os.dup2(slave, 2)
    if stdout_file:
        fd = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.close(fd)
    else:
        os.dup2(slave, 1)
    if slave > 2:
        os.close(slave)
    os.environ['TERM'] = 'xterm'
    try:
        os.execvp(args[0], args)
    finally:
        os._exit(127)
os.close(slave)

out = bytearray()
deadline = time.monotonic() + timeout
status = None
sent = False
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        status = 124
        break
    r, _, _ = select.select([master], [], [], min(left, 0.2))
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            data = b''
        if data:
            out += data
            if send_re is not None and not sent and send_re.search(out):
                os.write(master, send_bytes)
                sent = True
            continue
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        # drain what is left
        while select.select([master], [], [], 0.1)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        status = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
        break
with open(outfile, 'wb') as f:
    f.write(out)
sys.exit(status)
