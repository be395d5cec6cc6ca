/* Integration: the fast read paths of sf-api (api/cache.c, sf_store_read_many) against real
 * Redis, and over real HTTP that a cached answer is never a stale one: a changed instance,
 * a changed or vanished interface, a rotated key or an expired token show at once.
 * Needs redis-server and nats-server (tests/run.sh starts them). */
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
#include "cache.h"
#include "ctx.h"
#include "http.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;
static sf_http_server_t *srv;
static int port;
static char storage[64];
static char sfx[9];
static char ns1[32], ns1_key[33], ns1_tok[1024];

#include "apiclient.h"

static void get_token(const char *ns, const char *key, char *out, size_t outlen) {
        _cleanup_json_ json_object *o = NULL;
        reply_t r;

        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        o = check_json(&r, 200);
        assert_non_null(sf_json_str(o, "access_token"));
        snprintf(out, outlen, "%s", sf_json_str(o, "access_token"));
        reply_free(&r);
}

static int setup(void **state) {
        char u[SF_UUID_LEN], secret[33];

        (void)state;
        sf_uuid_new(u);
        snprintf(sfx, sizeof(sfx), "%.8s", u);
        snprintf(ns1, sizeof(ns1), "vc-%s", sfx);
        sf_random_alnum(ns1_key, 32);
        sf_random_alnum(secret, 32);
        setenv("SF_AUTH_SECRET", secret, 1);
        setenv("SF_NODE", "viewcache-test", 1);
        snprintf(storage, sizeof(storage), "/tmp/sf-vctest.XXXXXX");
        if (!mkdtemp(storage))
                return -1;
        setenv("SF_STORAGE", storage, 1);
        if (sf_ctx_open(&ctx, true, 5) < 0)
                return -1;
        sf_auth_set_bcrypt_cost(4);
        if (sf_api_init(&ctx.cfg, ctx.bus) < 0 || sf_api_ns_ensure(&ctx, ns1) < 0 ||
            sf_api_ns_set_key(&ctx, ns1, "k", ns1_key) < 0)
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
        curl_global_cleanup();
        sf_cache_view_clear();
        sf_ctx_close(&ctx);
        if (storage[0])
                sf_rm_rf(storage);
        return 0;
}

/* Write doc (a JSON text) as type/uuid over whatever revision is stored. */
static uint64_t put_doc(const char *type, const char *uuid, const char *fmt, ...) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_object *doc = NULL;
        uint64_t rev = 0, newrev = 0;
        va_list ap;
        int r;

        va_start(ap, fmt);
        assert_true(vasprintf(&text, fmt, ap) >= 0);
        va_end(ap);
        for (char *p = text; *p; p++)
                if (*p == '\'')
                        *p = '"';
        doc = json_tokener_parse(text);
        assert_non_null(doc);
        r = sf_store_get(ctx.store, type, uuid, NULL, &rev);
        assert_true(r == 0 || r == -ENOENT);
        assert_int_equal(sf_store_put(ctx.store, type, uuid, r == 0 ? rev : 0, doc, NULL, &newrev), 0);
        return newrev;
}

/* ---- the store: many objects in one round trip, judged as sf_store_get judges one ---- */

