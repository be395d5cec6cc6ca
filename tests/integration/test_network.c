/* Integration: sf-network's handlers and reconciler against real Redis, NATS and links.
 * Needs root (netns, links).  Networks get random VXLAN ids and uuids; the group teardown
 * removes what a failed test left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "exec.h"
#include "intent.h"
#include "object.h"
#include "store.h"
#include "util.h"
#include "../../workers/network/handlers.h"

static sf_ctx_t ctx;
static char node[40], storage[64];
static char made[8][SF_UUID_LEN]; /* networks to tear down at the end */
static size_t nmade;

static void msleep(int ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

static bool netns_exists(const char *uuid) {
        char path[128];

        snprintf(path, sizeof(path), "/run/netns/%s", uuid);
        return access(path, F_OK) == 0;
}

static const char *state_of(const char *type, const char *uuid, char buf[32]) {
        _cleanup_json_ json_object *doc = NULL;

        buf[0] = 0;
        if (sf_store_get(ctx.store, type, uuid, &doc, NULL) == 0)
                snprintf(buf, 32, "%s", sf_json_str(doc, "state") ?: "");
        return buf;
}

/* A network record as sf-api writes it (no DHCP, no NAT: links and netns only). */
static void put_network_on(char uuid[SF_UUID_LEN], const char *state, double age, const char *on) {
        _cleanup_json_ json_object *doc = json_object_new_object();
        uint32_t rnd = 0;
        char nb[32];

        sf_uuid_new(uuid);
        sf_random_bytes(&rnd, sizeof(rnd));
        snprintf(nb, sizeof(nb), "10.%u.%u.0/24", 200 + rnd % 50, (rnd >> 8) % 256);
        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "name", json_object_new_string("nettest"));
        json_object_object_add(doc, "namespace", json_object_new_string("system"));
        json_object_object_add(doc, "state", json_object_new_string(state));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now() - age));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "netblock", json_object_new_string(nb));
        json_object_object_add(doc, "provide_dhcp", json_object_new_boolean(false));
        json_object_object_add(doc, "provide_nat", json_object_new_boolean(false));
        json_object_object_add(doc, "vxid", json_object_new_int64(0xe00000 + (rnd >> 12) % 0xfffff));
        json_object_object_add(doc, "node", json_object_new_string(on));
        assert_int_equal(sf_store_put(ctx.store, "network", uuid, 0, doc, NULL, NULL), 0);
        if (nmade < SF_ARRAY_SIZE(made))
                snprintf(made[nmade++], SF_UUID_LEN, "%s", uuid);
}

static void put_network(char uuid[SF_UUID_LEN], const char *state, double age) {
        put_network_on(uuid, state, age, node);
}

/* An interface record as sf-api writes it, on instance inst, in state initial. */
static void put_interface(const char *uuid, const char *net, const char *inst, double age) {
        _cleanup_json_ json_object *fdoc = json_object_new_object();

        json_object_object_add(fdoc, "uuid", json_object_new_string(uuid));
        json_object_object_add(fdoc, "namespace", json_object_new_string("system"));
        json_object_object_add(fdoc, "state", json_object_new_string("initial"));
        json_object_object_add(fdoc, "state_updated", json_object_new_double(sf_now() - age));
        json_object_object_add(fdoc, "metadata", json_object_new_object());
        json_object_object_add(fdoc, "network_uuid", json_object_new_string(net));
        json_object_object_add(fdoc, "instance_uuid", json_object_new_string(inst));
        json_object_object_add(fdoc, "macaddr", json_object_new_string("02:00:00:aa:bb:01"));
        json_object_object_add(fdoc, "order", json_object_new_int(0));
        assert_int_equal(sf_store_put(ctx.store, "networkinterface", uuid, 0, fdoc, NULL, NULL), 0);
        freeReplyObject(sf_store_cmd(ctx.store, "SADD sf:netifaces:%s %s", net, uuid));
}

