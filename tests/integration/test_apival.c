/* Integration: the API refuses what the workers would choke on (issue 5 item 7), and a
 * refused create leaves nothing claimed.  sf-api's handlers in-process over real HTTP,
 * against real Redis and NATS (tests/run.sh: SF_REDIS_PORT, SF_NATS_URL); no workers.
 * The floating network is a /29 of our own, so exhausting it is quick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "ctx.h"
#include "http.h"
#include "ipam.h"
#include "object.h"
#include "sflimits.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;
static sf_http_server_t *srv;
static int port;
static char storage[64];
static char sfx[9];          /* per-run suffix: names never collide with earlier runs */
static char deploy_key[33];
static char sys_tok[1024];
static char node_name[64];   /* the fake hypervisor */
static char floating[32];    /* our floating /29 */
static char net_uuid[SF_UUID_LEN]; /* 10.77.0.0/24, moved to created */
static char mac_a[18], ip_a[16], inst_a[SF_UUID_LEN]; /* instance "ma-<sfx>" and its NIC */

#define DISK "[{'size': 8, 'base': 'http://images.example.com/sf-test.qcow2'}]"

/* ---- HTTP client ---- */

#include "apiclient.h"

static const char *jstr(json_object *o, const char *k) { return sf_json_str(o, k); }

static void get_token(const char *ns, const char *key, char *out, size_t outlen) {
        _cleanup_json_ json_object *o = NULL;
        reply_t r;

        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        o = check_json(&r, 200);
        assert_non_null(jstr(o, "access_token"));
        snprintf(out, outlen, "%s", jstr(o, "access_token"));
        reply_free(&r);
}

/* The fake hypervisor: live (lastseen now) or stale. */
static void put_node(bool live, int64_t memory_available) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *m = json_object_new_object();
        uint64_t rev = 0;
        int r;

        json_object_object_add(doc, "uuid", json_object_new_string(node_name));
        json_object_object_add(doc, "name", json_object_new_string(node_name));
        json_object_object_add(doc, "state", json_object_new_string("created"));
        json_object_object_add(doc, "is_hypervisor", json_object_new_boolean(true));
        json_object_object_add(doc, "lastseen", json_object_new_int64((int64_t)sf_now() - (live ? 0 : 1000)));
        json_object_object_add(m, "memory_available", json_object_new_int64(memory_available));
        /* What a heartbeat records (api/scheduler.c filters on it); the lowest load of any
         * node a shared Redis may hold, so placements come here. */
        json_object_object_add(m, "cpu_max", json_object_new_int64(4));
        json_object_object_add(m, "cpu_max_per_instance", json_object_new_int64(16));
        json_object_object_add(m, "memory_max", json_object_new_int64(memory_available));
        json_object_object_add(m, "disk_free_instances", json_object_new_int64((int64_t)1 << 50));
        json_object_object_add(m, "cpu_load_1", json_object_new_double(-1));
        json_object_object_add(doc, "metrics", json_object_get(m));
        r = sf_store_get(ctx.store, "node", node_name, NULL, &rev);
        assert_true(r == 0 || r == -ENOENT);
        assert_int_equal(sf_store_put(ctx.store, "node", node_name, r == 0 ? rev : 0, doc, NULL, NULL), 0);
}

/* ---- what Redis holds: every claim a create can make ---- */

typedef struct claims {
        long macs, vxids, ipam_keys, net_addresses, floating_addresses, artifacts;
        int live_ifaces;
} claims_t;

static long redis_count(const char *fmt, const char *arg) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(ctx.store, fmt, arg);

        assert_non_null(r);
        if (r->type == REDIS_REPLY_ARRAY)
                return (long)r->elements;
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        return (long)r->integer;
}

