/* execloop: how long short-lived programs take to start, run and exit, measured as
 * fork + exec + wait with no shell in between (for `make bench`'s cli part,
 * tools/bench/part-cli.sh). The commands are run in turn (A B C A B C ...), so a burst of
 * load on a shared machine hits all of them alike; stdout and stderr go to /dev/null.
 *
 *   execloop [-n RUNS] [-w WARMUP] -- PROGRAM [ARGS...] [-- PROGRAM [ARGS...]]...
 *
 * Prints one JSON array, one object per command in order: {"runs", "median_ms", "p10_ms",
 * "p90_ms", "min_ms", "max_ms"}. Exits 1 if a command cannot run or exits non-zero. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 8

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One fork + exec + wait of argv; its wall time in ms, or -1 on failure. */
static double cmd_time_once(char **argv, int devnull) {
        double t0 = now_ms();
        int status;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                dup2(devnull, STDOUT_FILENO);
                dup2(devnull, STDERR_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -1;
        return now_ms() - t0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p) {
        int i = (int)(p * (n - 1) + 0.5);
        return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int main(int argc, char **argv) {
        int runs = 200, warmup = 20, ncmds = 0, opt, devnull, rc = 1;
        char **cmds[MAX_CMDS];
        double *samples[MAX_CMDS] = {0};

        while ((opt = getopt(argc, argv, "+n:w:")) != -1) {
                if (opt == 'n')
                        runs = atoi(optarg);
                else if (opt == 'w')
                        warmup = atoi(optarg);
                else
                        return 2;
        }
        /* the commands, separated by "--" (getopt has skipped the first one) */
        for (int i = optind; i < argc;) {
                if (!strcmp(argv[i], "--")) {
                        i++;
                        continue;
                }
                if (ncmds == MAX_CMDS)
                        return 2;
                cmds[ncmds++] = &argv[i];
                while (i < argc && strcmp(argv[i], "--"))
                        i++;
                if (i < argc)
                        argv[i++] = NULL; /* ends this command's argv */
        }
        if (ncmds == 0 || runs < 1 || warmup < 0) {
                fprintf(stderr, "usage: execloop [-n RUNS] [-w WARMUP] -- PROGRAM [ARGS...] [-- PROGRAM...]\n");
                return 2;
        }
        if ((devnull = open("/dev/null", O_WRONLY)) < 0)
                return 1;
        for (int c = 0; c < ncmds; c++)
                if (!(samples[c] = calloc((size_t)runs, sizeof(double))))
                        goto cleanup;
        for (int r = -warmup; r < runs; r++)
                for (int c = 0; c < ncmds; c++) {
                        double ms = cmd_time_once(cmds[c], devnull);
                        if (ms < 0) {
                                fprintf(stderr, "execloop: %s failed\n", cmds[c][0]);
                                goto cleanup;
                        }
                        if (r >= 0)
                                samples[c][r] = ms;
                }
        printf("[");
        for (int c = 0; c < ncmds; c++) {
                qsort(samples[c], (size_t)runs, sizeof(double), cmp_double);
                printf("%s{\"runs\": %d, \"median_ms\": %.4f, \"p10_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, "
                       "\"max_ms\": %.4f}",
                       c ? ", " : "", runs, percentile(samples[c], runs, 0.5), percentile(samples[c], runs, 0.1),
                       percentile(samples[c], runs, 0.9), samples[c][0], samples[c][runs - 1]);
        }
        printf("]\n");
        rc = 0;
cleanup:
        for (int c = 0; c < ncmds; c++)
                free(samples[c]);
        close(devnull);
        return rc;
}
