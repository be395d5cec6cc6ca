/* Running external programs: always an argv array through execvp, never a shell, and
 * never without a time limit (except the long-lived daemons of sf_exec_spawn). */
#pragma once
#include <stdint.h>
#include <sys/types.h>

/* Wall-clock limit of sf_exec/sf_exec_netns: no helper command (ip, iptables, sysctl,
 * genisoimage, qemu-img) legitimately takes longer; a hung one must not block a worker. */
#define SF_EXEC_TIMEOUT_MS_DEFAULT (120 * 1000)
/* After a timeout the process group gets SIGTERM, then SIGKILL after this grace. */
#define SF_EXEC_KILL_GRACE_MS 500

typedef struct {
        int timeout_ms;    /* wall clock; 0 = SF_EXEC_TIMEOUT_MS_DEFAULT */
        int cpu_s;         /* RLIMIT_CPU of the child, seconds; 0 = unlimited */
        uint64_t as_bytes; /* RLIMIT_AS of the child; 0 = unlimited */
} sf_exec_opts_t;

/* Run argv[0] (PATH lookup) with argv in its own process group, wait for it.  Output
 * (stdout and stderr merged) goes into *ret_output when non-NULL (NUL-terminated, at most
 * 1 MiB kept; also set on failure, when there is output).  Returns 0 when it exits 0;
 * -EIO when it exits non-zero or dies of a signal (a CPU limit is SIGXCPU, a memory limit
 * usually a failed allocation) with *ret_status = exit code or 128+signal; -ETIMEDOUT when
 * it outlived opts->timeout_ms (the whole process group is killed and the child reaped
 * before returning); another -errno when it cannot be started.  opts may be NULL. */
int sf_exec_limited(char *const argv[], const sf_exec_opts_t *opts, char **ret_output, int *ret_status);

/* sf_exec_limited with the default timeout and no resource limits. */
int sf_exec(char *const argv[], char **ret_output, int *ret_status);

/* As sf_exec, but inside network namespace `netns` (via `ip netns exec`). */
int sf_exec_netns(const char *netns, char *const argv[], char **ret_output, int *ret_status);

/* Start argv in the background, stdout+stderr appended to log_path (or /dev/null),
 * in its own process group, with no time limit.  The caller reaps it. */
int sf_exec_spawn(char *const argv[], const char *log_path, pid_t *ret_pid);
