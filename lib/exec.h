/* Running external programs: always an argv array through execvp, never a shell. */
#pragma once
#include <sys/types.h>

/* Run argv[0] (PATH lookup) with argv, wait for it.  Output (stdout and stderr merged)
 * goes into *ret_output when non-NULL (NUL-terminated, at most 1 MiB kept).
 * Returns 0 when it exits 0; -EIO when it exits non-zero (*ret_status = exit code or
 * 128+signal), another -errno when it cannot be started. */
int sf_exec(char *const argv[], char **ret_output, int *ret_status);

/* As sf_exec, but inside network namespace `netns` (via `ip netns exec`). */
int sf_exec_netns(const char *netns, char *const argv[], char **ret_output, int *ret_status);

/* Start argv in the background, stdout+stderr appended to log_path (or /dev/null),
 * in its own process group.  The caller reaps it. */
int sf_exec_spawn(char *const argv[], const char *log_path, pid_t *ret_pid);
