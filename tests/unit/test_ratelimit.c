/* lib/ratelimit: token buckets per key in a bounded table, with explicit times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "ratelimit.h"

/* burst 5, 60/min = one token a second. */
static void test_burst_then_refill(void **state) {
        sf_ratelimit_t *rl = NULL;
        int64_t retry = 0;

        (void)state;
        assert_int_equal(sf_ratelimit_new(64, 60, 5, &rl), 0);
        for (int i = 0; i < 5; i++)
                assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 1000, NULL), 0);
        assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 1000, &retry), -EAGAIN);
        assert_int_equal(retry, 1000);
        /* Other keys have their own bucket. */
        assert_int_equal(sf_ratelimit_take(rl, "10.0.0.2", 1000, NULL), 0);
        /* Half a token after 500 ms: still refused, and told to wait the other half. */
        assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 1500, &retry), -EAGAIN);
        assert_int_equal(retry, 500);
        assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 2000, NULL), 0);
        assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 2000, NULL), -EAGAIN);
        /* A long pause refills up to the burst, not beyond. */
        for (int i = 0; i < 5; i++)
                assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 100000, NULL), 0);
        assert_int_equal(sf_ratelimit_take(rl, "10.0.0.1", 100000, NULL), -EAGAIN);
        sf_ratelimit_free(rl);
}

/* Many more keys than slots: memory stays bounded and a key that keeps being refused is
 * not reset by the churn of others more often than the table forces. */
static void test_bounded_table(void **state) {
        sf_ratelimit_t *rl = NULL;
        char key[32];
        int refused = 0;

        (void)state;
        assert_int_equal(sf_ratelimit_new(8, 60, 1, &rl), 0);
        for (int i = 0; i < 100000; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                assert_int_equal(sf_ratelimit_take(rl, key, 5000, NULL), 0);
        }
        /* All at the same instant: no bucket has refilled, so the victims are LRU. */
        assert_int_equal(sf_ratelimit_take(rl, "k99999", 5000, NULL), -EAGAIN);
        for (int i = 0; i < 8; i++) {
                snprintf(key, sizeof(key), "k%d", 99999 - i);
                refused += sf_ratelimit_take(rl, key, 5000, NULL) == -EAGAIN;
        }
        assert_true(refused >= 1);
        sf_ratelimit_free(rl);
        sf_ratelimit_free(NULL);
}

static void test_bad_args(void **state) {
        sf_ratelimit_t *rl = NULL;

        (void)state;
        assert_int_equal(sf_ratelimit_new(8, 0, 1, &rl), -EINVAL);
        assert_int_equal(sf_ratelimit_new(8, 1, 0, &rl), -EINVAL);
        assert_null(rl);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_burst_then_refill),
                cmocka_unit_test(test_bounded_table),
                cmocka_unit_test(test_bad_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
