#!/usr/bin/env bash
# `make install` and what it installs for the sf CLI: DESTDIR and PREFIX honoured and
# nothing written outside DESTDIR (nor rebuilt); the installed `sf --help` works; the man
# page renders without warnings and names every group, command and option the binary's
# tables hold (walked through `sf __complete`); the bash completion offers groups, commands,
# options and choices (the same as each command's --help lists), and the names of
# namespaces from a running sf-api, giving up quickly on an API that never answers;
# `make uninstall` removes every installed file.
source "$(dirname "$0")/lib.sh"

SF=$BUILD/sf
[ -x "$SF" ] || fail "$SF is missing (make all)"
MK=(make --no-print-directory -C "$E2E_ROOT" "BUILD=$(realpath --relative-to="$E2E_ROOT" "$BUILD")")

# ---- 1. make install DESTDIR=... -------------------------------------------------------
D=$W/destdir
mkdir -p "$D"
touch "$W/stamp"
sleep 1   # -newer compares whole seconds on some file systems
"${MK[@]}" install DESTDIR="$D" > "$W/install.log" 2>&1 || fail "make install failed: $(tail -5 "$W/install.log")"
for f in bin/sf sbin/sf-api sbin/sf-compute sbin/sf-network sbin/sf-blob sbin/sf-ctl sbin/sf-creds \
         share/sf/templates/domain.xml share/man/man1/sf.1 share/bash-completion/completions/sf; do
    [ -f "$D/usr/local/$f" ] || fail "make install did not install /usr/local/$f"
done
for f in bin/sf sbin/sf-api sbin/sf-ctl; do
    [ -x "$D/usr/local/$f" ] || fail "/usr/local/$f is not executable"
done
for t in "$E2E_ROOT"/templates/*.xml; do
    cmp -s "$t" "$D/usr/local/share/sf/templates/$(basename "$t")" || fail "template $(basename "$t") not installed"
done
# Nothing outside DESTDIR: no file of the usual places is newer than the stamp, the build
# dir was not touched (install builds nothing when it is up to date), and every path the
# recipe writes starts with DESTDIR.
out=$(find /usr/local /usr/share/man/man1 /usr/share/bash-completion /etc/bash_completion.d \
       -newer "$W/stamp" 2>/dev/null | head -5)
[ -z "$out" ] || fail "make install wrote outside DESTDIR: $out"
out=$(find "$BUILD" -newer "$W/stamp" -type f 2>/dev/null | grep -v '/bench/' | head -5 || true)
[ -z "$out" ] || fail "make install rebuilt: $out"
"${MK[@]}" -n install DESTDIR="$D" | python3 -c '
import shlex, sys
dest = sys.argv[1]
for line in sys.stdin.read().replace("\\\n", " ").splitlines():
    w = shlex.split(line)
    if not w or w[0] != "install":
        continue
    targets = [a for a in w[2:] if not a.startswith("-")] if "-d" in w else [w[-1]]
    for t in targets:
        if not t.startswith(dest + "/"):
            sys.exit("install writes %s, outside DESTDIR" % t)
' "$D" || fail "make -n install names a path outside DESTDIR"
log "make install DESTDIR: $(find "$D" -type f | wc -l) files, all under DESTDIR, nothing rebuilt"

# The installed client works from there, with no server and no configuration.
out=$(env -u SHAKENFIST_API_URL HOME=/nonexistent "$D/usr/local/bin/sf" --help) || fail "installed sf --help failed"
grep '^  namespace ' > /dev/null <<< "$out" || fail "installed sf --help lists no namespace group: $out"
[ "$("$D/usr/local/bin/sf" version)" = "$("$SF" version)" ] || fail "installed sf version differs"

# ---- 2. the man page --------------------------------------------------------------------
MAN=$D/usr/local/share/man/man1/sf.1
out=$(groff -ww -man -z "$MAN" 2>&1) || fail "groff failed on sf.1"
[ -z "$out" ] || fail "groff -ww warns on sf.1: $out"
out=$(MANWIDTH=80 man --warnings -l "$MAN" 2>&1 > "$W/sf.1.txt") || fail "man -l sf.1 failed"
[ -z "$out" ] || fail "man -l sf.1 warns: $out"
grep -q 'EXIT STATUS' "$W/sf.1.txt" || fail "sf.1 has no EXIT STATUS section"
# The roff source without font escapes and with plain hyphens, to search for names.
sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' "$MAN" > "$W/sf.1.plain"

complete_words() { "$SF" __complete "$@"; }   # CWORD WORD...
groups=$(complete_words 0 '') || fail "sf __complete 0 failed"
[ -n "$groups" ] || fail "sf __complete lists no groups"
missing=()
ncmds=0
for g in $groups; do
    if [ "$g" = version ]; then
        grep -qF "sf version" "$W/sf.1.plain" || missing+=("sf version")
        continue
    fi
    for c in $(complete_words 1 "$g" ''); do
        ncmds=$((ncmds + 1))
        grep -qF "sf $g $c" "$W/sf.1.plain" || missing+=("sf $g $c")
        for o in $(complete_words 2 "$g" "$c" --); do
            grep -qF -- "$o" "$W/sf.1.plain" || missing+=("sf $g $c $o")
        done
    done
done
[ ${#missing[@]} -eq 0 ] || fail "docs/sf.1 does not document: ${missing[*]}"
# The other way round is only reported: commands documented but not in this binary.
extra=$(sed -n '/^\.SH COMMANDS/,/^\.SH OUTPUT/p' "$W/sf.1.plain" | grep -o '^[.A-Z "]*sf [a-z]* [a-z-]*' |
        sed 's/^[.A-Z "]*//' | sort -u | while read -r _ g c; do
            complete_words 1 "$g" '' | grep -qx -- "$c" || echo "sf $g $c"
        done | paste -sd, -)
