/* Unit tests for lib/netpolicy.c: allow-list parsing (CIDR, ports, IPv4 + IPv6), the
 * deny ranges, service ports, the floating range and URL literals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netpolicy.h"

static sf_config_t cfg;

static void init(sf_netpolicy_t *p, const char *allow) {
        memset(&cfg, 0, sizeof(cfg));
        snprintf(cfg.redis_host, sizeof(cfg.redis_host), "127.0.0.1");
        cfg.redis_port = 6379;
        snprintf(cfg.nats_url, sizeof(cfg.nats_url), "nats://127.0.0.1:4222");
        cfg.api_port = 13000;
        snprintf(cfg.floating_network, sizeof(cfg.floating_network), "192.168.20.0/24");
        snprintf(cfg.download_allow, sizeof(cfg.download_allow), "%s", allow);
        assert_int_equal(sf_netpolicy_init(p, &cfg), 0);
}

/* 0 allowed, -EACCES denied, for "a.b.c.d" or "v6" at port. */
static int check(const sf_netpolicy_t *p, const char *addr, int port, char *why) {
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        char buf[256];

        if (inet_pton(AF_INET, addr, &in.sin_addr) == 1)
                return sf_netpolicy_check(p, (struct sockaddr *)&in, why ? why : buf, 256);
        assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
        return sf_netpolicy_check(p, (struct sockaddr *)&in6, why ? why : buf, 256);
}