/* An instance record on this node, state initial, with these interfaces. */
static void put_instance(const char *uuid, const char *iface) {
        _cleanup_json_ json_object *idoc = json_object_new_object(), *ifs = json_object_new_array();

        json_object_array_add(ifs, json_object_new_string(iface));
        json_object_object_add(idoc, "uuid", json_object_new_string(uuid));
        json_object_object_add(idoc, "name", json_object_new_string("stuckvm"));
        json_object_object_add(idoc, "namespace", json_object_new_string("system"));
        json_object_object_add(idoc, "state", json_object_new_string("initial"));
        json_object_object_add(idoc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(idoc, "node", json_object_new_string(node));
        json_object_object_add(idoc, "interfaces", json_object_get(ifs));
        assert_int_equal(sf_store_put(ctx.store, "instance", uuid, 0, idoc, NULL, NULL), 0);
}

static int run_handler(const char *kind, const char *objtype, const char *uuid, char err[512]) {
        Sf__Intent in = SF__INTENT__INIT;
        sf_work_t w = {.ctx = &ctx, .intent = &in, .wait_ms = 500};
        char id[SF_UUID_LEN];
        int r = -1;

        sf_uuid_new(id);
        in.id = id;
        in.kind = (char *)kind;
        in.object_type = (char *)objtype;
        in.object_uuid = (char *)uuid;
        in.node = node;
        in.worker = (char *)"network";
        for (size_t i = 0; i < sf_network_nhandlers; i++)
                if (strcmp(sf_network_handlers[i].kind, kind) == 0)
                        r = sf_network_handlers[i].fn(&w);
        if (err)
                snprintf(err, 512, "%s", w.error);
        return r;
}

/* A teardown decided on "the interface could not be read" would cut a live guest off:
 * the delete waits (retries) until Redis answers for certain. */
static void test_delete_on_redis_error_touches_nothing(void **state) {
        char net[SF_UUID_LEN], iface[SF_UUID_LEN], st[32], err[512];
        _cleanup_reply_ redisReply *r1 = NULL, *r2 = NULL, *r3 = NULL;

        (void)state;
        put_network(net, "created", 0);
        assert_int_equal(run_handler("network.create", "network", net, err), SF_WORK_DONE);
        assert_true(netns_exists(net));

        /* An interface on it whose record Redis answers with an error (WRONGTYPE). */
        sf_uuid_new(iface);
        r1 = sf_store_cmd(ctx.store, "SADD sf:netifaces:%s %s", net, iface);
        r2 = sf_store_cmd(ctx.store, "SET sf:obj:networkinterface:%s unreadable", iface);
        assert_int_equal(run_handler("network.delete", "network", net, err), SF_WORK_RETRY);
        fprintf(stderr, "test_network: delete on a Redis error: %s\n", err);
        assert_true(netns_exists(net));
        assert_string_equal(state_of("network", net, st), "created");

        /* Definitely gone: now it goes. */
        r3 = sf_store_cmd(ctx.store, "DEL sf:obj:networkinterface:%s", iface);
        assert_int_equal(run_handler("network.delete", "network", net, err), SF_WORK_DONE);
        assert_false(netns_exists(net));
        assert_string_equal(state_of("network", net, st), "deleted");
}

/* A network delete that failed (error state) finishes when asked again. */
static void test_delete_from_error(void **state) {
        char net[SF_UUID_LEN], st[32], err[512];

        (void)state;
        put_network(net, "created", 0);
        assert_int_equal(run_handler("network.create", "network", net, err), SF_WORK_DONE);
        assert_int_equal(sf_obj_set_state(&ctx, "network", net, "error", "teardown failed", NULL, NULL), 0);
        assert_int_equal(run_handler("network.delete", "network", net, err), SF_WORK_DONE);
        assert_false(netns_exists(net));
        assert_string_equal(state_of("network", net, st), "deleted");
}

static pid_t spawn_network_worker(void) {
        char exe[PATH_MAX], bin[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        pid_t pid = 0;

        assert_true(n > 0);
        exe[n] = 0;
        /* <build>/tests/test_network -> <build>/sf-network */
        snprintf(bin, sizeof(bin), "%s/sf-network", dirname(dirname(exe)));
        {
                char *argv[] = {bin, NULL};
                assert_int_equal(sf_exec_spawn(argv, "/dev/stderr", &pid), 0);
        }
        return pid;
}

/* sf-api killed between writing records and recording intents: the network in initial,
 * the interface in initial, a network in delete-wait.  The reconciler converges all
 * three without any intent from the API. */
static void test_unpublished_objects_converge(void **state) {
        char net[SF_UUID_LEN], gone[SF_UUID_LEN], inst[SF_UUID_LEN], iface[SF_UUID_LEN], st[32], err[512];
        int status = 0;
        long nopen = -1;
        bool ok = false;
        pid_t pid;
        double t0;

        (void)state;
        put_network(net, "initial", 5);
        put_network(gone, "delete-wait", 5);
        sf_uuid_new(inst);
        sf_uuid_new(iface);
        put_interface(iface, net, inst, 5);
        put_instance(inst, iface);

        t0 = sf_now();
        pid = spawn_network_worker();
        for (int i = 0; i < 300 && !ok; i++) {
                char a[32], b[32], c[32];
                ok = strcmp(state_of("network", net, a), "created") == 0 &&
                     strcmp(state_of("networkinterface", iface, b), "created") == 0 &&
                     strcmp(state_of("network", gone, c), "deleted") == 0;
                if (!ok)
                        msleep(100);
        }
        fprintf(stderr, "test_network: unpublished objects converged in %.1f s\n", sf_now() - t0);
        /* More passes create no more intents: the ones above were all finished. */
        msleep(2500);
        {
                _cleanup_reply_ redisReply *open = sf_store_cmd(ctx.store, "KEYS sf:intent:open:*%s*", net);
                nopen = open ? (long)open->elements : -1;
        }
        kill(pid, SIGTERM); /* before any assert: a failed test must not leave its worker */
        waitpid(pid, &status, 0);
        assert_true(ok);
        assert_int_equal(nopen, 0);
        assert_true(netns_exists(net));

        /* Clean up: the instance is gone, so the network can go. */
        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:obj:networkinterface:%s", iface));
        assert_int_equal(run_handler("network.delete", "network", net, err), SF_WORK_DONE);
        assert_false(netns_exists(net));
        assert_string_equal(state_of("network", net, st), "deleted");
        sf_store_purge(ctx.store, "instance", inst);
}

/* Pending intents of an object, and the highest re-publish generation among them. */
static int pending_for(const char *object, long *ret_gen) {
        _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx.store, "ZRANGE sf:intents:pending 0 -1");
        int n = 0;

        *ret_gen = -1;
        for (size_t i = 0; ids && i < ids->elements; i++) {
                _cleanup_reply_ redisReply *o =
                        sf_store_cmd(ctx.store, "HMGET sf:intent:%s object gen", ids->element[i]->str);
                if (o && o->type == REDIS_REPLY_ARRAY && o->element[0]->type == REDIS_REPLY_STRING &&
                    strcmp(o->element[0]->str, object) == 0) {
                        n++;
                        if (o->element[1]->type == REDIS_REPLY_STRING && atol(o->element[1]->str) > *ret_gen)
                                *ret_gen = atol(o->element[1]->str);
                }
        }
        return n;
}

/* An interface that cannot converge yet (its network is served by another node and still
 * initial) is re-submitted by every reconciler pass: still one intent. */
static void test_stuck_passes_add_no_intents(void **state) {
        char far[SF_UUID_LEN], inst[SF_UUID_LEN], iface[SF_UUID_LEN], object[64];
        int status = 0, n;
        long gen = -1;
        pid_t pid;

        (void)state;
        put_network_on(far, "initial", 0, "elsewhere");
        sf_uuid_new(inst);
        sf_uuid_new(iface);
        put_interface(iface, far, inst, 5);
        put_instance(inst, iface);
        snprintf(object, sizeof(object), "networkinterface/%s", iface);
        pid = spawn_network_worker();
        msleep(11500); /* about three reconciler passes (one per 5 s tick) */
        n = pending_for(object, &gen);
        kill(pid, SIGTERM); /* before any assert: a failed test must not leave its worker */
        waitpid(pid, &status, 0);
        fprintf(stderr, "test_network: %d pending intent(s) for the stuck interface, re-submitted %ld time(s)\n",
                n, gen);
        assert_int_equal(n, 1);
        assert_true(gen >= 1); /* at least one more pass found it open */
        sf_store_purge(ctx.store, "instance", inst);
        sf_store_purge(ctx.store, "networkinterface", iface);
        sf_store_purge(ctx.store, "network", far);
}

static int setup(void **state) {
        char u[SF_UUID_LEN];

        (void)state;
        sf_uuid_new(u);
        snprintf(node, sizeof(node), "nt-%.8s", u);
        snprintf(storage, sizeof(storage), "/tmp/sf-nettest-%.8s", u);
        if (sf_mkdir_p(storage, 0755) < 0)
                return -1;
        setenv("SF_NODE", node, 1);
        setenv("SF_STORAGE", storage, 1);
        setenv("SF_STUCK_AFTER", "1", 1);
        setenv("SF_RECONCILE_INTERVAL", "1", 1);
        setenv("SF_ACK_WAIT", "2", 1);
        return sf_ctx_open(&ctx, true, 5);
}

static int teardown(void **state) {
        (void)state;
        /* Whatever a failed test left behind. */
        for (size_t i = 0; i < nmade; i++) {
                if (netns_exists(made[i])) {
                        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:netifaces:%s", made[i]));
                        run_handler("network.delete", "network", made[i], NULL);
                }
        }
        sf_ctx_close(&ctx);
        sf_rm_rf(storage);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_delete_on_redis_error_touches_nothing),
                cmocka_unit_test(test_delete_from_error),
                cmocka_unit_test(test_unpublished_objects_converge),
                cmocka_unit_test(test_stuck_passes_add_no_intents),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