static void claims_count(claims_t *c) {
        memset(c, 0, sizeof(*c)); /* padding too: claims_unchanged compares bytes */
        c->macs = redis_count("KEYS %s", "sf:mac:*");
        c->vxids = redis_count("KEYS %s", "sf:vxid:*");
        c->ipam_keys = redis_count("KEYS %s", "sf:ipam*");
        c->net_addresses = redis_count("HLEN sf:ipam:%s", net_uuid);
        c->floating_addresses = redis_count("HLEN sf:ipam:%s", "floating");
        c->artifacts = redis_count("KEYS %s", "sf:artifacts:url:*");
        assert_int_equal(sf_obj_network_live_interfaces(ctx.store, net_uuid, &c->live_ifaces), 0);
}

static void claims_unchanged(const claims_t *before, const char *what) {
        claims_t now;

        claims_count(&now);
        if (memcmp(before, &now, sizeof(now)) != 0)
                fail_msg("%s leaked: macs %ld->%ld vxids %ld->%ld ipam keys %ld->%ld addresses %ld->%ld "
                         "floating %ld->%ld artifacts %ld->%ld live interfaces %d->%d",
                         what, before->macs, now.macs, before->vxids, now.vxids, before->ipam_keys, now.ipam_keys,
                         before->net_addresses, now.net_addresses, before->floating_addresses,
                         now.floating_addresses, before->artifacts, now.artifacts, before->live_ifaces,
                         now.live_ifaces);
}

/* ---- setup ---- */

static int setup(void **state) {
        char u[SF_UUID_LEN], secret[33], nodeenv[64];
        unsigned char octet;

        (void)state;
        sf_uuid_new(u);
        snprintf(sfx, sizeof(sfx), "%.8s", u);
        snprintf(node_name, sizeof(node_name), "valnode-%s", sfx);
        sf_random_alnum(deploy_key, 32);
        sf_random_alnum(secret, 32);
        snprintf(nodeenv, sizeof(nodeenv), "valtest-%s", sfx);
        setenv("SF_AUTH_SECRET", secret, 1);
        setenv("SF_NODE", nodeenv, 1);
        sf_random_bytes(&octet, 1);
        snprintf(floating, sizeof(floating), "10.200.%u.0/29", octet);
        setenv("SF_FLOATING_NETWORK", floating, 1);
        snprintf(storage, sizeof(storage), "/tmp/sf-valtest.XXXXXX");
        if (!mkdtemp(storage))
                return -1;
        setenv("SF_STORAGE", storage, 1);
        if (sf_ctx_open(&ctx, true, 5) < 0)
                return -1;
        sf_auth_set_bcrypt_cost(4);
        if (sf_api_init(&ctx.cfg, ctx.bus) < 0 || sf_api_ns_ensure(&ctx, "system") < 0 ||
            sf_api_ns_set_key(&ctx, "system", "deploy", deploy_key) < 0)
                return -1;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                return -1;
        if (sf_http_start("127.0.0.1", 0, sf_api_routes, sf_api_nroutes, NULL, &srv) < 0)
                return -1;
        port = sf_http_port(srv);
        return port > 0 ? 0 : -1;
}

static int teardown(void **state) {
        (void)state;
        sf_http_stop(srv);
        srv = NULL;
        curl_global_cleanup();
        if (ctx.store)
                sf_store_purge(ctx.store, "node", node_name);
        sf_ctx_close(&ctx);
        if (storage[0])
                sf_rm_rf(storage);
        return 0;
}

/* A network of ours in state created, and a live hypervisor with room. */
static void test_prepare(void **state) {
        _cleanup_json_ json_object *o = NULL;
        reply_t r;

        (void)state;
        get_token("system", deploy_key, sys_tok, sizeof(sys_tok));
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.77.0.0/24', 'name': 'val-%s'}", sfx);
        o = check_json(&r, 200);
        snprintf(net_uuid, sizeof(net_uuid), "%s", jstr(o, "uuid"));
        reply_free(&r);
        assert_int_equal(sf_obj_set_state(&ctx, "network", net_uuid, "created", NULL, NULL, NULL), 0);
        put_node(true, 10 * 1024 * 1024);
}

/* ---- 1. no NUL or control characters; one name rule ---- */