static void test_read_many(void **state) {
        char a[SF_UUID_LEN], b[SF_UUID_LEN], gone[SF_UUID_LEN], half[SF_UUID_LEN];
        const char *types[] = {"instance", "instance", "instance", "instance"};
        const char *uuids[] = {a, gone, b, half};
        redisReply **rep = NULL;
        const char *text;
        size_t len;
        uint64_t rev, rev_a, rev_b;

        (void)state;
        sf_uuid_new(a), sf_uuid_new(b), sf_uuid_new(gone), sf_uuid_new(half);
        rev_a = put_doc("instance", a, "{'uuid': '%s', 'state': 'created', 'n': 1}", a);
        rev_a = put_doc("instance", a, "{'uuid': '%s', 'state': 'created', 'n': 2}", a);
        rev_b = put_doc("instance", b, "{'uuid': '%s', 'state': 'initial'}", b);
        freeReplyObject(sf_store_cmd(ctx.store, "HSET sf:obj:instance:%s rev 7", half));

        assert_int_equal(sf_store_read_many(ctx.store, 4, types, uuids, true, &rep), 0);
        assert_int_equal(sf_store_reply_obj(rep[0], "instance", a, &rev, &text, &len), 0);
        assert_int_equal(rev, rev_a);
        assert_int_equal(rev, 2);
        assert_non_null(strstr(text, "\"n\":2"));
        assert_int_equal(len, strlen(text));
        assert_int_equal(sf_store_reply_obj(rep[1], "instance", gone, &rev, &text, &len), -ENOENT);
        assert_int_equal(sf_store_reply_obj(rep[2], "instance", b, &rev, &text, &len), 0);
        assert_int_equal(rev, rev_b);
        assert_non_null(strstr(text, "initial"));
        assert_int_equal(sf_store_reply_obj(rep[3], "instance", half, &rev, &text, &len), -EBADMSG);
        sf_store_replies_free(rep, 4);

        /* Revisions only: the half-written one has its rev, so it reads as present here. */
        assert_int_equal(sf_store_read_many(ctx.store, 4, types, uuids, false, &rep), 0);
        text = "x";
        assert_int_equal(sf_store_reply_obj(rep[0], "instance", a, &rev, &text, NULL), 0);
        assert_int_equal(rev, rev_a);
        assert_null(text);
        assert_int_equal(sf_store_reply_obj(rep[1], "instance", gone, &rev, NULL, NULL), -ENOENT);
        assert_int_equal(sf_store_reply_obj(rep[3], "instance", half, &rev, NULL, NULL), 0);
        assert_int_equal(rev, 7);
        sf_store_replies_free(rep, 4);

        /* An error reply is "don't know", never absent. */
        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:obj:instance:%s", half));
        freeReplyObject(sf_store_cmd(ctx.store, "SET sf:obj:instance:%s notahash", half));
        assert_int_equal(sf_store_read_many(ctx.store, 4, types, uuids, true, &rep), 0);
        assert_int_equal(sf_store_reply_obj(rep[3], "instance", half, &rev, NULL, NULL), -EIO);
        sf_store_replies_free(rep, 4);
        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:obj:instance:%s", half));
        sf_store_purge(ctx.store, "instance", a);
        sf_store_purge(ctx.store, "instance", b);

        assert_int_equal(sf_store_read_many(ctx.store, 0, types, uuids, true, &rep), 0);
        assert_null(rep);
}

/* ---- generations: every write and purge of a type changes it, to a value never seen ---- */

