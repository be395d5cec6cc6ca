/* Unit tests for lib/crashpoint.c: SF_CRASHPOINT picks the point and the pass that
 * kills (or stops) the process, `*` counts every point, unset does nothing.  Each case
 * runs in a forked child (the point reads the environment once per process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashpoint.h"

/* Runs the points a, b, a, b, c in a child with SF_CRASHPOINT=env (NULL: unset); the
 * child exits with the number of points passed.  Returns its wait status. */
static int run_child(const char *env) {
        static const char *const seq[] = {"x.a", "x.b", "x.a", "x.b", "x.c"};
        int status = 0;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                int n = 0;

                if (env)
                        setenv("SF_CRASHPOINT", env, 1);
                else
                        unsetenv("SF_CRASHPOINT");
                for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++, n++)
                        sf_crashpoint(seq[i]);
                _exit(n);
        }
        assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
        if (WIFSTOPPED(status)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        return status;
}

static void test_unset_is_noop(void **state) {
        int st;

        (void)state;
        st = run_child(NULL);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 5);
        st = run_child("");
        assert_true(WIFEXITED(st));
        st = run_child("x.none");
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 5);
}

static void test_named_kills_first_pass(void **state) {
        int st;

        (void)state;
        st = run_child("x.b");
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void test_named_nth_pass(void **state) {
        int st;

        (void)state;
        st = run_child("x.a:3");   /* x.a is passed twice only */
        assert_true(WIFEXITED(st));
        st = run_child("x.a:2");
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void test_any_counts_every_point(void **state) {
        int st;

        (void)state;
        st = run_child("*:5");
        assert_true(WIFSIGNALED(st));
        st = run_child("*:6");
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 5);
}

static void test_stop(void **state) {
        int st;

        (void)state;
        st = run_child("x.c:stop");
        assert_true(WIFSTOPPED(st));
        assert_int_equal(WSTOPSIG(st), SIGSTOP);
        st = run_child("x.b:2:stop");
        assert_true(WIFSTOPPED(st));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unset_is_noop),
                cmocka_unit_test(test_named_kills_first_pass),
                cmocka_unit_test(test_named_nth_pass),
                cmocka_unit_test(test_any_counts_every_point),
                cmocka_unit_test(test_stop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