#define CTRL "request strings must not contain NUL or control characters"
#define NAME_RULE " is not useable as a DNS and Linux host name. It must consist of only letters, numbers " \
                  "and hyphens, and be at most 63 characters long"
#define NAME_RULE_NS " is invalid: it must consist of only letters, numbers, hyphens and underscores, and be " \
                     "at most 63 characters long"
#define NAME_RULE_NET " is invalid: it must consist of only letters, numbers, hyphens, underscores and " \
                      "dots, and be at most 63 characters long"

static void test_control_characters(void **state) {
        char path[128];
        reply_t r;

        (void)state;
        /* json-c keeps the NUL; the C string would have been the valid name "nul-<sfx>". */
        req(&r, "POST", "/instances", sys_tok, "{'name': 'nul-%s\\u0000x', 'cpus': 1, 'memory': 128, 'disk': " DISK "}",
            sfx);
        check_error(&r, 400, CTRL);
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/nul-%s", sfx);
        req(&r, "GET", path, sys_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'ud-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'user_data': 'aGk=\\u0000'}", sfx);
        check_error(&r, 400, CTRL);
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'sk-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'ssh_key': 'ssh-ed25519 AAAA\\u0000x'}",
            sfx);
        check_error(&r, 400, CTRL);
        reply_free(&r);
        /* At any depth, escaped or not, in keys too. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'md-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'metadata': {'k': {'deep': ['ok', 'a\\u001bb']}}}",
            sfx);
        check_error(&r, 400, CTRL);
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'mk-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'metadata': {'a\\u0000b': 1}}", sfx);
        check_error(&r, 400, CTRL);
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.78.0.0/24', 'name': 'n\x07'}");
        check_error(&r, 400, CTRL);
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': 'system\\u0000x', 'key': '%s'}", deploy_key);
        check_error(&r, 400, CTRL);
        reply_free(&r);
        /* Nor in a path: "%00" would cut the name short and name another object. */
        assert_true(inst_a[0]);
        snprintf(path, sizeof(path), "/instances/ma-%s%%00x", sfx);
        req(&r, "GET", path, sys_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/ma-%s", sfx);
        req(&r, "GET", path, sys_tok, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        /* A newline is not a control character here: ssh keys often end in one. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'nl-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'ssh_key': 'ssh-ed25519 AAAA x@y\\n'}",
            sfx);
        assert_int_equal(r.status, 200);
        reply_free(&r);
}

static void test_names(void **state) {
        char msg[512], long_name[80];
        reply_t r;

        (void)state;
        /* Networks may hold '_' and '.', namespaces and keys '_' (as before); nothing else. */
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.78.0.0/24', 'name': 'a b'}");
        check_error(&r, 400, "network name a b" NAME_RULE_NET);
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.78.0.0/24', 'name': '../x'}");
        check_error(&r, 400, "network name ../x" NAME_RULE_NET);
        reply_free(&r);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': 'ns.%s'}", sfx);
        snprintf(msg, sizeof(msg), "namespace name ns.%s" NAME_RULE_NS, sfx);
        check_error(&r, 400, msg);
        reply_free(&r);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': 'ns-%s', 'key_name': 'k.y', 'key': 'z'}", sfx);
        check_error(&r, 400, "key name k.y" NAME_RULE_NS);
        reply_free(&r);
        memset(long_name, 'a', 64);
        long_name[64] = 0;
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK "}",
            long_name);
        snprintf(msg, sizeof(msg), "instance name %s" NAME_RULE, long_name);
        check_error(&r, 400, msg);
        reply_free(&r);
}

/* ---- 2. MAC addresses ---- */

static void test_macs(void **state) {
        _cleanup_json_ json_object *o = NULL, *ifs = NULL;
        char msg[256], upper[18], path[128];
        unsigned char b[3];
        claims_t before;
        reply_t r;

        (void)state;
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'm-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'macaddress': '03:00:00:00:00:01'}]}",
            sfx, net_uuid);
        check_error(&r, 400, "MAC address 03:00:00:00:00:01 is a multicast address");
        reply_free(&r);
        /* sscanf("%2x") took these. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'm-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'macaddress': '+2:+b:+c:+d:+e:+f'}]}",
            sfx, net_uuid);
        check_error(&r, 400, "invalid MAC address +2:+b:+c:+d:+e:+f");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'm-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'macaddress': '02:00:00:00:00:0g'}]}",
            sfx, net_uuid);
        check_error(&r, 400, "invalid MAC address 02:00:00:00:00:0g");
        reply_free(&r);

        /* Upper case in, lower case stored; the other spelling then conflicts. */
        sf_random_bytes(b, sizeof(b));
        snprintf(upper, sizeof(upper), "02:AB:CD:%02X:%02X:%02X", b[0], b[1], b[2]);
        snprintf(mac_a, sizeof(mac_a), "02:ab:cd:%02x:%02x:%02x", b[0], b[1], b[2]);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'ma-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'macaddress': '%s'}]}",
            sfx, net_uuid, upper);
        o = check_json(&r, 200);
        snprintf(inst_a, sizeof(inst_a), "%s", jstr(o, "uuid"));
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s/interfaces", inst_a);
        req(&r, "GET", path, sys_tok, NULL);
        ifs = check_json(&r, 200);
        assert_int_equal(json_object_array_length(ifs), 1);
        assert_string_equal(jstr(json_object_array_get_idx(ifs, 0), "macaddr"), mac_a);
        snprintf(ip_a, sizeof(ip_a), "%s", jstr(json_object_array_get_idx(ifs, 0), "ipv4"));
        reply_free(&r);

        claims_count(&before);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'mb-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'macaddress': '%s'}]}",
            sfx, net_uuid, mac_a);
        snprintf(msg, sizeof(msg), "mac address %s in use", mac_a);
        check_error(&r, 409, msg);
        reply_free(&r);
        claims_unchanged(&before, "a create refused for a used MAC");
}

