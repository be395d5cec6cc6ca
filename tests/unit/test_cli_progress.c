/* Unit tests for cli/progress.c (the sf CLI's progress line): the text is a pure function
 * of done/total/elapsed/limit/width; drawing happens only on a terminal.
 * progress.c is compiled in here: the CLI is not part of the module libraries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/progress.c"

static const char *fmt(const sf_progress_view_t *v, int width) {
        static char buf[1024];
        size_t n = sf_progress_format(buf, sizeof(buf), v, width);
        assert_int_equal(n, strlen(buf));
        return buf;
}

static void test_bytes(void **state) {
        (void)state;
        sf_progress_view_t v = {.label = "sftest.qcow2", .done = 524288, .total = 1048576, .elapsed = 2,
                                .limit = -1, .unit = "B"};
        assert_string_equal(fmt(&v, 100), "sftest.qcow2 [#############--------------]  50% 512.0 KiB/1.0 MiB "
                                          "256.0 KiB/s elapsed 0:02 ETA 0:02");
        /* done, no rate yet: no ETA either */
        v.done = 0;
        assert_string_equal(fmt(&v, 80), "sftest.qcow2 [------------------------------]   0% 0 B/1.0 MiB elapsed 0:02");
        /* finished: full bar, ETA 0 */
        v.done = v.total = 3 * 1048576;
        v.elapsed = 3;
        assert_string_equal(fmt(&v, 100), "sftest.qcow2 [##############################] 100% 3.0 MiB/3.0 MiB "
                                         "1.0 MiB/s elapsed 0:03 ETA 0:00");
        /* more than announced (a server that lied): clamped, never past 100% */
        v.done = 4 * 1048576;
        assert_non_null(strstr(fmt(&v, 100), "[##############################] 100% 4.0 MiB/3.0 MiB"));
        /* total unknown: no bar, no percentage */
        sf_progress_view_t u = {.label = "x", .done = 100, .total = 0, .elapsed = 1, .limit = -1, .unit = "B"};
        assert_string_equal(fmt(&u, 80), "x 100 B 100 B/s elapsed 0:01");
}

static void test_states(void **state) {
        (void)state;
        /* 2 of 3 states in 4 s: 2 s left at that rate, well inside the 56 s left */
        sf_progress_view_t v = {.label = "instance vm1: creating", .done = 2, .total = 3, .elapsed = 4, .limit = 56};
        assert_string_equal(fmt(&v, 80), "instance vm1: creating [##################----------] 2/3 elapsed 0:04 ETA 0:02");
        /* no state passed yet: the deadline is the ETA */
        v.done = 0;
        assert_string_equal(fmt(&v, 80), "instance vm1: creating [----------------------------] 0/3 elapsed 0:04 ETA 0:56");
        /* the rate says longer than the deadline allows: the deadline wins */
        v.done = 1;
        v.elapsed = 50;
        v.limit = 10;
        assert_non_null(strstr(fmt(&v, 80), "ETA 0:10"));
        /* a time budget (unit "s"): a bar, no count */
        sf_progress_view_t t = {.label = "instance vm1: deleting", .done = 3, .total = 60, .elapsed = 3, .limit = 57,
                                .unit = "s"};
        assert_string_equal(fmt(&t, 80), "instance vm1: deleting [#-----------------------------] elapsed 0:03 ETA 0:57");
}

/* Short of room: rate, elapsed, count, the bar, ETA go in turn, then the label is cut;
 * the line never reaches the last column (a terminal would wrap it). */
static void test_width(void **state) {
        (void)state;
        sf_progress_view_t v = {.label = "sftest.qcow2", .done = 524288, .total = 1048576, .elapsed = 2,
                                .limit = -1, .unit = "B"};
        assert_string_equal(fmt(&v, 79), "sftest.qcow2 [#########---------]  50% 512.0 KiB/1.0 MiB elapsed 0:02 ETA 0:02");
        assert_string_equal(fmt(&v, 58), "sftest.qcow2 [#####-----]  50% 512.0 KiB/1.0 MiB ETA 0:02");
        assert_string_equal(fmt(&v, 44), "sftest.qcow2 [#########----------] ETA 0:02");
        assert_string_equal(fmt(&v, 30), "sftest.qcow2 ETA 0:02");
        assert_string_equal(fmt(&v, 16), "sftest.qcow2");
        assert_string_equal(fmt(&v, 9), "sftes...");
        assert_string_equal(fmt(&v, 2), "s");
        for (int w = 0; w < 300; w++) {
                const char *s = fmt(&v, w);
                assert_true(strlen(s) <= (size_t)(w > 1 ? w - 1 : 1));
                assert_null(strpbrk(s, "\r\n\033"));
        }
        /* a buffer smaller than the line: cut, terminated */
        char small[10];
        assert_int_equal(sf_progress_format(small, sizeof(small), &v, 200), 9);
        assert_int_equal(strlen(small), 9);
}