static void test_gens(void **state) {
        char type[32], u[SF_UUID_LEN];
        const char *types[2] = {type, "instance"};
        uint64_t g[2], g2[2], seen[4];
        size_t nseen = 0;

        (void)state;
        sf_uuid_new(u);
        snprintf(type, sizeof(type), "gentest%.8s", u);
        assert_int_equal(sf_store_gens(ctx.store, 2, types, g), 0);
        assert_int_equal(g[0], 0); /* never written */
        put_doc(type, u, "{'uuid': '%s', 'state': 'initial'}", u);
        assert_int_equal(sf_store_gens(ctx.store, 2, types, g), 0);
        assert_true(g[0] > 1000000000000000ULL); /* started from the time in microseconds */
        seen[nseen++] = g[0];
        /* A refused write (stale revision) changes nothing. */
        {
                _cleanup_json_ json_object *doc = json_tokener_parse("{\"state\": \"x\"}");
                assert_int_equal(sf_store_put(ctx.store, type, u, 0, doc, NULL, NULL), -ESTALE);
        }
        assert_int_equal(sf_store_gens(ctx.store, 2, types, g2), 0);
        assert_int_equal(g2[0], g[0]);
        put_doc(type, u, "{'uuid': '%s', 'state': 'created'}", u);
        assert_int_equal(sf_store_gens(ctx.store, 2, types, g), 0);
        assert_true(g[0] > seen[0]);
        seen[nseen++] = g[0];
        /* Purge: atomic, object and indexes gone, generation moved. */
        assert_int_equal(sf_store_purge(ctx.store, type, u), 0);
        assert_int_equal(sf_store_get(ctx.store, type, u, NULL, NULL), -ENOENT);
        {
                char **ids = NULL;
                size_t n = 9;
                assert_int_equal(sf_store_index(ctx.store, type, "all", NULL, &ids, &n), 0);
                assert_int_equal(n, 0);
                sf_strv_free(ids);
        }
        assert_int_equal(sf_store_gens(ctx.store, 2, types, g), 0);
        assert_true(g[0] > seen[1]);
        seen[nseen++] = g[0];
        /* A wiped counter starts again above every value it had. */
        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:gen:%s", type));
        put_doc(type, u, "{'uuid': '%s', 'state': 'initial'}", u);
        assert_int_equal(sf_store_gens(ctx.store, 2, types, g), 0);
        for (size_t i = 0; i < nseen; i++)
                assert_true(g[0] > seen[i]);
        assert_int_equal(sf_store_purge(ctx.store, type, u), 0);
        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:gen:%s", type));
}

/* ---- the caches themselves ---- */

static sf_view_t *view_make(const char *uuid, uint64_t rev, const char *text) {
        sf_view_t *v = NULL;

        assert_int_equal(sf_view_new(strdup(text), &v), 0);
        snprintf(v->type, sizeof(v->type), "instance");
        snprintf(v->uuid, sizeof(v->uuid), "%s", uuid);
        v->rev = rev;
        return v;
}

static void test_view_cache(void **state) {
        char uuid[SF_UUID_LEN];
        sf_view_t *v;
        const sf_view_t *got = NULL;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_cache_view_get("instance", uuid, 5, &got), -ENOENT);
        v = view_make(uuid, 5, "{\"a\"");
        sf_cache_view_put(v);
        sf_view_unref(v); /* the cache keeps its own reference */
        assert_int_equal(sf_cache_view_get("instance", uuid, 5, &got), 0);
        assert_int_equal(got->len, 4);
        assert_memory_equal(got->text, "{\"a\"", 4);
        /* Another revision or another type is a miss. */
        assert_int_equal(sf_cache_view_get("instance", uuid, 6, &got), -ENOENT);
        assert_int_equal(sf_cache_view_get("network", uuid, 5, &got), -ENOENT);
        /* A newer revision replaces it; a reference taken before stays valid. */
        v = view_make(uuid, 9, "nine");
        sf_cache_view_put(v);
        sf_view_unref(v);
        assert_memory_equal(got->text, "{\"a\"", 4);
        sf_view_unref(got);
        assert_int_equal(sf_cache_view_get("instance", uuid, 5, &got), -ENOENT);
        /* A slower thread's older revision does not replace a newer one. */
        v = view_make(uuid, 8, "8888");
        sf_cache_view_put(v);
        sf_view_unref(v);
        assert_int_equal(sf_cache_view_get("instance", uuid, 8, &got), -ENOENT);
        assert_int_equal(sf_cache_view_get("instance", uuid, 9, &got), 0);
        assert_memory_equal(got->text, "nine", 4);
        sf_view_unref(got);
        sf_cache_view_clear();
        assert_int_equal(sf_cache_view_get("instance", uuid, 9, &got), -ENOENT);
}