/* ---- 6. a second NIC that fails after the first has claimed ---- */

static void test_second_nic_fails(void **state) {
        _cleanup_json_ json_object *o = NULL;
        char msg[256], path[128], fresh[18];
        unsigned char b[3];
        claims_t before;
        reply_t r;

        (void)state;
        assert_true(mac_a[0] && ip_a[0]);
        claims_count(&before);
        /* NIC 0 takes a random MAC and an address, NIC 1 asks for a used MAC. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'two-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s'}, {'network_uuid': '%s', 'macaddress': '%s'}]}",
            sfx, net_uuid, net_uuid, mac_a);
        snprintf(msg, sizeof(msg), "mac address %s in use", mac_a);
        check_error(&r, 409, msg);
        reply_free(&r);
        claims_unchanged(&before, "NIC 1 with a used MAC");
        /* The instance stays listed, in error, saying why. */
        snprintf(path, sizeof(path), "/instances/two-%s", sfx);
        req(&r, "GET", path, sys_tok, NULL);
        o = check_json(&r, 200);
        assert_string_equal(jstr(o, "state"), "error");
        assert_string_equal(jstr(o, "error_message"), msg);
        reply_free(&r);

        /* NIC 0 claims a requested MAC, NIC 1 asks for a used address. */
        sf_random_bytes(b, sizeof(b));
        snprintf(fresh, sizeof(fresh), "02:fe:ed:%02x:%02x:%02x", b[0], b[1], b[2]);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'two-b-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'macaddress': '%s'}, {'network_uuid': '%s', 'address': '%s'}]}",
            sfx, net_uuid, fresh, net_uuid, ip_a);
        snprintf(msg, sizeof(msg), "address %s in use", ip_a);
        check_error(&r, 409, msg);
        reply_free(&r);
        claims_unchanged(&before, "NIC 1 with a used address");

        /* Both NICs ask for the same free address: the second conflicts with the first. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'two-c-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'address': '10.77.0.99'}, {'network_uuid': '%s', "
            "'address': '10.77.0.99'}]}",
            sfx, net_uuid, net_uuid);
        check_error(&r, 409, "address 10.77.0.99 in use");
        reply_free(&r);
        claims_unchanged(&before, "two NICs with one address");

        /* Refused after the record exists: no artifact is left behind for its image either. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'two-d-%s', 'cpus': 1, 'memory': 128, 'disk': [{'base': 'http://images.example.com/leak-%s.qcow2'}]"
            ", 'network': [{'network_uuid': '%s', 'macaddress': '%s'}]}",
            sfx, sfx, net_uuid, mac_a);
        snprintf(msg, sizeof(msg), "mac address %s in use", mac_a);
        check_error(&r, 409, msg);
        reply_free(&r);
        claims_unchanged(&before, "a refused create with an image");
}

/* Refused before the record (404 network): nothing at all, not even an artifact. */
static void test_refused_create_leaves_no_artifact(void **state) {
        char ghost[SF_UUID_LEN], msg[256];
        claims_t before;
        reply_t r;

        (void)state;
        sf_uuid_new(ghost);
        claims_count(&before);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'art-%s', 'cpus': 1, 'memory': 128, 'disk': [{'base': 'http://images.example.com/art-%s.qcow2'}]"
            ", 'network': [{'network_uuid': '%s'}]}",
            sfx, sfx, ghost);
        snprintf(msg, sizeof(msg), "network %s not found", ghost);
        check_error(&r, 404, msg);
        reply_free(&r);
        claims_unchanged(&before, "a create refused for an unknown network");
}

