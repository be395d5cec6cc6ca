/* Unit tests for lib/exec.c: output, exit codes, the timeout (the whole process group
 * goes), and the CPU and memory limits of sf_exec_limited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"

/* Gone, or a zombie waiting for init: either way it no longer runs. */
static int process_running(pid_t pid) {
        char path[64], stat[512], *p;
        FILE *f;

        if (kill(pid, 0) < 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        p = fgets(stat, sizeof(stat), f);
        fclose(f);
        p = p ? strrchr(stat, ')') : NULL;
        return !(p && (p[2] == 'Z' || p[2] == 'X'));
}

static void test_output(void **state) {
        char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
        char *ok[] = {"echo", "hello", NULL};
        char *missing[] = {"/nonexistent/sf-no-such-program", NULL};
        char *out = NULL;
        int status = -1;

        (void)state;
        assert_int_equal(sf_exec(ok, &out, &status), 0);
        assert_string_equal(out, "hello\n");
        assert_int_equal(status, 0);
        free(out);
        out = NULL;
        assert_int_equal(sf_exec(argv, &out, &status), -EIO);
        assert_int_equal(status, 3);
        assert_non_null(strstr(out, "out"));
        assert_non_null(strstr(out, "err"));
        free(out);
        assert_int_equal(sf_exec(missing, NULL, NULL), -ENOENT);
}

/* A child that sleeps past its timeout, with a grandchild in the background, and one
 * that ignores SIGTERM: -ETIMEDOUT within the grace, and nothing of them left. */
static void test_timeout_kills_group(void **state) {
        char *argv[] = {"sh", "-c", "sleep 30 & echo $!; sleep 30", NULL};
        char *stubborn[] = {"sh", "-c", "trap '' TERM; sleep 30 & echo $!; sleep 30; sleep 30", NULL};
        sf_exec_opts_t opts = {.timeout_ms = 1000};
        char *out = NULL;
        int64_t t0;
        pid_t grandchild;

        (void)state;
        t0 = sf_mono_ms();
        assert_int_equal(sf_exec_limited(argv, &opts, &out, NULL), -ETIMEDOUT);
        assert_true(sf_mono_ms() - t0 < 3000);
        assert_non_null(out);
        grandchild = (pid_t)atoi(out);
        free(out);
        out = NULL;
        assert_true(grandchild > 0);
        usleep(100 * 1000);
        assert_false(process_running(grandchild));

        t0 = sf_mono_ms();
        assert_int_equal(sf_exec_limited(stubborn, &opts, &out, NULL), -ETIMEDOUT);
        assert_true(sf_mono_ms() - t0 < 3000);
        grandchild = (pid_t)atoi(out);
        free(out);
        assert_true(grandchild > 0);
        usleep(100 * 1000);
        assert_false(process_running(grandchild));
}

/* The default applies to plain sf_exec (no caller can forget it). */
static void test_default_timeout(void **state) {
        (void)state;
        assert_true(SF_EXEC_TIMEOUT_MS_DEFAULT > 0 && SF_EXEC_TIMEOUT_MS_DEFAULT <= 300 * 1000);
        assert_true(SF_EXEC_KILL_GRACE_MS < 2000);
}

static void test_memory_limit(void **state) {
        /* 512 MiB mapped (not touched): fine unbounded, impossible under a 256 MiB address space */
        char *argv[] = {"python3", "-c", "import mmap; m = mmap.mmap(-1, 512 << 20); print('allocated')", NULL};
        sf_exec_opts_t limited = {.timeout_ms = 30000, .as_bytes = 256ULL << 20};
        sf_exec_opts_t unlimited = {.timeout_ms = 30000};
        char *out = NULL;
        int status = 0;

        (void)state;
        assert_int_equal(sf_exec_limited(argv, &unlimited, &out, NULL), 0);
        assert_non_null(strstr(out, "allocated"));
        free(out);
        out = NULL;
        assert_int_equal(sf_exec_limited(argv, &limited, &out, &status), -EIO);
        assert_int_not_equal(status, 0);
        assert_null(strstr(out, "allocated"));
        free(out);
}

static void test_cpu_limit(void **state) {
        char *argv[] = {"sh", "-c", "while :; do :; done", NULL};
        sf_exec_opts_t opts = {.timeout_ms = 30000, .cpu_s = 1};
        int status = 0;
        int64_t t0 = sf_mono_ms();

        (void)state;
        assert_int_equal(sf_exec_limited(argv, &opts, NULL, &status), -EIO);
        assert_int_equal(status, 128 + SIGXCPU);
        assert_true(sf_mono_ms() - t0 < 30000); /* the CPU limit, not the timeout, ended it */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_output),
                cmocka_unit_test(test_timeout_kills_group),
                cmocka_unit_test(test_default_timeout),
                cmocka_unit_test(test_memory_limit),
                cmocka_unit_test(test_cpu_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