static void test_rule_parse(void **state) {
        sf_netpolicy_rule_t r;

        (void)state;
        assert_int_equal(sf_netpolicy_rule_parse("10.0.0.0/8", &r), 0);
        assert_int_equal(r.family, AF_INET);
        assert_int_equal(r.prefix, 8);
        assert_int_equal(r.port, 0);
        assert_int_equal(sf_netpolicy_rule_parse("127.0.0.1:13080", &r), 0);
        assert_int_equal(r.prefix, 32);
        assert_int_equal(r.port, 13080);
        assert_int_equal(sf_netpolicy_rule_parse("127.0.0.0/8:80", &r), 0);
        assert_int_equal(r.prefix, 8);
        assert_int_equal(r.port, 80);
        assert_int_equal(sf_netpolicy_rule_parse("fd00::/8", &r), 0);
        assert_int_equal(r.family, AF_INET6);
        assert_int_equal(r.prefix, 8);
        assert_int_equal(sf_netpolicy_rule_parse("[::1]:8080", &r), 0);
        assert_int_equal(r.prefix, 128);
        assert_int_equal(r.port, 8080);
        assert_int_equal(sf_netpolicy_rule_parse("[fe80::/10]:443", &r), 0);
        assert_int_equal(r.prefix, 10);
        assert_int_equal(r.port, 443);
        assert_int_equal(sf_netpolicy_rule_parse("::1", &r), 0);
        assert_int_equal(sf_netpolicy_rule_parse(" 10.1.2.3 ", &r), 0);
        assert_int_equal(sf_netpolicy_rule_parse("10.0.0.0/33", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("10.0.0.0/8:0", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("10.0.0.0/8:65536", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("example.com", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("[10.0.0.1]:80", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("::1/129", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("[::1", &r), -EINVAL);
        assert_int_equal(sf_netpolicy_rule_parse("1.2.3.4/", &r), -EINVAL);
}

static void test_bad_allow_list(void **state) {
        sf_netpolicy_t p;

        (void)state;
        memset(&cfg, 0, sizeof(cfg));
        snprintf(cfg.nats_url, sizeof(cfg.nats_url), "nats://127.0.0.1:4222");
        snprintf(cfg.download_allow, sizeof(cfg.download_allow), "10.0.0.0/8,nonsense");
        assert_int_equal(sf_netpolicy_init(&p, &cfg), -EINVAL);
}

static void test_default_denies(void **state) {
        sf_netpolicy_t p;
        char why[256];

        (void)state;
        init(&p, "");
        assert_int_equal(check(&p, "127.0.0.1", 80, why), -EACCES);
        assert_string_equal(why, "destination 127.0.0.1:80 is not allowed (loopback)");
        assert_int_equal(check(&p, "127.9.9.9", 8080, NULL), -EACCES);
        assert_int_equal(check(&p, "169.254.169.254", 80, why), -EACCES);
        assert_string_equal(why, "destination 169.254.169.254:80 is not allowed (link-local)");
        assert_int_equal(check(&p, "0.0.0.0", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "224.0.0.1", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "255.255.255.255", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "192.168.20.7", 80, why), -EACCES);
        assert_string_equal(why, "destination 192.168.20.7:80 is not allowed (the floating range)");
        assert_int_equal(check(&p, "::1", 80, why), -EACCES);
        assert_string_equal(why, "destination [::1]:80 is not allowed (loopback)");
        assert_int_equal(check(&p, "::", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "fe80::1", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "ff02::1", 80, NULL), -EACCES);
        /* IPv4-mapped IPv6 is judged as the IPv4 address it carries */
        assert_int_equal(check(&p, "::ffff:127.0.0.1", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "::ffff:169.254.169.254", 80, NULL), -EACCES);
        /* the public internet and private LANs are fine */
        assert_int_equal(check(&p, "93.184.216.34", 80, NULL), 0);
        assert_int_equal(check(&p, "10.1.2.3", 8080, NULL), 0);
        assert_int_equal(check(&p, "172.16.0.5", 443, NULL), 0);
        assert_int_equal(check(&p, "192.168.1.10", 80, NULL), 0);
        assert_int_equal(check(&p, "192.168.21.1", 80, NULL), 0);
        assert_int_equal(check(&p, "2001:db8::1", 443, NULL), 0);
        assert_int_equal(check(&p, "fd00::5", 80, NULL), 0);
        assert_int_equal(check(&p, "::ffff:10.0.0.1", 80, NULL), 0);
}

static void test_allow_list(void **state) {
        sf_netpolicy_t p;
        char why[256];

        (void)state;
        init(&p, "127.0.0.1:13080, [::1]:8080,169.254.10.0/24,192.168.20.128/25:80");
        assert_int_equal(check(&p, "127.0.0.1", 13080, NULL), 0);
        assert_int_equal(check(&p, "127.0.0.1", 13081, NULL), -EACCES);
        assert_int_equal(check(&p, "127.0.0.2", 13080, NULL), -EACCES);
        assert_int_equal(check(&p, "::1", 8080, NULL), 0);
        assert_int_equal(check(&p, "::1", 8081, NULL), -EACCES);
        assert_int_equal(check(&p, "::ffff:127.0.0.1", 13080, NULL), 0);
        assert_int_equal(check(&p, "169.254.10.9", 80, NULL), 0);
        assert_int_equal(check(&p, "169.254.169.254", 80, NULL), -EACCES);
        assert_int_equal(check(&p, "192.168.20.200", 80, NULL), 0);
        assert_int_equal(check(&p, "192.168.20.200", 81, NULL), -EACCES);
        assert_int_equal(check(&p, "192.168.20.100", 80, why), -EACCES);
        assert_string_equal(why, "destination 192.168.20.100:80 is not allowed (the floating range)");
}

/* The node's Redis, NATS and API ports stay shut unless an entry names the exact port. */
static void test_service_ports(void **state) {
        sf_netpolicy_t p;
        char why[256];

        (void)state;
        init(&p, "127.0.0.0/8,::1");
        assert_int_equal(check(&p, "127.0.0.1", 80, NULL), 0);
        assert_int_equal(check(&p, "127.0.0.1", 6379, why), -EACCES);
        assert_string_equal(why, "destination 127.0.0.1:6379 is not allowed (a service port of this node)");
        assert_int_equal(check(&p, "127.0.0.1", 4222, NULL), -EACCES);
        assert_int_equal(check(&p, "127.0.0.1", 13000, NULL), -EACCES);
        assert_int_equal(check(&p, "::1", 6379, NULL), -EACCES);
        assert_int_equal(check(&p, "0.0.0.0", 6379, NULL), -EACCES);
        /* a service port on some other machine is somebody else's business */
        assert_int_equal(check(&p, "10.9.9.9", 6379, NULL), 0);
        init(&p, "127.0.0.1:6379");
        assert_int_equal(check(&p, "127.0.0.1", 6379, NULL), 0);

        /* Redis and NATS on another machine: their endpoints are denied too */
        memset(&cfg, 0, sizeof(cfg));
        snprintf(cfg.redis_host, sizeof(cfg.redis_host), "10.0.0.5");
        cfg.redis_port = 6380;
        snprintf(cfg.nats_url, sizeof(cfg.nats_url), "nats://10.0.0.6:4223");
        cfg.api_port = 13000;
        assert_int_equal(sf_netpolicy_init(&p, &cfg), 0);
        assert_int_equal(check(&p, "10.0.0.5", 6380, why), -EACCES);
        assert_string_equal(why, "destination 10.0.0.5:6380 is not allowed (a service of this cloud)");
        assert_int_equal(check(&p, "10.0.0.6", 4223, NULL), -EACCES);
        assert_int_equal(check(&p, "10.0.0.5", 80, NULL), 0);
}

static void test_url_literal(void **state) {
        sf_netpolicy_t p;
        char why[256] = "";

        (void)state;
        init(&p, "127.0.0.1:13080");
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://169.254.169.254/x", why, sizeof(why)),
                         -EACCES);
        assert_string_equal(why, "destination 169.254.169.254:80 is not allowed (link-local)");
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://127.0.0.1:6379/", why, sizeof(why)),
                         -EACCES);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "https://127.1/a.img", why, sizeof(why)), -EACCES);
        assert_string_equal(why, "destination 127.0.0.1:443 is not allowed (loopback)");
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://2130706433/", NULL, 0), -EACCES);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://[::1]:80/", why, sizeof(why)), -EACCES);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://[::ffff:169.254.169.254]/", NULL, 0),
                         -EACCES);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://127.0.0.1:13080/sftest.qcow2", NULL, 0), 0);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://localhost:6379/", NULL, 0), 0);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "https://images.example.com/x.qcow2", NULL, 0), 0);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://10.0.0.1/x", NULL, 0), 0);
        assert_int_equal(sf_netpolicy_check_url_literal(&p, "http://", NULL, 0), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rule_parse),    cmocka_unit_test(test_bad_allow_list),
                cmocka_unit_test(test_default_denies), cmocka_unit_test(test_allow_list),
                cmocka_unit_test(test_service_ports), cmocka_unit_test(test_url_literal),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