/* ---- 3. netblocks ---- */

static void test_netblocks(void **state) {
        char msg[256], around[32];
        unsigned a, b2, c2, d;
        claims_t before;
        reply_t r;

        (void)state;
        claims_count(&before);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.0.0.0/7', 'name': 'big-%s'}", sfx);
        check_error(&r, 400, "network is above maximum size of /8");
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.0.0.0/30', 'name': 'small-%s'}", sfx);
        check_error(&r, 400, "network is below minimum size of /29");
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '%s', 'name': 'fl-%s'}", floating, sfx);
        snprintf(msg, sizeof(msg), "netblock %s overlaps the floating network %s", floating, floating);
        check_error(&r, 400, msg);
        reply_free(&r);
        assert_int_equal(sscanf(floating, "%u.%u.%u.%u", &a, &b2, &c2, &d), 4);
        snprintf(around, sizeof(around), "%u.%u.0.0/16", a, b2);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '%s', 'name': 'fl-%s'}", around, sfx);
        snprintf(msg, sizeof(msg), "netblock %s overlaps the floating network %s", around, floating);
        check_error(&r, 400, msg);
        reply_free(&r);
        claims_unchanged(&before, "refused netblocks");
}

/* The floating /29 has 5 free addresses: the 6th NAT network is refused, and gives its
 * VXLAN id back. */
static void test_network_claims_released(void **state) {
        claims_t before;
        reply_t r;
        int created = 0;

        (void)state;
        for (int i = 0; i < 8; i++) {
                claims_count(&before);
                req(&r, "POST", "/networks", sys_tok,
                    "{'netblock': '10.79.%d.0/24', 'name': 'nat%d-%s', 'provide_nat': true}", i, i, sfx);
                if (r.status == 200) {
                        created++;
                        reply_free(&r);
                        continue;
                }
                check_error(&r, 507, "No free addresses on floating network");
                reply_free(&r);
                claims_unchanged(&before, "a network refused for want of a floating address");
                break;
        }
        assert_int_equal(created, 5);
}

/* ---- 4. numbers ---- */

