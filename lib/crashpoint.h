/* Crash points: named places where a fault test can kill (or freeze) the process.
 *
 * SF_CRASHPOINT=<name>[:<n>][:stop] makes the n-th pass (default 1st) through the point
 * called <name> raise SIGKILL, as `kill -9` would (with `:stop`, SIGSTOP: the test
 * then decides what happens next, e.g. SIGTERM or a lock takeover).  <name> `*` counts
 * the passes through every point, so `*:N` stops at the N-th point reached, whatever
 * its name: a fault test walks N = 1, 2, ... until a run ends without a crash, and so
 * reaches every point of the operation without listing them.  Before dying it writes
 * "crashpoint <name> (#N)" to stderr, which names the point in the test's log.
 * Unset (production), a pass costs one load and a branch. */
#pragma once

/* A crash point.  name: "<operation>.<step>", e.g. "create.disks". */
void sf_crashpoint(const char *name);