log "man page: renders clean; documents all $ncmds commands of the binary${extra:+ (documented, not in this binary: $extra)}"

# ---- 3. bash completion -----------------------------------------------------------------
COMP=$D/usr/local/share/bash-completion/completions/sf
# comp WORD...: what bash offers for the last word (COMP_WORDS as bash would split them).
comp() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _sf
             printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd" "' _ "$COMP" "$SF" "$@"
}
expect_comp() {   # "want" WORD...
    local want=$1 got; shift
    got=$(comp "$@")
    [ "$got" = "$want" ] || fail "completing 'sf $*': got '$got', want '$want'"
}
expect_comp "instance interface" in
expect_comp "admin events instance interface namespace network node version" ''
expect_comp "add-key add-trust" namespace add
expect_comp "--async --async-strategy" --as
expect_comp "block continue pause" --json --async ''
expect_comp "pause" --async = p                    # --async=p, split by bash at '='
expect_comp "--help" version --
expect_comp "" nosuchgroup ''
expect_comp "--async=block" --async=b               # one word when '=' is no word break
# Choices and argument kinds of commands, where this binary has them.
has_cmd() { complete_words 1 "$1" '' | grep -qx -- "$2"; }
if has_cmd admin lock; then
    expect_comp "list" admin lock ''
    expect_comp "" admin lock list ''
fi
if has_cmd instance create; then
    expect_comp "none openstack-disk" instance create vm 1 256 --configdrive ''
    expect_comp "none" instance create vm 1 256 --configdrive = n
    rc=0; complete_words 6 instance create vm 1 256 -i '' > /dev/null || rc=$?
    [ "$rc" = 2 ] || fail "completing 'sf instance create vm 1 256 -i': exit $rc, want 2 (file names)"
fi
if has_cmd instance events; then
    expect_comp "audit historic mutate prune resources status usage" instance events vm -t ''
fi
# Help is offline and fits 79 columns (but for the Usage line); every command's options are
# completed as its --help lists them.
offline() { env -u SHAKENFIST_API_URL -u SHAKENFIST_NAMESPACE -u SHAKENFIST_KEY HOME=/nonexistent "$SF" "$@"; }
help_fits() {   # WHAT: help text on stdin
    local long
    long=$(grep -v '^Usage: ' | awk 'length > 79' | head -3)
    [ -z "$long" ] || fail "$1 has lines over 79 columns: $long"
}
offline --help > "$W/help.txt" || fail "sf --help failed offline"
help_fits "sf --help" < "$W/help.txt"
for g in $groups; do
    [ "$g" = version ] && continue
    offline "$g" --help > "$W/help.txt" || fail "sf $g --help failed offline"
    help_fits "sf $g --help" < "$W/help.txt"
    for c in $(complete_words 1 "$g" ''); do
        offline "$g" "$c" --help > "$W/help.txt" || fail "sf $g $c --help failed offline"
        help_fits "sf $g $c --help" < "$W/help.txt"
        grep -q '^Options:' "$W/help.txt" || fail "sf $g $c --help lists no options"
        want=$(grep -o '^  \(-., \)\?--[a-z-]*\( / --[a-z-]*\)\?' "$W/help.txt" |
               sed -e 's/^  //' -e 's/^-., //' | tr '/' '\n' | tr -d ' ' | sort | paste -sd' ')
        expect_comp "$want" "$g" "$c" --
    done