static void test_numbers(void **state) {
        static const char *const bad_ints[] = {"1e300", "-1e300", "NaN", "Infinity", "-Infinity", "-1", "1.5",
                                               "99999999999999999999", "'1e300'", "true", "0"};
        char path[128];
        reply_t r;

        (void)state;
        for (size_t i = 0; i < SF_ARRAY_SIZE(bad_ints); i++) {
                req(&r, "POST", "/instances", sys_tok,
                    "{'name': 'num-%s', 'cpus': %s, 'memory': 128, 'disk': " DISK "}", sfx, bad_ints[i]);
                check_error(&r, 400, "cpus must be an integer between 1 and 64");
                reply_free(&r);
                req(&r, "POST", "/instances", sys_tok,
                    "{'name': 'num-%s', 'cpus': 1, 'memory': %s, 'disk': " DISK "}", sfx, bad_ints[i]);
                check_error(&r, 400, "memory must be an integer number of MiB between 16 and 1048576");
                reply_free(&r);
                req(&r, "POST", "/instances", sys_tok,
                    "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': [{'size': %s}]}", sfx, bad_ints[i]);
                if (strcmp(bad_ints[i], "0") == 0)
                        check_error(&r, 400, "a blank disk needs a size");
                else
                        check_error(&r, 400, "disk size must be a positive integer (GiB)");
                reply_free(&r);
        }
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'num-%s', 'cpus': 65, 'memory': 128, 'disk': " DISK "}", sfx);
        check_error(&r, 400, "cpus must be an integer between 1 and 64");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': [{'size': 65537}]}",
            sfx);
        check_error(&r, 400, "disk size must be a positive integer (GiB)");
        reply_free(&r);
        /* Video memory (KiB) reaches the domain XML. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'video': {'model': 'cirrus', 'memory': -1}}",
            sfx);
        check_error(&r, 400, "video memory must be between 1 and 262144 KiB");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'video': {'model': 'cirrus', 'memory': 99999999999}}",
            sfx);
        check_error(&r, 400, "video memory must be between 1 and 262144 KiB");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'video': {'model': 'cirrus', 'memory': 1e300}}",
            sfx);
        check_error(&r, 400, "video specification requires a memory size");
        reply_free(&r);
        /* Upstream's client sends `-V memory=N` as a string: digits are a size, range-checked
         * like a number; anything else is no size. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'video': {'model': 'cirrus', 'memory': '-1'}}",
            sfx);
        check_error(&r, 400, "video memory must be between 1 and 262144 KiB");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'video': {'model': 'cirrus', 'memory': '99999999999999999999999'}}",
            sfx);
        check_error(&r, 400, "video memory must be between 1 and 262144 KiB");
        reply_free(&r);
        const char *const bad_sizes[] = {"'lots'", "''", "'16384 '", "' 16384'", "'0x10'", "'1e3'", "true", "[1]"};
        for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(*bad_sizes); i++) {
                req(&r, "POST", "/instances", sys_tok,
                    "{'name': 'num-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
                    ", 'video': {'model': 'cirrus', 'memory': %s}}",
                    sfx, bad_sizes[i]);
                check_error(&r, 400, "video specification requires a memory size");
                reply_free(&r);
        }

        /* Events limit and console length. */
        assert_true(inst_a[0]);
        snprintf(path, sizeof(path), "/instances/%s/events", inst_a);
        req(&r, "GET", path, sys_tok, "{'limit': -1}");
        check_error(&r, 400, "limit must not be negative");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, "{'limit': 1e300}");
        check_error(&r, 400, "limit is not an integer");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, "{'limit': NaN}");
        check_error(&r, 400, "limit is not an integer");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, "{'limit': 99999999999}");
        assert_int_equal(r.status, 200);
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s/consoledata", inst_a);
        req(&r, "GET", path, sys_tok, "{'length': -1e300}");
        check_error(&r, 400, "length is not an integer");
        reply_free(&r);
}

/* ---- 5. the disk limit, counted as the worker counts ---- */

