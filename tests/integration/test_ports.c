/* Integration: console/VDI ports (workers/compute/ports.c) against real Redis
 * (tests/run.sh: SF_REDIS_PORT): one holder per node and port, a re-sent claim is still
 * the holder's, only the holder releases, delete releases what the record names, and a
 * port something listens on is never picked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../workers/compute/ports.h"
#include "ctx.h"
#include "sflimits.h"
#include "util.h"

static sf_ctx_t ctx;
static char node[64], a[SF_UUID_LEN], b[SF_UUID_LEN];

static int setup(void **state) {
        char u[SF_UUID_LEN];

        (void)state;
        sf_uuid_new(u);
        snprintf(node, sizeof(node), "porttest-%.8s", u);
        sf_uuid_new(a);
        sf_uuid_new(b);
        return sf_ctx_open(&ctx, false, 5) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        (void)state;
        sf_ctx_close(&ctx);
        return 0;
}

static void test_claim_release(void **state) {
        const int port = 31234;

        (void)state;
        assert_int_equal(sf_ports_claim(ctx.store, node, a, port), 0);
        /* A claim sent again (a lost reply, a redelivered create) is still a's. */
        assert_int_equal(sf_ports_claim(ctx.store, node, a, port), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, b, port), -EADDRINUSE);
        /* Another node's port of the same number is another port. */
        char other[80];
        snprintf(other, sizeof(other), "%s-2", node);
        assert_int_equal(sf_ports_claim(ctx.store, other, b, port), 0);
        assert_int_equal(sf_ports_release(ctx.store, other, b, port), 0);
        /* Only the holder releases. */
        assert_int_equal(sf_ports_release(ctx.store, node, b, port), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, b, port), -EADDRINUSE);
        assert_int_equal(sf_ports_release(ctx.store, node, a, port), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, b, port), 0);
        assert_int_equal(sf_ports_release(ctx.store, node, b, port), 0);
}

static void test_release_instance(void **state) {
        _cleanup_json_ json_object *inst = json_object_new_object();

        (void)state;
        assert_int_equal(sf_ports_claim(ctx.store, node, a, 31000), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, a, 31001), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, b, 31002), 0);
        json_object_object_add(inst, "uuid", json_object_new_string(a));
        json_object_object_add(inst, "console_port", json_object_new_int(31000));
        json_object_object_add(inst, "vdi_port", json_object_new_int(31001));
        /* A record naming another's port (a crash between pick and claim) leaves it alone. */
        json_object_object_add(inst, "vdi_tls_port", json_object_new_int(31002));
        assert_int_equal(sf_ports_release_instance(ctx.store, node, inst), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, b, 31000), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, b, 31001), 0);
        assert_int_equal(sf_ports_claim(ctx.store, node, a, 31002), -EADDRINUSE);
        for (int p = 31000; p <= 31002; p++)
                assert_int_equal(sf_ports_release(ctx.store, node, b, p), 0);
}

static void test_pick(void **state) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof(sa);
        int fd, listening, avoid[1], port;

        (void)state;
        /* A listener in the range: not bindable, so never picked. */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        for (listening = SF_PORT_MIN; listening < SF_PORT_MAX; listening++) {
                sa.sin_port = htons((uint16_t)listening);
                if (bind(fd, (struct sockaddr *)&sa, len) == 0)
                        break;
        }
        assert_int_equal(listen(fd, 1), 0);
        assert_false(sf_ports_bindable("127.0.0.1", listening));
        avoid[0] = listening + 1;
        for (int i = 0; i < 2000; i++) {
                assert_int_equal(sf_ports_pick("127.0.0.1", avoid, 1, &port), 0);
                assert_true(port >= SF_PORT_MIN && port < SF_PORT_MAX);
                assert_int_not_equal(port, listening);
                assert_int_not_equal(port, avoid[0]);
        }
        close(fd);
        assert_true(sf_ports_bindable("127.0.0.1", listening));
        assert_false(sf_ports_bindable("not-an-address", listening));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_claim_release),
                cmocka_unit_test(test_release_instance),
                cmocka_unit_test(test_pick),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