/* Hostile numbers do not break the text. */
static void test_odd_values(void **state) {
        (void)state;
        sf_progress_view_t v = {.label = NULL, .done = -5, .total = 1e300, .elapsed = -1, .limit = -1};
        const char *s = fmt(&v, 80);
        assert_non_null(strstr(s, "0/1000000000000000"));
        assert_non_null(strstr(s, "elapsed --:--"));
        v.done = 0.0 / 0.0;
        v.total = 1.0 / 0.0;
        s = fmt(&v, 80);
        assert_true(strlen(s) < 80);
}

static void test_helpers(void **state) {
        (void)state;
        char b[32];
        struct {
                double s;
                const char *want;
        } d[] = {{0, "0:00"}, {59.4, "0:59"}, {59.6, "1:00"}, {3599, "59:59"}, {3600, "1:00:00"},
                 {90061, "25:01:01"}, {-1, "--:--"}, {1.0 / 0.0, "--:--"}};
        for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
                sf_progress_duration(b, sizeof(b), d[i].s);
                assert_string_equal(b, d[i].want);
        }
        struct {
                double n;
                const char *want;
        } z[] = {{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1048575, "1.0 MiB"}, {1536.0 * 1048576, "1.5 GiB"},
                 {-3, "0 B"}};
        for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
                sf_progress_size(b, sizeof(b), z[i].n);
                assert_string_equal(b, z[i].want);
        }
}

/* Drawing: nothing at all unless the stream is a terminal; on one, \r + text + clear to
 * the end of the line, and clear leaves nothing behind. */
static void test_draw_only_on_tty(void **state) {
        (void)state;
        sf_progress_t p;
        sf_progress_view_t v = {.label = "x", .done = 1, .total = 2, .limit = -1};
        char buf[512] = {0};
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        FILE *f = fdopen(fds[1], "w");
        sf_progress_init(&p, f);
        assert_false(p.enabled);
        sf_progress_draw(&p, &v);
        sf_progress_clear(&p);
        fclose(f);
        assert_int_equal(read(fds[0], buf, sizeof(buf)), 0);
        close(fds[0]);

        int m = posix_openpt(O_RDWR | O_NOCTTY);
        assert_true(m >= 0);
        assert_int_equal(grantpt(m), 0);
        assert_int_equal(unlockpt(m), 0);
        int sl = open(ptsname(m), O_RDWR | O_NOCTTY);
        assert_true(sl >= 0);
        setenv("TERM", "xterm", 1);
        f = fdopen(sl, "w");
        sf_progress_init(&p, f);
        assert_true(p.enabled);
        sf_progress_draw(&p, &v);
        sf_progress_clear(&p);
        fclose(f);
        /* a pty hands over each write on its own: read until nothing more comes */
        size_t n = 0;
        struct pollfd pfd = {.fd = m, .events = POLLIN};
        while (n < sizeof(buf) - 1 && poll(&pfd, 1, 200) == 1) {
                ssize_t k = read(m, buf + n, sizeof(buf) - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t)k;
        }
        assert_true(n > 0);
        buf[n] = 0;
        assert_memory_equal(buf, "\rx [", 4);
        assert_non_null(strstr(buf, "1/2"));
        assert_non_null(strstr(buf, "\033[K\r\033[K"));
        close(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bytes),   cmocka_unit_test(test_states),  cmocka_unit_test(test_width),
                cmocka_unit_test(test_odd_values), cmocka_unit_test(test_helpers),
                cmocka_unit_test(test_draw_only_on_tty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