static void test_disk_limit(void **state) {
        char disks[2048], nics[4096];
        size_t n = 0;
        reply_t r;

        (void)state;
        n += (size_t)snprintf(disks + n, sizeof(disks) - n, "[");
        for (int i = 0; i < SF_MAX_DISKS + 1; i++)
                n += (size_t)snprintf(disks + n, sizeof(disks) - n, "%s{'size': 1}", i ? ", " : "");
        snprintf(disks + n, sizeof(disks) - n, "]");
        req(&r, "POST", "/instances", sys_tok, "{'name': 'd17-%s', 'cpus': 1, 'memory': 128, 'disk': %s}", sfx, disks);
        check_error(&r, 400, "too many disks (at most 16)");
        reply_free(&r);
        /* 16 disks (plus the config drive: 17 block devices) is what the worker builds. */
        *strrchr(disks, ',') = 0;
        strcat(disks, "]");
        req(&r, "POST", "/instances", sys_tok, "{'name': 'd16-%s', 'cpus': 1, 'memory': 128, 'disk': %s}", sfx, disks);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        assert_int_equal(SF_MAX_BLOCK_DEVICES, SF_MAX_DISKS + 1);

        n = (size_t)snprintf(nics, sizeof(nics), "[");
        for (int i = 0; i < SF_MAX_NICS + 1; i++)
                n += (size_t)snprintf(nics + n, sizeof(nics) - n, "%s{'network_uuid': '%s', 'address': 'none'}",
                                      i ? ", " : "", net_uuid);
        snprintf(nics + n, sizeof(nics) - n, "]");
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'n17-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'network': %s}", sfx, nics);
        check_error(&r, 400, "too many network interfaces (at most 16)");
        reply_free(&r);
}


/* ---- 6. POST /instances checks in upstream's order (api.md §2.3.1) ---- */

#define NVRAM_MSG "nvram templates are not supported yet: sf has no labels or blobs to resolve label:x from"

typedef struct {
        const char *extra;  /* body keys after name/cpus/memory */
        int status;
        const char *msg;
} order_case_t;

