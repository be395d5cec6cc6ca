#include "exec.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUTPUT_MAX (1024 * 1024)
/* Without a pidfd, how often to look whether the child has exited. */
#define EXIT_POLL_MS 10

static void child_limit(int resource, uint64_t value) {
        /* RLIMIT_CPU: SIGXCPU at the soft limit says why it died; SIGKILL a second later. */
        struct rlimit rl = {.rlim_cur = value, .rlim_max = resource == RLIMIT_CPU ? value + 1 : value};

        if (value && setrlimit(resource, &rl) < 0)
                _exit(126); /* never run it unbounded when bounds were asked for */
}

/* In the child: stdin from /dev/null, stdout+stderr to out_fd, limits, exec. */
static void child_exec(char *const argv[], int out_fd, const sf_exec_opts_t *opts) {
        int devnull = open("/dev/null", O_RDONLY);

        if (devnull >= 0)
                dup2(devnull, 0);
        if (out_fd >= 0) {
                dup2(out_fd, 1);
                dup2(out_fd, 2);
        }
        /* Leave every other descriptor behind: daemons must not inherit our sockets. */
        for (int fd = 3; fd < 1024; fd++)
                close(fd);
        if (opts) {
                child_limit(RLIMIT_CPU, (uint64_t)(opts->cpu_s > 0 ? opts->cpu_s : 0));
                child_limit(RLIMIT_AS, opts->as_bytes);
        }
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
}

static int ms_left(int64_t deadline_ms) {
        int64_t left = deadline_ms - sf_mono_ms();

        return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Read fd until EOF into buf (keeping at most OUTPUT_MAX bytes); -ETIMEDOUT at the
 * deadline.  Grandchildren holding the pipe keep it open, so EOF is not "exited". */
static int output_read(int fd, int64_t deadline_ms, char *buf, size_t *len) {
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                char chunk[8192];
                ssize_t n;
                int k = poll(&p, 1, ms_left(deadline_ms));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ETIMEDOUT;
                n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                if (buf && *len < OUTPUT_MAX) {
                        size_t kept = (size_t)n < OUTPUT_MAX - *len ? (size_t)n : OUTPUT_MAX - *len;
                        memcpy(buf + *len, chunk, kept);
                        *len += kept;
                }
        }
}

/* Wait until pid has exited, without reaping it (a zombie leader keeps its process
 * group id reserved, so killing the group later cannot hit a stranger).  0 when it has
 * exited, -ETIMEDOUT at the deadline. */
static int child_wait_exit(pid_t pid, int pidfd, int64_t deadline_ms) {
        for (;;) {
                siginfo_t si = {0};

                if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
                        return 0;
                if (ms_left(deadline_ms) == 0)
                        return -ETIMEDOUT;
                if (pidfd >= 0) {
                        struct pollfd p = {.fd = pidfd, .events = POLLIN};
                        poll(&p, 1, ms_left(deadline_ms));
                } else {
                        int nap = ms_left(deadline_ms);
                        poll(NULL, 0, nap < EXIT_POLL_MS ? nap : EXIT_POLL_MS);
                }
        }
}

/* SIGTERM to the child's process group, SIGKILL after the grace (also to grandchildren
 * that outlived it), then reap the child. */
static void group_kill(pid_t pid, int pidfd) {
        kill(-pid, SIGTERM);
        child_wait_exit(pid, pidfd, sf_mono_ms() + SF_EXEC_KILL_GRACE_MS);
        kill(-pid, SIGKILL);
}

static int child_reap(pid_t pid, int *status) {
        while (waitpid(pid, status, 0) < 0) {
                if (errno != EINTR)
                        return -errno;
        }
        if (WIFEXITED(*status))
                *status = WEXITSTATUS(*status);
        else if (WIFSIGNALED(*status))
                *status = 128 + WTERMSIG(*status);
        return 0;
}

int sf_exec_limited(char *const argv[], const sf_exec_opts_t *opts, char **ret_output, int *ret_status) {
        int timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : SF_EXEC_TIMEOUT_MS_DEFAULT;
        _cleanup_close_ int pidfd = -1;
        int pipefd[2], status = 0, r = 0, rr;
        int64_t deadline_ms;
        char *buf = NULL;
        size_t len = 0;
        pid_t pid;

        if (!argv || !argv[0])
                return -EINVAL;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                /* Its own group, so a timeout kills whatever it started too. */
                setpgid(0, 0);
                child_exec(argv, pipefd[1], opts);
        }
        setpgid(pid, pid); /* both sides: whichever runs first, the group exists before a kill */
        close(pipefd[1]);
        deadline_ms = sf_mono_ms() + timeout_ms;
        pidfd = pidfd_open(pid, 0);
        buf = malloc(OUTPUT_MAX + 1);
        r = output_read(pipefd[0], deadline_ms, buf, &len);
        close(pipefd[0]);
        if (r == 0)
                r = child_wait_exit(pid, pidfd, deadline_ms);
        if (r < 0) {
                /* Timed out (or the pipe broke): nothing of it may outlive this call. */
                group_kill(pid, pidfd);
                if (r == -ETIMEDOUT)
                        log_warn("exec %s: no exit after %d ms: killed", argv[0], timeout_ms);
        }
        rr = child_reap(pid, &status);
        if (r == 0)
                r = rr;
        if (r == 0) {
                if (status == 127 && len == 0)
                        r = -ENOENT;
                else if (status != 0)
                        r = -EIO;
        }
        if (buf)
                buf[len] = 0;
        if (r < 0 && buf)
                log_debug("exec %s: status %d: %s", argv[0], status, buf);
        if (ret_status)
                *ret_status = status;
        if (ret_output && buf) {
                *ret_output = buf;
                buf = NULL;
        }
        free(buf);
        return r;
}

int sf_exec(char *const argv[], char **ret_output, int *ret_status) {
        return sf_exec_limited(argv, NULL, ret_output, ret_status);
}

int sf_exec_netns(const char *netns, char *const argv[], char **ret_output, int *ret_status) {
        size_t n = 0;

        while (argv[n])
                n++;
        char *full[n + 5];
        full[0] = (char *)"ip";
        full[1] = (char *)"netns";
        full[2] = (char *)"exec";
        full[3] = (char *)netns;
        for (size_t i = 0; i <= n; i++)
                full[4 + i] = argv[i];
        return sf_exec(full, ret_output, ret_status);
}

int sf_exec_spawn(char *const argv[], const char *log_path, pid_t *ret_pid) {
        int fd;
        pid_t pid;

        fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                  0640);
        if (fd < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        if (pid == 0) {
                setpgid(0, 0);
                child_exec(argv, fd, NULL);
        }
        close(fd);
        *ret_pid = pid;
        return 0;
}