done
log "completion: groups, commands, options (as --help lists them) and choices"

# Names from a running API: a namespace created here is offered for NAMESPACE arguments.
mkdir -m 0755 "$STORAGE"
REDIS_PORT=$(free_port); NATS_PORT=$(free_port); NATS_MON_PORT=$(free_port); API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
"$E2E_ROOT/tools/sf-creds" "$W/creds" > /dev/null || fail "tools/sf-creds failed"
REDISCLI_AUTH=$(cat "$W/creds/redis_password")
export REDISCLI_AUTH
start_redis
start_nats
wait_until 20 redis redis_up
wait_until 20 nats nats_up
unset SF_AUTH_SECRET_FILE SF_REDIS_PASSWORD SF_NATS_PASSWORD
export SF_NODE=$NODE SF_REDIS_HOST=127.0.0.1 SF_REDIS_PORT=$REDIS_PORT \
    SF_NATS_URL=nats://127.0.0.1:$NATS_PORT SF_API_BIND=127.0.0.1 SF_API_PORT=$API_PORT \
    SF_STORAGE=$STORAGE SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
    SF_NATS_PASSWORD_FILE=$W/creds/nats_password
SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export SF_AUTH_SECRET
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
"$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 || fail "sf-ctl bootstrap-system-key failed"
start_daemon sf-api
wait_until 30 sf-api api_up
export HOME=$W/home SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY
mkdir -p "$HOME"
NS=compl-$E2E_ID
"$SF" namespace create "$NS" || fail "sf namespace create $NS"
expect_comp "$NS" namespace show compl-
expect_comp "$NS" namespace add-trust system compl-
expect_comp "" namespace add-key "$NS" ''           # KEYNAME: nothing to offer
# Settings on the line count too (here: a wrong key offers nothing, and says nothing).
out=$(env -u SHAKENFIST_KEY bash -c 'source "$1"; COMP_WORDS=("$2" --key wrong namespace show compl-); COMP_CWORD=5; _sf; echo "${COMPREPLY[*]}"' _ "$COMP" "$SF" 2>&1)
[ -z "$out" ] || fail "completion with a wrong key printed '$out'"
"$SF" namespace delete "$NS" || fail "sf namespace delete $NS"

# An API that accepts connections but never answers: completion gives up after 3 s.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' > "$W/blackhole.port" & PIDS[blackhole]=$!; STARTED+=(blackhole)
wait_until 10 "blackhole port" test -s "$W/blackhole.port"
t0=$(date +%s%N)
out=$(SHAKENFIST_API_URL=http://127.0.0.1:$(cat "$W/blackhole.port") comp namespace show '')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ -z "$out" ] || fail "completion against a silent API offered '$out'"
[ "$ms" -lt 6000 ] || fail "completion against a silent API took $ms ms"
log "completion: namespace names from the API; a silent API costs $ms ms and offers nothing"

# ---- 4. PREFIX, and make uninstall --------------------------------------------------------
D2=$W/destdir2
"${MK[@]}" install DESTDIR="$D2" PREFIX=/opt/sf > "$W/install2.log" 2>&1 || fail "make install PREFIX=/opt/sf failed"
[ -x "$D2/opt/sf/bin/sf" ] && [ -f "$D2/opt/sf/share/man/man1/sf.1" ] &&
    [ -f "$D2/opt/sf/share/sf/templates/domain.xml" ] || fail "PREFIX=/opt/sf not honoured: $(find "$D2" -type f | head)"
[ ! -e "$D2/usr" ] || fail "PREFIX=/opt/sf still installed into /usr"
"${MK[@]}" uninstall DESTDIR="$D2" PREFIX=/opt/sf > "$W/uninstall.log" 2>&1 || fail "make uninstall failed"
out=$(find "$D2" -type f)
[ -z "$out" ] || fail "make uninstall left: $out"
"${MK[@]}" uninstall DESTDIR="$D" > /dev/null 2>&1 || fail "make uninstall failed"
[ -z "$(find "$D" -type f)" ] || fail "make uninstall left files in $D"
log "PREFIX=/opt/sf honoured; make uninstall removes every installed file"
