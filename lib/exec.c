#include "exec.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUTPUT_MAX (1024 * 1024)

static void child_exec(char *const argv[], int out_fd) {
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
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
}

int sf_exec(char *const argv[], char **ret_output, int *ret_status) {
        int pipefd[2], status = 0, r = 0;
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
        if (pid == 0)
                child_exec(argv, pipefd[1]);
        close(pipefd[1]);
        buf = malloc(OUTPUT_MAX + 1);
        for (;;) {
                char tmp[8192];
                ssize_t n = read(pipefd[0], tmp, sizeof(tmp));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (buf && len < OUTPUT_MAX) {
                        size_t take = (size_t)n < OUTPUT_MAX - len ? (size_t)n : OUTPUT_MAX - len;
                        memcpy(buf + len, tmp, take);
                        len += take;
                }
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR) {
                        r = -errno;
                        goto cleanup;
                }
        }
        if (WIFEXITED(status))
                status = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                status = 128 + WTERMSIG(status);
        if (status == 127 && buf && len == 0)
                r = -ENOENT;
        else if (status != 0)
                r = -EIO;
        if (r < 0 && buf) {
                buf[len] = 0;
                log_debug("exec %s: status %d: %s", argv[0], status, buf);
        }
cleanup:
        if (buf)
                buf[len] = 0;
        if (ret_status)
                *ret_status = status;
        if (ret_output && buf) {
                *ret_output = buf;
                buf = NULL;
        }
        free(buf);
        return r;
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
                child_exec(argv, fd);
        }
        close(fd);
        *ret_pid = pid;
        return 0;
}
