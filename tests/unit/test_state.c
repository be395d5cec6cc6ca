/* Unit tests for lib/state.c (api.md §4.3) and the CIDR math of lib/ipam.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ipam.h"
#include "state.h"

static void test_instance_machine(void **state) {
        (void)state;
        assert_true(sf_state_ok("instance", NULL, "initial"));
        assert_false(sf_state_ok("instance", NULL, "created"));
        assert_true(sf_state_ok("instance", "initial", "preflight"));
        assert_true(sf_state_ok("instance", "preflight", "creating"));
        assert_true(sf_state_ok("instance", "creating", "created"));
        assert_false(sf_state_ok("instance", "initial", "created")); /* no skipping steps */
        assert_true(sf_state_ok("instance", "creating", "creating-error"));
        assert_true(sf_state_ok("instance", "creating-error", "error"));
        assert_false(sf_state_ok("instance", "creating", "error"));
        assert_true(sf_state_ok("instance", "created", "delete-wait"));
        assert_true(sf_state_ok("instance", "delete-wait", "deleted"));
        assert_true(sf_state_ok("instance", "delete-wait", "delete-wait-error"));
        assert_true(sf_state_ok("instance", "delete-wait-error", "error"));
        /* deleted never reverts */
        assert_false(sf_state_ok("instance", "deleted", "created"));
        assert_false(sf_state_ok("instance", "deleted", "error"));
        /* re-setting the current state is an idempotent no-op */
        assert_true(sf_state_ok("instance", "deleted", "deleted"));
        assert_true(sf_state_ok("instance", "creating", "creating"));
        assert_false(sf_state_ok("instance", "created", "bogus"));
        assert_false(sf_state_ok("nosuchtype", NULL, "initial"));
}

static void test_other_machines(void **state) {
        (void)state;
        assert_true(sf_state_ok("network", "initial", "created"));
        assert_true(sf_state_ok("network", "created", "delete-wait"));
        assert_true(sf_state_ok("network", "delete-wait", "deleted"));
        assert_false(sf_state_ok("network", "deleted", "created"));
        assert_false(sf_state_ok("network", "initial", "delete-wait"));
        assert_true(sf_state_ok("networkinterface", "initial", "created"));
        assert_false(sf_state_ok("networkinterface", "created", "initial"));
        assert_true(sf_state_ok("artifact", "initial", "created"));
        assert_false(sf_state_ok("artifact", "error", "created"));
        assert_true(sf_state_ok("blob", "initial", "created"));
        assert_false(sf_state_ok("blob", "error", "created"));
        assert_true(sf_state_ok("namespace", NULL, "created"));
        assert_false(sf_state_ok("namespace", "deleted", "created"));
        assert_true(sf_state_ok("node", "missing", "created"));
}

static void test_active_and_transitional(void **state) {
        (void)state;
        assert_true(sf_state_active("instance", "error"));
        assert_true(sf_state_active("instance", "delete-wait"));
        assert_false(sf_state_active("instance", "deleted"));
        assert_false(sf_state_active("instance", "delete-wait-error"));
        assert_true(sf_state_active("network", "initial"));
        assert_false(sf_state_active("network", "deleted"));
        assert_true(sf_state_transitional("instance", "creating"));
        assert_false(sf_state_transitional("instance", "created"));
}

static void test_cidr(void **state) {
        const char *err = NULL;
        char a[16];
        sf_cidr_t c;
        uint32_t ip;

        (void)state;
        assert_int_equal(sf_cidr_parse("192.168.242.0/24", &c, &err), 0);
        assert_int_equal(c.prefix, 24);
        assert_int_equal(sf_cidr_size(&c), 256);
        sf_cidr_addr(&c, 1, a);
        assert_string_equal(a, "192.168.242.1");
        sf_cidr_addr(&c, 255, a);
        assert_string_equal(a, "192.168.242.255");
        sf_cidr_netmask(&c, a);
        assert_string_equal(a, "255.255.255.0");
        assert_int_equal(sf_ip_parse("192.168.242.77", &ip), 0);
        assert_true(sf_cidr_contains(&c, ip));
        assert_int_equal(sf_ip_parse("192.168.243.1", &ip), 0);
        assert_false(sf_cidr_contains(&c, ip));
        /* Upstream's validation cases (api.md §9 test_networking). */
        assert_int_equal(sf_cidr_parse("192.168.242.2", &c, &err), -EINVAL);
        assert_string_equal(err, "cannot parse netblock");
        assert_int_equal(sf_cidr_parse("192.168.242.0/32", &c, &err), -EINVAL);
        assert_string_equal(err, "network is below minimum size of /29");
        assert_int_equal(sf_cidr_parse("192.168.242.0/30", &c, &err), -EINVAL);
        assert_int_equal(sf_cidr_parse("192.168.242.0/29", &c, &err), 0);
        assert_int_equal(sf_cidr_parse("192.168.242.1/24", &c, &err), -EINVAL); /* host bits */
        assert_int_equal(sf_cidr_parse("300.1.1.0/24", &c, &err), -EINVAL);
        assert_int_equal(sf_cidr_parse("10.0.0.0/", &c, &err), -EINVAL);
        assert_int_equal(sf_cidr_parse("10.0.0.0/2x", &c, &err), -EINVAL);
        assert_int_equal(sf_cidr_parse("", &c, &err), -EINVAL);
        assert_int_equal(sf_cidr_parse(NULL, &c, &err), -EINVAL);
        assert_int_equal(sf_cidr_parse("10.0.0.0/8", &c, &err), 0);
        assert_int_equal(sf_cidr_size(&c), 16777216);
        /* Larger than /8 is refused (a /0 would make every address "inside"). */
        assert_int_equal(sf_cidr_parse("10.0.0.0/7", &c, &err), -EINVAL);
        assert_string_equal(err, "network is above maximum size of /8");
        assert_int_equal(sf_cidr_parse("0.0.0.0/0", &c, &err), -EINVAL);
        assert_string_equal(err, "network is above maximum size of /8");
}

static void test_cidr_overlaps(void **state) {
        sf_cidr_t a, b;

        (void)state;
        assert_int_equal(sf_cidr_parse("192.168.20.0/24", &a, NULL), 0);
        assert_int_equal(sf_cidr_parse("192.168.20.128/29", &b, NULL), 0);
        assert_true(sf_cidr_overlaps(&a, &b));
        assert_true(sf_cidr_overlaps(&b, &a));
        assert_int_equal(sf_cidr_parse("192.168.0.0/16", &b, NULL), 0);
        assert_true(sf_cidr_overlaps(&a, &b));
        assert_int_equal(sf_cidr_parse("192.168.21.0/24", &b, NULL), 0);
        assert_false(sf_cidr_overlaps(&a, &b));
        assert_int_equal(sf_cidr_parse("192.168.19.248/29", &b, NULL), 0);
        assert_false(sf_cidr_overlaps(&a, &b));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_instance_machine),
                cmocka_unit_test(test_other_machines),
                cmocka_unit_test(test_active_and_transitional),
                cmocka_unit_test(test_cidr),
                cmocka_unit_test(test_cidr_overlaps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