static void test_token_memo(void **state) {
        _cleanup_free_ char *tok = NULL;
        char hdr[1200], bad[1200];
        sf_auth_claims_t c;
        const char *msg = NULL;

        (void)state;
        assert_int_equal(sf_auth_token_issue(ctx.cfg.auth_secret, "z", ns1, "k", "nonce1", 2, &tok), 0);
        snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
        for (int i = 0; i < 2; i++) {
                memset(&c, 0, sizeof(c));
                assert_int_equal(sf_cache_token_verify(ctx.cfg.auth_secret, hdr, &c, &msg), 0);
                assert_string_equal(c.ns, ns1);
                assert_string_equal(c.keyname, "k");
                assert_string_equal(c.nonce, "nonce1");
        }
        /* A remembered token does not vouch for a different header. */
        snprintf(bad, sizeof(bad), "%s", hdr);
        bad[strlen(bad) - 2] ^= 1;
        assert_int_equal(sf_cache_token_verify(ctx.cfg.auth_secret, bad, &c, &msg), -EACCES);
        assert_int_equal(sf_cache_token_verify("another-secret", hdr, &c, &msg), -EACCES);
        /* Expiry is checked on every use, with upstream's message. */
        sleep(3);
        msg = NULL;
        assert_int_equal(sf_cache_token_verify(ctx.cfg.auth_secret, hdr, &c, &msg), -EACCES);
        assert_string_equal(msg, "Signature has expired");
}

static void test_namespace_memo(void **state) {
        const char *t1 = "{\"state\": \"created\", \"keys\": {}}", *t2 = "{\"state\": \"deleted\", \"keys\": {}}";
        json_object *d1, *d2, *d3;

        (void)state;
        assert_int_equal(sf_cache_namespace_doc("memo", t1, strlen(t1), &d1), 0);
        assert_string_equal(sf_json_str(d1, "state"), "created");
        assert_int_equal(sf_cache_namespace_doc("memo", t1, strlen(t1), &d3), 0);
        assert_ptr_equal(d1, d3);
        assert_int_equal(sf_cache_namespace_doc("memo", t2, strlen(t2), &d2), 0);
        assert_string_equal(sf_json_str(d2, "state"), "deleted");
        assert_int_equal(sf_cache_namespace_doc("memo", "[1]", 3, &d3), -EBADMSG);
}

/* ---- over HTTP: cached answers follow every change ---- */

static json_object *get_instance(const char *uuid) {
        char path[128];
        reply_t r;
        json_object *o;

        snprintf(path, sizeof(path), "/instances/%s", uuid);
        req(&r, "GET", path, ns1_tok, NULL);
        o = check_json(&r, 200);
        reply_free(&r);
        return o;
}

static const char *iface_ip(json_object *inst, size_t i) {
        json_object *ifs, *f;

        assert_true(json_object_object_get_ex(inst, "interfaces", &ifs));
        if (i >= json_object_array_length(ifs))
                return NULL;
        f = json_object_array_get_idx(ifs, i);
        return sf_json_str(f, "ipv4");
}

/* uuid's entry in GET /instances, or NULL. */
static json_object *listed(const char *uuid, bool all) {
        _cleanup_json_ json_object *l = NULL;
        reply_t r;

        req(&r, "GET", "/instances", ns1_tok, all ? "{'all': true}" : NULL);
        l = check_json(&r, 200);
        reply_free(&r);
        for (size_t i = 0; i < json_object_array_length(l); i++) {
                json_object *e = json_object_array_get_idx(l, i);

                if (strcmp(sf_json_str(e, "uuid") ?: "", uuid) == 0)
                        return json_object_get(e);
        }
        return NULL;
}