static void test_create_order(void **state) {
        /* One fault each: its own message. */
        static const order_case_t single[] = {
                {"'disk': " DISK ", 'secure_boot': true", 400, "secure boot requires UEFI be enabled"},
                {"'disk': " DISK ", 'placed_on': 'no-such-node'", 404, "Specified node does not exist"},
                {"'disk': " DISK ", 'configdrive': 'floppy'", 400, "invalid config drive type"},
                {"'disk': []", 400, "instance must specify at least one disk"},
                {"'disk': ['vda']", 400, "disk specification should contain JSON objects"},
                {"'disk': [{'size': 1, 'type': 'tape'}]", 400, "invalid disk type tape"},
                {"'disk': " DISK ", 'nvram_template': 'label:x'", 400, NVRAM_MSG},
                {"'disk': [{'size': 1, 'bus': 'ide'}]", 400, "IDE disks are no longer supported"},
                {"'disk': [{'size': 1, 'bus': 'floppy'}]", 400, "invalid disk bus floppy"},
                {"'disk': " DISK ", 'network': [{'address': 'none'}]", 400,
                 "network specification is missing network_uuid"},
                {"'disk': " DISK ", 'network': [{'network_uuid': 'no-such-net'}]", 404, "network no-such-net not found"},
                {"'disk': " DISK ", 'video': {'model': 'cirrus'}", 400, "video specification requires a memory size"},
                {"'disk': " DISK ", 'video': {'model': 'vga', 'memory': 1024, 'vdi': 'rdp'}", 400,
                 "invalid vdi type rdp"},
                {"'disk': " DISK ", 'video': {'model': 'VGA/><x', 'memory': 1024}", 400,
                 "invalid video model VGA/><x"},
                {"'disk': " DISK ", 'metadata': ['a']", 400, "metadata must be a JSON dictionary"},
                {"'disk': " DISK ", 'side_channels': 'sf-agent'", 400, "side_channels must be a list of strings"},
                {"'disk': " DISK ", 'user_data': 'not base64!'", 400, "user_data must be base64 encoded"},
        };
        /* Two faults: the earlier step's message wins. */
        static const order_case_t pairs[] = {
                {"'disk': [], 'secure_boot': true, 'placed_on': 'no-such-node'", 400,
                 "secure boot requires UEFI be enabled"},
                {"'disk': [], 'placed_on': 'no-such-node', 'configdrive': 'floppy'", 404,
                 "Specified node does not exist"},
                {"'disk': [], 'configdrive': 'floppy'", 400, "invalid config drive type"},
                {"'disk': [], 'nvram_template': 'label:x'", 400, "instance must specify at least one disk"},
                {"'disk': [{'size': 1, 'bus': 'ide'}], 'nvram_template': 'label:x'", 400, NVRAM_MSG},
                {"'disk': [{'size': 1, 'bus': 'ide', 'type': 'tape'}]", 400, "invalid disk type tape"},
                {"'disk': [{'size': 1}, {'size': 1, 'bus': 'ide'}, {'size': 1, 'type': 'tape'}]", 400,
                 "invalid disk type tape"},
                {"'disk': [{'size': 1, 'bus': 'ide'}], 'network': [{'network_uuid': 'no-such-net'}]", 400,
                 "IDE disks are no longer supported"},
                {"'disk': " DISK ", 'network': [{'network_uuid': 'no-such-net'}], 'video': {'model': 'cirrus'}", 404,
                 "network no-such-net not found"},
                {"'disk': " DISK ", 'video': {'model': 'cirrus'}, 'metadata': ['a']", 400,
                 "video specification requires a memory size"},
                {"'disk': " DISK ", 'metadata': ['a'], 'user_data': 'not base64!'", 400,
                 "metadata must be a JSON dictionary"},
        };
        const order_case_t *sets[] = {single, pairs};
        const size_t lens[] = {SF_ARRAY_SIZE(single), SF_ARRAY_SIZE(pairs)};
        claims_t before;
        reply_t r;

        (void)state;
        claims_count(&before);
        for (size_t s = 0; s < 2; s++)
                for (size_t i = 0; i < lens[s]; i++) {
                        req(&r, "POST", "/instances", sys_tok, "{'name': 'ord-%s', 'cpus': 1, 'memory': 128, %s}",
                            sfx, sets[s][i].extra);
                        if (r.status != sets[s][i].status)
                                print_error("case %s: %s\n", sets[s][i].extra, r.body ? r.body : "");
                        check_error(&r, sets[s][i].status, sets[s][i].msg);
                        reply_free(&r);
                }
        claims_unchanged(&before, "refused creates");

        /* UEFI (with or without secure boot) is accepted, recorded, q35 only for secure boot. */
        for (int sb = 0; sb < 2; sb++) {
                _cleanup_json_ json_object *o = NULL;
                json_object *v;

                req(&r, "POST", "/instances", sys_tok,
                    "{'name': 'uefi%d-%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'uefi': true, "
                    "'secure_boot': %s}",
                    sb, sfx, sb ? "true" : "false");
                o = check_json(&r, 200);
                assert_true(json_object_object_get_ex(o, "uefi", &v) && json_object_get_boolean(v));
                assert_int_equal(json_object_get_boolean(json_object_object_get(o, "secure_boot")), sb);
                assert_string_equal(jstr(o, "machine_type"), sb ? "q35" : "pc");
                reply_free(&r);
        }
        /* An empty cdrom drive needs no size; every bus upstream knows is accepted. */
        req(&r, "POST", "/instances", sys_tok,
            "{'name': 'cd-%s', 'cpus': 1, 'memory': 128, 'disk': [{'size': 1, 'bus': 'sata'}, {'type': 'cdrom'}, "
            "{'size': 1, 'bus': 'scsi'}, {'size': 1, 'bus': 'usb'}, {'size': 1, 'bus': 'nvme'}]}",
            sfx);
        assert_int_equal(r.status, 200);
        reply_free(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prepare),
                cmocka_unit_test(test_macs),
                cmocka_unit_test(test_control_characters),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_second_nic_fails),
                cmocka_unit_test(test_refused_create_leaves_no_artifact),
                cmocka_unit_test(test_netblocks),
                cmocka_unit_test(test_network_claims_released),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_disk_limit),
                cmocka_unit_test(test_create_order),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