static void test_http_views_follow_changes(void **state) {
        char inst[SF_UUID_LEN], ifc[SF_UUID_LEN], path[128];
        json_object *o;
        reply_t r;

        (void)state;
        get_token(ns1, ns1_key, ns1_tok, sizeof(ns1_tok));
        sf_uuid_new(inst), sf_uuid_new(ifc);
        put_doc("networkinterface", ifc,
                "{'uuid': '%s', 'state': 'created', 'namespace': '%s', 'instance_uuid': '%s', 'ipv4': '10.0.0.5'}",
                ifc, ns1, inst);
        put_doc("instance", inst,
                "{'uuid': '%s', 'name': 'vc1', 'state': 'created', 'namespace': '%s', 'interfaces': ['%s']}",
                inst, ns1, ifc);

        /* Twice each: the second answer may come from the caches. */
        for (int i = 0; i < 2; i++) {
                o = get_instance(inst);
                assert_string_equal(sf_json_str(o, "name"), "vc1");
                assert_string_equal(iface_ip(o, 0), "10.0.0.5");
                json_object_put(o);
                o = listed(inst, false);
                assert_non_null(o);
                assert_string_equal(iface_ip(o, 0), "10.0.0.5");
                json_object_put(o);
        }
        /* The instance changes. */
        put_doc("instance", inst,
                "{'uuid': '%s', 'name': 'vc2', 'state': 'created', 'namespace': '%s', 'interfaces': ['%s']}",
                inst, ns1, ifc);
        o = get_instance(inst);
        assert_string_equal(sf_json_str(o, "name"), "vc2");
        json_object_put(o);
        o = listed(inst, false);
        assert_string_equal(sf_json_str(o, "name"), "vc2");
        json_object_put(o);
        /* Only its interface changes. */
        put_doc("networkinterface", ifc,
                "{'uuid': '%s', 'state': 'created', 'namespace': '%s', 'instance_uuid': '%s', 'ipv4': '10.0.0.9'}",
                ifc, ns1, inst);
        o = listed(inst, false);
        assert_string_equal(iface_ip(o, 0), "10.0.0.9");
        json_object_put(o);
        o = get_instance(inst);
        assert_string_equal(iface_ip(o, 0), "10.0.0.9");
        json_object_put(o);
        /* Its interface vanishes. */
        assert_int_equal(sf_store_purge(ctx.store, "networkinterface", ifc), 0);
        o = get_instance(inst);
        assert_null(iface_ip(o, 0));
        json_object_put(o);
        o = listed(inst, false);
        assert_null(iface_ip(o, 0));
        json_object_put(o);
        /* Deleted: out of the list unless all, still there by UUID. */
        put_doc("instance", inst, "{'uuid': '%s', 'name': 'vc2', 'state': 'deleted', 'namespace': '%s'}", inst, ns1);
        assert_null(listed(inst, false));
        o = listed(inst, true);
        assert_non_null(o);
        json_object_put(o);
        o = get_instance(inst);
        assert_string_equal(sf_json_str(o, "state"), "deleted");
        json_object_put(o);
        /* Another namespace's instance is not found, cached or not. */
        put_doc("instance", inst, "{'uuid': '%s', 'name': 'vc2', 'state': 'created', 'namespace': 'system'}", inst);
        snprintf(path, sizeof(path), "/instances/%s", inst);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
        assert_null(listed(inst, true));
        /* A body key the handler does not take is refused after the lookup, as before. */
        put_doc("instance", inst, "{'uuid': '%s', 'name': 'vc2', 'state': 'created', 'namespace': '%s'}", inst, ns1);
        req(&r, "GET", path, ns1_tok, "{'bogus': 1}");
        check_error(&r, 400, "get() got an unexpected keyword argument 'bogus'");
        reply_free(&r);
        /* Re-posting the key rotates its nonce: the remembered token dies at once. */
        o = get_instance(inst);
        json_object_put(o);
        assert_int_equal(sf_api_ns_set_key(&ctx, ns1, "k", ns1_key), 0);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 401, "");
        reply_free(&r);
        req(&r, "GET", "/instances", ns1_tok, NULL);
        check_error(&r, 401, "");
        reply_free(&r);
        sf_store_purge(ctx.store, "instance", inst);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_many),
                cmocka_unit_test(test_gens),
                cmocka_unit_test(test_view_cache),
                cmocka_unit_test(test_token_memo),
                cmocka_unit_test(test_namespace_memo),
                cmocka_unit_test(test_http_views_follow_changes),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
