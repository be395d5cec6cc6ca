/* Integration: sf-api's handlers in-process, over real HTTP (libcurl), against real Redis
 * and NATS.  No workers run: networks stay `initial` unless a test moves them, and nodes
 * are fake records.  Needs redis-server and nats-server (tests/run.sh starts them;
 * SF_REDIS_PORT, SF_NATS_URL).  Expected messages are api.md §1-§3. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "ctx.h"
#include "http.h"
#include "ipam.h"
#include "lock.h"
#include "object.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;
static sf_http_server_t *srv;
static int port;
static char storage[64];
static char sfx[9];          /* per-run suffix: names never collide with earlier runs */
static char deploy_key[33];  /* system/deploy secret */
static char sys_tok[1024];   /* a valid system token (refreshed after the key rotation) */
static char ns1[32], ns1_key[33], ns1_tok[1024];
static char node_name[64];   /* the fake hypervisor */
static bool other_nodes;     /* live hypervisors we did not write (shared Redis) */
static char net_uuid[SF_UUID_LEN], net_name[64]; /* 10.0.0.0/24, moved to created */
static char inst_uuid[SF_UUID_LEN], inst_name[64];

/* ---- HTTP client ---- */

#include "apiclient.h"

/* The top-level keys of o, in order, must be exactly keys[] (NULL-terminated). */
static void check_keys(json_object *o, const char *const *keys) {
        size_t i = 0;

        assert_true(json_object_is_type(o, json_type_object));
        json_object_object_foreach(o, k, v) {
                (void)v;
                if (!keys[i] || strcmp(k, keys[i]) != 0)
                        fail_msg("key %zu: want %s, got %s", i, keys[i] ? keys[i] : "(end)", k);
                i++;
        }
        if (keys[i])
                fail_msg("missing key %s", keys[i]);
}

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

/* Is there an intent of kind for objtype/uuid in the pending set? */
static bool intent_pending(const char *kind, const char *objtype, const char *uuid, char *subject,
                           size_t sublen) {
        _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx.store, "ZRANGE sf:intents:pending 0 -1");
        char object[128];

        snprintf(object, sizeof(object), "%s/%s", objtype, uuid);
        assert_non_null(ids);
        assert_int_equal(ids->type, REDIS_REPLY_ARRAY);
        for (size_t i = 0; i < ids->elements; i++) {
                _cleanup_reply_ redisReply *h = sf_store_cmd(ctx.store, "HMGET sf:intent:%s kind object subject",
                                                             ids->element[i]->str);
                if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 3 || !h->element[0]->str ||
                    !h->element[1]->str)
                        continue;
                if (strcmp(h->element[0]->str, kind) == 0 && strcmp(h->element[1]->str, object) == 0) {
                        if (subject)
                                snprintf(subject, sublen, "%s", h->element[2]->str ? h->element[2]->str : "");
                        return true;
                }
        }
        return false;
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

/* ---- setup ---- */

static int setup(void **state) {
        char u[SF_UUID_LEN];
        _cleanup_reply_ redisReply *nodes = NULL;
        char **names = NULL;

        (void)state;
        sf_uuid_new(u);
        snprintf(sfx, sizeof(sfx), "%.8s", u);
        snprintf(node_name, sizeof(node_name), "apinode-%s", sfx);
        snprintf(ns1, sizeof(ns1), "ns1-%s", sfx);
        sf_random_alnum(deploy_key, 32);
        sf_random_alnum(ns1_key, 32);
        {
                char secret[33], nodeenv[64];
                sf_random_alnum(secret, 32);
                snprintf(nodeenv, sizeof(nodeenv), "apitest-%s", sfx);
                setenv("SF_AUTH_SECRET", secret, 1);
                setenv("SF_NODE", nodeenv, 1);
        }
        snprintf(storage, sizeof(storage), "/tmp/sf-apitest.XXXXXX");
        if (!mkdtemp(storage))
                return -1;
        setenv("SF_STORAGE", storage, 1);
        if (sf_ctx_open(&ctx, true, 5) < 0)
                return -1;
        if (!ctx.cfg.auth_secret[0])
                return -1;
        /* Other live hypervisors (a Redis shared with earlier runs) would take our
         * placements: the tests that depend on "only our node" then skip those checks. */
        if (sf_store_index(ctx.store, "node", "all", NULL, &names, NULL) < 0)
                return -1;
        for (char **p = names; *p; p++) {
                _cleanup_json_ json_object *n = NULL;
                if (sf_store_get(ctx.store, "node", *p, &n, NULL) == 0 && sf_json_bool(n, "is_hypervisor", false) &&
                    sf_now() - (double)sf_json_int(n, "lastseen", 0) <= 120)
                        other_nodes = true;
        }
        sf_strv_free(names);

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
        sf_http_stop(srv); /* waits for handlers; pool threads free their contexts */
        srv = NULL;
        curl_global_cleanup();
        /* Our fake hypervisor must not take placements of later runs or tests. */
        if (ctx.store)
                sf_store_purge(ctx.store, "node", node_name);
        sf_ctx_close(&ctx);
        if (storage[0])
                sf_rm_rf(storage);
        return 0;
}

/* ---- root and wire ---- */

static void test_root(void **state) {
        reply_t r;

        (void)state;
        req(&r, "GET", "/", NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.ctype, "text/html"));
        assert_non_null(strstr(r.body, "Shaken Fist REST API service"));
        reply_free(&r);
        /* The OpenAPI description, without a token. */
        req(&r, "GET", "/openapi.json", NULL, NULL);
        {
                _cleanup_json_ json_object *o = check_json(&r, 200);
                json_object *paths;
                assert_string_equal(jstr(o, "openapi"), "3.0.3");
                assert_true(json_object_object_get_ex(o, "paths", &paths));
                assert_true(json_object_object_get_ex(paths, "/instances/{instance}", NULL));
        }
        reply_free(&r);
}

static void test_wire(void **state) {
        reply_t r;

        (void)state;
        req(&r, "GET", "/no/such/url", NULL, NULL);
        assert_int_equal(r.status, 404);
        assert_non_null(strstr(r.ctype, "text/html"));
        assert_non_null(strstr(r.body, "404 Not Found"));
        reply_free(&r);

        req(&r, "PUT", "/instances", NULL, "{}");
        assert_int_equal(r.status, 405);
        assert_string_equal(r.ctype, "application/json");
        assert_string_equal(r.body, "{\"message\": \"The method is not allowed for the requested URL.\"}\n");
        reply_free(&r);
        req(&r, "GET", "/auth", NULL, NULL);
        assert_int_equal(r.status, 405);
        reply_free(&r);

        /* Request ids differ per request. */
        {
                reply_t a, b;
                req(&a, "GET", "/", NULL, NULL);
                req(&b, "GET", "/", NULL, NULL);
                assert_string_not_equal(a.reqid, b.reqid);
                reply_free(&a);
                reply_free(&b);
        }
}

/* ---- auth ---- */

static void test_auth_post(void **state) {
        _cleanup_json_ json_object *o = NULL;
        const char *const keys[] = {"access_token", "token_type", "expires_in", NULL};
        reply_t r;

        (void)state;
        req(&r, "POST", "/auth", NULL, "{'key': '%s'}", deploy_key);
        check_error(&r, 400, "missing namespace in request");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, NULL); /* empty body is {} */
        check_error(&r, 400, "missing namespace in request");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': 'nosuch-%s', 'key': 'k'}", sfx);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': 'system'}");
        check_error(&r, 400, "missing key in request");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': 'system', 'key': 5}");
        check_error(&r, 400, "key is not a string");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': 'system', 'key': 'wrong-%s'}", deploy_key);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': 'system', 'key': '%s', 'keyyy': 1}", deploy_key);
        check_error(&r, 400, "post() got an unexpected keyword argument 'keyyy'");
        reply_free(&r);

        req(&r, "POST", "/auth", NULL, "{'namespace': 'system', 'key': '%s'}", deploy_key);
        o = check_json(&r, 200);
        check_keys(o, keys);
        assert_true(strlen(jstr(o, "access_token")) > 20);
        assert_string_equal(jstr(o, "token_type"), "Bearer");
        assert_int_equal(sf_json_int(o, "expires_in", 0), 900);
        snprintf(sys_tok, sizeof(sys_tok), "%s", jstr(o, "access_token"));
        reply_free(&r);
}

static void test_tokens(void **state) {
        _cleanup_free_ char *foreign = NULL;
        char old[1024];
        reply_t r;

        (void)state;
        req(&r, "GET", "/networks", NULL, NULL);
        check_error(&r, 401, "Missing Authorization Header");
        reply_free(&r);
        req(&r, "GET", "/networks", "garbage", NULL);
        check_error(&r, 401, "invalid JWT in Authorization header");
        reply_free(&r);
        req(&r, "GET", "/networks", "RAW:Basic Zm9vOmJhcg==", NULL);
        check_error(&r, 401, "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'");
        reply_free(&r);
        /* Signed with another secret. */
        assert_int_equal(sf_auth_token_issue("not-the-secret", "shakenfist", "system", "deploy", "x", 900, &foreign),
                         0);
        req(&r, "GET", "/networks", foreign, NULL);
        assert_int_equal(r.status, 401);
        reply_free(&r);
        /* Well signed, but for a key that does not exist: the storage check fails (empty message). */
        free(foreign);
        foreign = NULL;
        assert_int_equal(sf_auth_token_issue(ctx.cfg.auth_secret, "shakenfist", "system", "nokey", "x", 900, &foreign),
                         0);
        req(&r, "GET", "/networks", foreign, NULL);
        check_error(&r, 401, "");
        reply_free(&r);

        req(&r, "GET", "/networks", sys_tok, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);

        /* Re-posting the key rotates its nonce: the old token dies, a new one works. */
        snprintf(old, sizeof(old), "%s", sys_tok);
        req(&r, "POST", "/auth/namespaces/system/keys", sys_tok, "{'key_name': 'deploy', 'key': '%s'}", deploy_key);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "\"deploy\"\n");
        reply_free(&r);
        req(&r, "GET", "/networks", old, NULL);
        check_error(&r, 401, "");
        reply_free(&r);
        get_token("system", deploy_key, sys_tok, sizeof(sys_tok));
        assert_string_not_equal(old, sys_tok);
        req(&r, "GET", "/networks", sys_tok, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
}

/* ---- namespaces ---- */

static void test_namespaces(void **state) {
        _cleanup_json_ json_object *o = NULL, *list = NULL;
        const char *const nskeys[] = {"name", "state", "metadata", "version", "keys", "trust", NULL};
        char tok2[1024];
        bool found = false;
        reply_t r;

        (void)state;
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'key_name': 'k1', 'key': '%s'}", ns1,
            ns1_key);
        o = check_json(&r, 200);
        check_keys(o, nskeys);
        assert_string_equal(jstr(o, "name"), ns1);
        assert_string_equal(jstr(o, "state"), "created");
        assert_int_equal(sf_json_int(o, "version", 0), SF_VERSION_NAMESPACE);
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "keys"), JSON_C_TO_STRING_PLAIN),
                            "[\"k1\"]");
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "trust"), JSON_C_TO_STRING_PLAIN),
                            "{\"full\":[\"system\"]}");
        reply_free(&r);

        req(&r, "GET", "/auth/namespaces", sys_tok, NULL);
        list = check_json(&r, 200);
        assert_true(json_object_is_type(list, json_type_array));
        for (size_t i = 0; i < json_object_array_length(list); i++)
                found |= strcmp(jstr(json_object_array_get_idx(list, i), "name") ?: "", ns1) == 0;
        assert_true(found);
        reply_free(&r);

        get_token(ns1, ns1_key, ns1_tok, sizeof(ns1_tok));
        /* ns1 sees itself, not system. */
        json_object_put(list);
        req(&r, "GET", "/auth/namespaces", ns1_tok, NULL);
        list = check_json(&r, 200);
        assert_int_equal(json_object_array_length(list), 1);
        assert_string_equal(jstr(json_object_array_get_idx(list, 0), "name"), ns1);
        reply_free(&r);
        req(&r, "GET", "/auth/namespaces/system", ns1_tok, NULL);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);
        /* Not an admin. */
        req(&r, "POST", "/auth/namespaces", ns1_tok, "{'namespace': 'x-%s'}", sfx);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);

        /* Reserved key names. */
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'key_name': '_service_key', 'key': 'x'}",
            ns1);
        check_error(&r, 403, "illegal key name");
        reply_free(&r);
        {
                char path[128];
                snprintf(path, sizeof(path), "/auth/namespaces/%s/keys", ns1);
                req(&r, "POST", path, sys_tok, "{'key_name': '_service_key_abcde', 'key': 'x'}");
                check_error(&r, 403, "illegal key name");
                reply_free(&r);
                req(&r, "POST", path, sys_tok, "{'key_name': 'k2'}");
                check_error(&r, 400, "no key specified");
                reply_free(&r);
                req(&r, "POST", path, sys_tok, "{'key': 'x'}");
                check_error(&r, 400, "no key name specified");
                reply_free(&r);
                req(&r, "GET", path, ns1_tok, NULL);
                assert_int_equal(r.status, 200);
                assert_string_equal(r.body, "[\"k1\"]\n");
                reply_free(&r);

                /* A second key; deleting it kills its tokens, deleting it again is 404. */
                req(&r, "POST", path, ns1_tok, "{'key_name': 'k2', 'key': 'second-%s'}", sfx);
                assert_int_equal(r.status, 200);
                assert_string_equal(r.body, "\"k2\"\n");
                reply_free(&r);
                {
                        char key2[64];
                        snprintf(key2, sizeof(key2), "second-%s", sfx);
                        get_token(ns1, key2, tok2, sizeof(tok2));
                }
                req(&r, "GET", "/networks", tok2, NULL);
                assert_int_equal(r.status, 200);
                reply_free(&r);
                snprintf(path, sizeof(path), "/auth/namespaces/%s/keys/k2", ns1);
                req(&r, "DELETE", path, sys_tok, NULL);
                assert_int_equal(r.status, 200);
                assert_string_equal(r.body, "null\n");
                reply_free(&r);
                req(&r, "GET", "/networks", tok2, NULL);
                check_error(&r, 401, "");
                reply_free(&r);
                req(&r, "DELETE", path, sys_tok, NULL);
                check_error(&r, 404, "key name not found in namespace");
                reply_free(&r);
                snprintf(path, sizeof(path), "/auth/namespaces/%s/keys/nosuch", ns1);
                req(&r, "DELETE", path, sys_tok, NULL);
                check_error(&r, 404, "key name not found in namespace");
                reply_free(&r);
                /* k1 still works. */
                req(&r, "GET", "/networks", ns1_tok, NULL);
                assert_int_equal(r.status, 200);
                reply_free(&r);
        }

        /* Unknown body key: Python's TypeError text. */
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'keyyy': 1}", ns1);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "got an unexpected keyword argument 'keyyy'"));
        check_error(&r, 400, "post() got an unexpected keyword argument 'keyyy'");
        reply_free(&r);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'key_name': 'k'}");
        check_error(&r, 400, "no namespace specified");
        reply_free(&r);
}

/* Trusts (api.md §3.4): a namespace trusted by ns1 sees ns1 (namespace routes); system
 * stays trusted whatever is asked. */
static void test_namespace_trusts(void **state) {
        char nsb[32], key[40], tokb[1024], path[128], full[256];
        _cleanup_json_ json_object *o = NULL;
        reply_t r;

        (void)state;
        snprintf(nsb, sizeof(nsb), "tb-%s", sfx);
        snprintf(key, sizeof(key), "tb-key-%s", sfx);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'key_name': 'k', 'key': '%s'}", nsb, key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        get_token(nsb, key, tokb, sizeof(tokb));
        snprintf(path, sizeof(path), "/auth/namespaces/%s", ns1);
        req(&r, "GET", path, tokb, NULL);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);

        snprintf(path, sizeof(path), "/auth/namespaces/%s/trust", ns1);
        req(&r, "POST", path, tokb, "{'external_namespace': '%s'}", nsb); /* not trusted by ns1 yet */
        check_error(&r, 404, "namespace not found");
        reply_free(&r);
        req(&r, "POST", path, ns1_tok, "{}");
        check_error(&r, 400, "no external namespace specified");
        reply_free(&r);
        req(&r, "POST", path, ns1_tok, "{'external_namespace': 'nosuch-ns'}");
        check_error(&r, 404, "external namespace not found");
        reply_free(&r);
        req(&r, "POST", path, ns1_tok, "{'external_namespace': '%s'}", nsb);
        o = check_json(&r, 200);
        reply_free(&r);
        snprintf(full, sizeof(full), "{\"full\":[\"system\",\"%s\"]}", nsb);
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "trust"), JSON_C_TO_STRING_PLAIN),
                            full);

        snprintf(path, sizeof(path), "/auth/namespaces/%s", ns1);
        req(&r, "GET", path, tokb, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);

        snprintf(path, sizeof(path), "/auth/namespaces/%s/trust/system", ns1);
        req(&r, "DELETE", path, ns1_tok, NULL);
        json_object_put(o);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "trust"), JSON_C_TO_STRING_PLAIN),
                            full);
        snprintf(path, sizeof(path), "/auth/namespaces/%s/trust/%s", ns1, nsb);
        req(&r, "DELETE", path, ns1_tok, NULL);
        json_object_put(o);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "trust"), JSON_C_TO_STRING_PLAIN),
                            "{\"full\":[\"system\"]}");
        snprintf(path, sizeof(path), "/auth/namespaces/%s", ns1);
        req(&r, "GET", path, tokb, NULL);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);
}

/* DELETE /auth/namespaces/<ns>: system only, never system, not while instances (other than
 * deleted/error) or networks (other than deleted/delete-wait/error) remain; afterwards its
 * tokens and keys are dead, and the name can be created afresh. */
static void test_namespace_delete(void **state) {
        char ns[32], key[40], tok[1024], path[96], inst[SF_UUID_LEN], net[SF_UUID_LEN];
        _cleanup_json_ json_object *idoc = json_object_new_object(), *o = NULL, *netdoc = NULL;
        reply_t r;

        (void)state;
        snprintf(ns, sizeof(ns), "nd_%s", sfx);
        snprintf(key, sizeof(key), "nd-key-%s", sfx);
        snprintf(path, sizeof(path), "/auth/namespaces/%s", ns);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'key_name': 'k', 'key': '%s'}", ns, key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        get_token(ns, key, tok, sizeof(tok));

        req(&r, "DELETE", "/auth/namespaces/system", sys_tok, NULL);
        check_error(&r, 403, "you cannot delete the system namespace");
        reply_free(&r);
        req(&r, "DELETE", path, tok, NULL); /* not an admin, even of itself */
        check_error(&r, 401, "unauthorized");
        reply_free(&r);
        req(&r, "DELETE", "/auth/namespaces/nosuch-ns", sys_tok, NULL);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);

        /* An instance (a bare record is enough: the API only reads states). */
        sf_uuid_new(inst);
        json_object_object_add(idoc, "uuid", json_object_new_string(inst));
        json_object_object_add(idoc, "name", json_object_new_string("nd-inst"));
        json_object_object_add(idoc, "namespace", json_object_new_string(ns));
        json_object_object_add(idoc, "state", json_object_new_string("initial"));
        json_object_object_add(idoc, "metadata", json_object_new_object());
        assert_int_equal(sf_obj_create(&ctx, "instance", inst, idoc), 0);
        req(&r, "DELETE", path, sys_tok, NULL);
        check_error(&r, 400, "you cannot delete a namespace with instances");
        reply_free(&r);
        assert_int_equal(sf_obj_set_state(&ctx, "instance", inst, "initial-error", "test", NULL, NULL), 0);
        req(&r, "DELETE", path, sys_tok, NULL); /* initial-error still counts */
        check_error(&r, 400, "you cannot delete a namespace with instances");
        reply_free(&r);
        assert_int_equal(sf_obj_set_state(&ctx, "instance", inst, "error", NULL, NULL, NULL), 0);

        /* A network of the namespace, still `initial` (no workers here). */
        req(&r, "POST", "/networks", tok, "{'netblock': '10.91.0.0/24', 'name': 'nd-net'}");
        netdoc = check_json(&r, 200);
        snprintf(net, sizeof(net), "%s", jstr(netdoc, "uuid"));
        reply_free(&r);
        req(&r, "DELETE", path, sys_tok, NULL);
        check_error(&r, 400, "you cannot delete a namespace with networks");
        reply_free(&r);
        assert_int_equal(sf_obj_set_state(&ctx, "network", net, "error", NULL, NULL, NULL), 0);

        req(&r, "DELETE", path, sys_tok, NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "null\n");
        reply_free(&r);

        /* Gone: its token, its key, its name. */
        req(&r, "GET", "/networks", tok, NULL);
        check_error(&r, 401, "");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, NULL);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);
        req(&r, "DELETE", path, sys_tok, NULL);
        check_error(&r, 404, "namespace not found");
        reply_free(&r);

        /* The name can be used again, and starts empty. */
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s'}", ns);
        o = check_json(&r, 200);
        assert_string_equal(jstr(o, "state"), "created");
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "keys"), JSON_C_TO_STRING_PLAIN),
                            "[]");
        reply_free(&r);
        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);
}

/* DELETE /instances: every instance of one namespace, any state, queued for delete. */
static void test_instances_delete_all(void **state) {
        char ns[32], key[40], tok[1024], placed[SF_UUID_LEN], unplaced[SF_UUID_LEN], other[SF_UUID_LEN];
        _cleanup_json_ json_object *list = NULL, *got = NULL;
        reply_t r;

        (void)state;
        snprintf(ns, sizeof(ns), "da-%s", sfx);
        snprintf(key, sizeof(key), "da-key-%s", sfx);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'key_name': 'k', 'key': '%s'}", ns, key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        get_token(ns, key, tok, sizeof(tok));
        {
                const char *owners[] = {ns, ns, ns1};
                char *ids[] = {placed, unplaced, other};
                for (int i = 0; i < 3; i++) {
                        _cleanup_json_ json_object *d = json_object_new_object();
                        sf_uuid_new(ids[i]);
                        json_object_object_add(d, "uuid", json_object_new_string(ids[i]));
                        json_object_object_add(d, "name", json_object_new_string("da"));
                        json_object_object_add(d, "namespace", json_object_new_string(owners[i]));
                        json_object_object_add(d, "state", json_object_new_string("initial"));
                        json_object_object_add(d, "metadata", json_object_new_object());
                        if (i == 0)
                                json_object_object_add(d, "node", json_object_new_string(node_name));
                        assert_int_equal(sf_obj_create(&ctx, "instance", ids[i], d), 0);
                }
        }

        req(&r, "DELETE", "/instances", tok, "{'namespace': '%s'}", ns);
        check_error(&r, 400, "parameter confirm is not set true");
        reply_free(&r);
        req(&r, "DELETE", "/instances", sys_tok, "{'confirm': true}");
        check_error(&r, 400, "system user must specify parameter namespace");
        reply_free(&r);
        req(&r, "DELETE", "/instances", tok, "{'confirm': true, 'namespace': '%s'}", ns1);
        check_error(&r, 401, "you cannot delete other namespaces");
        reply_free(&r);

        req(&r, "DELETE", "/instances", tok, "{'confirm': true}");
        list = check_json(&r, 200);
        reply_free(&r);
        assert_int_equal(json_object_array_length(list), 2);
        for (size_t i = 0; i < 2; i++) {
                const char *u = json_object_get_string(json_object_array_get_idx(list, i));
                assert_true(strcmp(u, placed) == 0 || strcmp(u, unplaced) == 0);
        }
        /* Never placed: finished at once.  Placed: its node got the intent.  Others: untouched. */
        assert_int_equal(sf_store_get(ctx.store, "instance", unplaced, &got, NULL), 0);
        assert_string_equal(jstr(got, "state"), "deleted");
        json_object_put(got);
        got = NULL;
        {
                _cleanup_reply_ redisReply *k =
                        sf_store_cmd(ctx.store, "KEYS sf:intent:open:*:instance:%s:instance.delete", placed);
                assert_non_null(k);
                assert_int_equal(k->elements, 1);
        }
        assert_int_equal(sf_store_get(ctx.store, "instance", other, &got, NULL), 0);
        assert_string_equal(jstr(got, "state"), "initial");
        /* Again: the deleted one is not listed. */
        req(&r, "DELETE", "/instances", sys_tok, "{'confirm': true, 'namespace': '%s'}", ns);
        json_object_put(list);
        list = check_json(&r, 200);
        reply_free(&r);
        assert_int_equal(json_object_array_length(list), 1);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(list, 0)), placed);
        sf_obj_set_state(&ctx, "instance", other, "deleted", NULL, NULL, NULL);
}

/* ---- networks ---- */

static json_object *create_network(const char *name, const char *netblock) {
        reply_t r;
        json_object *o;

        req(&r, "POST", "/networks", sys_tok, "{'netblock': '%s', 'name': '%s', 'provide_dhcp': true}", netblock,
            name);
        o = check_json(&r, 200);
        reply_free(&r);
        return o;
}

static bool list_has(json_object *list, const char *uuid) {
        for (size_t i = 0; i < json_object_array_length(list); i++)
                if (strcmp(jstr(json_object_array_get_idx(list, i), "uuid") ?: "", uuid) == 0)
                        return true;
        return false;
}

static void test_networks(void **state) {
        const char *const netkeys[] = {"uuid", "state", "metadata", "version", "name", "namespace", "netblock",
                                       "provide_dhcp", "provide_nat", "floating_gateway", "vxid", NULL};
        _cleanup_json_ json_object *o = NULL, *g = NULL, *list = NULL, *d1 = NULL, *d2 = NULL, *gone = NULL;
        char path[256], dup[64], dead[64];
        reply_t r;

        (void)state;
        req(&r, "POST", "/networks", sys_tok, "{'netblock': 'banana', 'name': 'x'}");
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "{\"error\": \"cannot parse netblock"));
        assert_non_null(strstr(r.body, "\"status\": 400}"));
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'name': 'x'}");
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "{\"error\": \"cannot parse netblock"));
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.0.0.0/30', 'name': 'x'}");
        check_error(&r, 400, "network is below minimum size of /29");
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.0.0.1/24', 'name': 'x'}");
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "{\"error\": \"cannot parse netblock"));
        reply_free(&r);
        req(&r, "POST", "/networks", sys_tok, "{'netblock': '10.0.0.0/24', 'name': 'x', 'uuid': 'y'}");
        check_error(&r, 400, "post() got an unexpected keyword argument 'passed_uuid'");
        reply_free(&r);
        req(&r, "POST", "/networks", ns1_tok, "{'netblock': '10.0.0.0/24', 'namespace': 'system'}");
        check_error(&r, 401, "only admins can create resources in a different namespace");
        reply_free(&r);

        snprintf(net_name, sizeof(net_name), "net-%s", sfx);
        o = create_network(net_name, "10.0.0.0/24");
        check_keys(o, netkeys);
        assert_true(sf_uuid_parse(jstr(o, "uuid"), NULL));
        snprintf(net_uuid, sizeof(net_uuid), "%s", jstr(o, "uuid"));
        assert_string_equal(jstr(o, "state"), "initial");
        assert_string_equal(jstr(o, "name"), net_name);
        assert_string_equal(jstr(o, "namespace"), "system");
        assert_string_equal(jstr(o, "netblock"), "10.0.0.0/24");
        assert_true(sf_json_bool(o, "provide_dhcp", false));
        assert_false(sf_json_bool(o, "provide_nat", true));
        assert_true(sf_json_int(o, "vxid", 0) > 0);
        assert_int_equal(sf_json_int(o, "version", 0), 4);
        assert_true(intent_pending("network.create", "network", net_uuid, NULL, 0));

        /* By name and by uuid: the same view. */
        snprintf(path, sizeof(path), "/networks/%s", net_name);
        req(&r, "GET", path, sys_tok, NULL);
        g = check_json(&r, 200);
        assert_string_equal(json_object_to_json_string(g), json_object_to_json_string(o));
        reply_free(&r);
        json_object_put(g);
        snprintf(path, sizeof(path), "/networks/%s", net_uuid);
        req(&r, "GET", path, sys_tok, NULL);
        g = check_json(&r, 200);
        assert_string_equal(json_object_to_json_string(g), json_object_to_json_string(o));
        reply_free(&r);
        snprintf(path, sizeof(path), "/networks/nosuch-%s", sfx);
        req(&r, "GET", path, sys_tok, NULL);
        check_error(&r, 404, "network not found");
        reply_free(&r);

        /* Another namespace's network is invisible: 404, not 403. */
        snprintf(path, sizeof(path), "/networks/%s", net_uuid);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "network not found");
        reply_free(&r);
        snprintf(path, sizeof(path), "/networks/%s", net_name);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "network not found");
        reply_free(&r);
        req(&r, "GET", "/networks", ns1_tok, NULL);
        list = check_json(&r, 200);
        assert_false(list_has(list, net_uuid));
        reply_free(&r);
        json_object_put(list);

        /* Two networks with one name: ambiguous by name. */
        snprintf(dup, sizeof(dup), "dup-%s", sfx);
        d1 = create_network(dup, "10.1.0.0/24");
        d2 = create_network(dup, "10.2.0.0/24");
        snprintf(path, sizeof(path), "/networks/%s", dup);
        req(&r, "GET", path, sys_tok, NULL);
        {
                char msg[256];
                snprintf(msg, sizeof(msg), "multiple networks have the name \"%s\" in namespace \"system\"", dup);
                check_error(&r, 400, msg);
        }
        reply_free(&r);
        /* Once one is deleted, the name is unique again (name lookup sees active ones only). */
        assert_int_equal(sf_obj_set_state(&ctx, "network", jstr(d2, "uuid"), "deleted", NULL, NULL, NULL), 0);
        req(&r, "GET", path, sys_tok, NULL);
        g = (json_object_put(g), check_json(&r, 200));
        assert_string_equal(jstr(g, "uuid"), jstr(d1, "uuid"));
        reply_free(&r);

        /* A deleted network: gone from the default list, present with all; by uuid still. */
        snprintf(dead, sizeof(dead), "dead-%s", sfx);
        gone = create_network(dead, "10.3.0.0/24");
        assert_int_equal(sf_obj_set_state(&ctx, "network", jstr(gone, "uuid"), "deleted", NULL, NULL, NULL), 0);
        req(&r, "GET", "/networks", sys_tok, NULL);
        list = check_json(&r, 200);
        assert_true(list_has(list, net_uuid));
        assert_true(list_has(list, jstr(d1, "uuid")));
        assert_false(list_has(list, jstr(gone, "uuid")));
        for (size_t i = 0; i < json_object_array_length(list); i++)
                assert_true(json_object_object_get_ex(json_object_array_get_idx(list, i), "vxlan_id", NULL));
        reply_free(&r);
        json_object_put(list);
        req(&r, "GET", "/networks", sys_tok, "{'all': true}");
        list = check_json(&r, 200);
        assert_true(list_has(list, net_uuid));
        assert_true(list_has(list, jstr(gone, "uuid")));
        reply_free(&r);
        json_object_put(list);
        list = NULL;
        req(&r, "GET", "/networks", sys_tok, "{'all': true, 'bogus': 1}");
        check_error(&r, 400, "get() got an unexpected keyword argument 'bogus'");
        reply_free(&r);
        snprintf(path, sizeof(path), "/networks/%s", jstr(gone, "uuid"));
        req(&r, "GET", path, sys_tok, NULL);
        json_object_put(g);
        g = check_json(&r, 200);
        assert_string_equal(jstr(g, "state"), "deleted");
        reply_free(&r);
        snprintf(path, sizeof(path), "/networks/%s", dead);
        req(&r, "GET", path, sys_tok, NULL);
        check_error(&r, 404, "network not found");
        reply_free(&r);
}

/* DELETE /networks: every network of one namespace; networks with interfaces are left
 * (403 {"deleted", "unable"}) unless clean_wait. */
static void test_networks_delete_all(void **state) {
        char ns[32], key[40], tok[1024], busy[SF_UUID_LEN], idle[SF_UUID_LEN], iface[SF_UUID_LEN], want[512];
        _cleanup_json_ json_object *list = NULL, *d = json_object_new_object();
        reply_t r;

        (void)state;
        snprintf(ns, sizeof(ns), "dn-%s", sfx);
        snprintf(key, sizeof(key), "dn-key-%s", sfx);
        req(&r, "POST", "/auth/namespaces", sys_tok, "{'namespace': '%s', 'key_name': 'k', 'key': '%s'}", ns, key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        get_token(ns, key, tok, sizeof(tok));
        for (int i = 0; i < 2; i++) {
                _cleanup_json_ json_object *o = NULL;
                req(&r, "POST", "/networks", tok, "{'netblock': '10.92.%d.0/24', 'name': 'dn%d'}", i, i);
                o = check_json(&r, 200);
                snprintf(i ? idle : busy, SF_UUID_LEN, "%s", jstr(o, "uuid"));
                reply_free(&r);
        }
        /* A live interface on `busy`. */
        sf_uuid_new(iface);
        json_object_object_add(d, "uuid", json_object_new_string(iface));
        json_object_object_add(d, "namespace", json_object_new_string(ns));
        json_object_object_add(d, "network_uuid", json_object_new_string(busy));
        json_object_object_add(d, "state", json_object_new_string("created"));
        json_object_object_add(d, "metadata", json_object_new_object());
        assert_int_equal(sf_obj_create(&ctx, "networkinterface", iface, d), 0);
        freeReplyObject(sf_store_cmd(ctx.store, "SADD sf:netifaces:%s %s", busy, iface));

        req(&r, "DELETE", "/networks", tok, "{}");
        check_error(&r, 400, "parameter confirm is not set true");
        reply_free(&r);
        req(&r, "DELETE", "/networks", sys_tok, "{'confirm': true}");
        check_error(&r, 400, "system user must specify parameter namespace");
        reply_free(&r);
        req(&r, "DELETE", "/networks", tok, "{'confirm': true, 'namespace': 'system'}");
        check_error(&r, 401, "you cannot delete other namespaces");
        reply_free(&r);

        req(&r, "DELETE", "/networks", tok, "{'confirm': true}");
        assert_int_equal(r.status, 403);
        snprintf(want, sizeof(want), "{\"error\": {\"deleted\": [\"%s\"], \"unable\": [\"%s\"]}, \"status\": 403}",
                 idle, busy);
        assert_string_equal(r.body, want);
        reply_free(&r);

        req(&r, "DELETE", "/networks", sys_tok, "{'confirm': true, 'namespace': '%s', 'clean_wait': true}", ns);
        list = check_json(&r, 200);
        reply_free(&r);
        assert_int_equal(json_object_array_length(list), 2);
        {
                _cleanup_reply_ redisReply *k =
                        sf_store_cmd(ctx.store, "KEYS sf:intent:open:*:network:%s:network.delete", busy);
                assert_non_null(k);
                assert_int_equal(k->elements, 1);
        }
        sf_obj_set_state(&ctx, "networkinterface", iface, "deleted", NULL, NULL, NULL);
}

/* ---- instances ---- */

#define DISK "[{'size': 8, 'base': 'http://images.example.com/sf-test.qcow2'}]"

static void test_instance_validation(void **state) {
        char vname[64], path[256], msg[512], ghost[SF_UUID_LEN];
        reply_t r;

        (void)state;
        snprintf(vname, sizeof(vname), "v-%s", sfx);
        req(&r, "POST", "/instances", sys_tok, "{'cpus': 1, 'memory': 128, 'disk': " DISK "}");
        check_error(&r, 400, "post() missing 1 required positional argument: 'name'");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'memory': 128, 'disk': " DISK "}", vname);
        check_error(&r, 400, "post() missing 1 required positional argument: 'cpus'");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'cpus': 1, 'disk': " DISK "}", vname);
        check_error(&r, 400, "post() missing 1 required positional argument: 'memory'");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': 'bad_name.x', 'cpus': 1, 'memory': 128, 'disk': " DISK "}");
        check_error(&r, 400,
                    "instance name bad_name.x is not useable as a DNS and Linux host name. It must consist of only "
                    "letters, numbers and hyphens, and be at most 63 characters long");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': []}", vname);
        check_error(&r, 400, "instance must specify at least one disk");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'cpus': 1, 'memory': 128}", vname);
        check_error(&r, 400, "instance must specify at least one disk");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': ['vda']}", vname);
        check_error(&r, 400, "disk specification should contain JSON objects");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': [{'size': 8, 'bus': 'ide'}]}", vname);
        check_error(&r, 400, "IDE disks are no longer supported");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': [{'size': 8, 'base': 'file:///etc/passwd'}]}", vname);
        check_error(&r, 400, "unsupported disk base \"file:///etc/passwd\": only http and https URLs are supported");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'secure_boot': true}", vname);
        check_error(&r, 400, "secure boot requires UEFI be enabled");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'configdrive': 'floppy'}", vname);
        check_error(&r, 400, "invalid config drive type");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'user_data': 'not base64!'}", vname);
        check_error(&r, 400, "user_data must be base64 encoded");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'metadata': {'tags': 'a'}}", vname);
        check_error(&r, 400, "value for \"tags\" key should be a JSON list");
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'sshkey': 'x'}", vname);
        check_error(&r, 400, "post() got an unexpected keyword argument 'sshkey'");
        reply_free(&r);

        /* Networks: unknown, not ready (the network is still initial), address outside. */
        sf_uuid_new(ghost);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'network': [{'network_uuid': '%s'}]}", vname,
            ghost);
        snprintf(msg, sizeof(msg), "network %s not found", ghost);
        check_error(&r, 404, msg);
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'network': [{'network_uuid': '%s'}]}", vname,
            net_name);
        snprintf(msg, sizeof(msg), "network %s is not ready (initial)", net_uuid);
        check_error(&r, 406, msg);
        reply_free(&r);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'address': '10.9.9.9'}]}",
            vname, net_uuid);
        check_error(&r, 400, "network specification requests an address outside the range of the network");
        reply_free(&r);
        /* ns1 cannot use system's network (it is not visible to it). */
        req(&r, "POST", "/instances", ns1_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'network': [{'network_uuid': '%s'}]}", vname,
            net_uuid);
        snprintf(msg, sizeof(msg), "network %s not found", net_uuid);
        check_error(&r, 404, msg);
        reply_free(&r);

        /* Nothing above created an instance record. */
        snprintf(path, sizeof(path), "/instances/%s", vname);
        req(&r, "GET", path, sys_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
}

/* Scheduling with no live hypervisor: 507 after the record exists; the instance is left in
 * error and its address is released. */
static void test_instance_no_node(void **state) {
        _cleanup_json_ json_object *o = NULL;
        char name[64], path[256];
        reply_t r;

        (void)state;
        if (other_nodes)
                skip();
        /* Our node exists but has not checked in for a while. */
        put_node(false, 100000);
        assert_int_equal(sf_obj_set_state(&ctx, "network", net_uuid, "created", NULL, NULL, NULL), 0);
        snprintf(name, sizeof(name), "nonode-%s", sfx);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'address': '10.0.0.50'}]}",
            name, net_uuid);
        check_error(&r, 507, "No nodes with metrics");
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s", name);
        req(&r, "GET", path, sys_tok, NULL);
        o = check_json(&r, 200);
        assert_string_equal(jstr(o, "state"), "error");
        assert_null(jstr(o, "node"));
        reply_free(&r);

        /* Live, but too little RAM. */
        put_node(true, 100000);
        snprintf(name, sizeof(name), "bignode-%s", sfx);
        req(&r, "POST", "/instances", sys_tok, "{'name': '%s', 'cpus': 1, 'memory': 200000, 'disk': " DISK "}", name);
        check_error(&r, 507, "No nodes with enough idle RAM");
        reply_free(&r);
}

static void test_instance_create(void **state) {
        const char *const ikeys[] = {"uuid", "state", "metadata", "version", "cpus", "disk_spec", "memory", "name",
                                     "namespace", "ssh_key", "user_data", "video", "uefi", "configdrive",
                                     "nvram_template", "secure_boot", "machine_type", "side_channels",
                                     "agent_state", "agent_start_time", "agent_system_boot_time",
                                     "error_message", "console_port", "node", "power_state", "vdi_port",
                                     "vdi_tls_port", "interfaces", "disks", NULL};
        const char *const ifkeys[] = {"uuid", "state", "metadata", "version", "network_uuid", "instance_uuid",
                                      "macaddr", "ipv4", "order", "model", "floating", NULL};
        _cleanup_json_ json_object *o = NULL, *b = NULL, *list = NULL, *g = NULL;
        json_object *ifs, *if0;
        char name2[64], path[256], subject[256], tok[80];
        sf_cidr_t cidr;
        uint32_t ip;
        reply_t r;

        (void)state;
        /* Only our node (with far more RAM than anything real, in case of leftovers). */
        put_node(true, other_nodes ? (int64_t)1 << 50 : 100000);
        assert_int_equal(sf_obj_set_state(&ctx, "network", net_uuid, "created", NULL, NULL, NULL), 0);

        snprintf(inst_name, sizeof(inst_name), "inst-%s", sfx);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK ", 'network': [{'network_uuid': '%s'}],"
            " 'ssh_key': 'ssh-ed25519 AAAA test', 'user_data': 'aGVsbG8=', 'metadata': {'tags': ['a']}}",
            inst_name, net_name);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_true(sf_uuid_parse(jstr(o, "uuid"), NULL));
        snprintf(inst_uuid, sizeof(inst_uuid), "%s", jstr(o, "uuid"));
        check_keys(o, ikeys);
        assert_string_equal(jstr(o, "state"), "initial");
        assert_string_equal(jstr(o, "name"), inst_name);
        assert_string_equal(jstr(o, "namespace"), "system");
        assert_string_equal(jstr(o, "node"), node_name);
        assert_string_equal(jstr(o, "machine_type"), "pc");
        assert_string_equal(jstr(o, "configdrive"), "openstack-disk");
        assert_string_equal(jstr(o, "user_data"), "aGVsbG8=");
        assert_string_equal(jstr(o, "power_state"), "initial");
        assert_int_equal(sf_json_int(o, "version", 0), 13);
        assert_int_equal(sf_json_int(o, "cpus", 0), 1);
        assert_int_equal(sf_json_int(o, "memory", 0), 128);
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "video"), JSON_C_TO_STRING_PLAIN),
                            "{\"model\":\"cirrus\",\"memory\":16384,\"vdi\":\"spice\"}");
        assert_string_equal(json_object_to_json_string_ext(json_object_object_get(o, "metadata"), JSON_C_TO_STRING_PLAIN),
                            "{\"tags\":[\"a\"]}");
        assert_int_equal(json_object_array_length(json_object_object_get(o, "disks")), 0);
        assert_int_equal(json_object_array_length(json_object_object_get(o, "disk_spec")), 1);
        ifs = json_object_object_get(o, "interfaces");
        assert_int_equal(json_object_array_length(ifs), 1);
        if0 = json_object_array_get_idx(ifs, 0);
        check_keys(if0, ifkeys);
        assert_string_equal(jstr(if0, "network_uuid"), net_uuid);
        assert_string_equal(jstr(if0, "instance_uuid"), inst_uuid);
        assert_int_equal(sf_json_int(if0, "order", -1), 0);
        assert_string_equal(jstr(if0, "model"), "virtio");
        assert_int_equal(strlen(jstr(if0, "macaddr")), 17);
        assert_int_equal(sf_cidr_parse("10.0.0.0/24", &cidr, NULL), 0);
        assert_int_equal(sf_ip_parse(jstr(if0, "ipv4"), &ip), 0);
        assert_true(sf_cidr_contains(&cidr, ip));
        /* Not the network, broadcast or gateway address. */
        assert_string_not_equal(jstr(if0, "ipv4"), "10.0.0.0");
        assert_string_not_equal(jstr(if0, "ipv4"), "10.0.0.255");

        /* Intents recorded in Redis before the response. */
        assert_true(intent_pending("instance.create", "instance", inst_uuid, subject, sizeof(subject)));
        sf_config_node_token(node_name, tok, sizeof(tok));
        {
                char want[256];
                snprintf(want, sizeof(want), "sf.intent.%s.compute", tok);
                assert_string_equal(subject, want);
        }
        assert_true(intent_pending("network.attach", "networkinterface", jstr(if0, "uuid"), NULL, 0));

        /* A fixed address, then the same address again: 409, and the loser is left in error. */
        snprintf(name2, sizeof(name2), "fixed-%s", sfx);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'address': '10.0.0.50'}]}",
            name2, net_uuid);
        b = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(json_object_array_get_idx(json_object_object_get(b, "interfaces"), 0), "ipv4"),
                            "10.0.0.50");
        assert_string_equal(jstr(b, "node"), node_name);
        snprintf(name2, sizeof(name2), "clash-%s", sfx);
        req(&r, "POST", "/instances", sys_tok,
            "{'name': '%s', 'cpus': 1, 'memory': 128, 'disk': " DISK
            ", 'network': [{'network_uuid': '%s', 'address': '10.0.0.50'}]}",
            name2, net_uuid);
        check_error(&r, 409, "address 10.0.0.50 in use");
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s", name2);
        req(&r, "GET", path, sys_tok, NULL);
        g = check_json(&r, 200);
        assert_string_equal(jstr(g, "state"), "error");
        reply_free(&r);

        /* Listing and GET by name / uuid. */
        req(&r, "GET", "/instances", sys_tok, NULL);
        list = check_json(&r, 200);
        assert_true(list_has(list, inst_uuid));
        assert_true(list_has(list, jstr(b, "uuid")));
        reply_free(&r);
        json_object_put(g);
        snprintf(path, sizeof(path), "/instances/%s", inst_name);
        req(&r, "GET", path, sys_tok, NULL);
        g = check_json(&r, 200);
        assert_string_equal(jstr(g, "uuid"), inst_uuid);
        check_keys(g, ikeys);
        reply_free(&r);
        json_object_put(g);
        snprintf(path, sizeof(path), "/instances/%s", inst_uuid);
        req(&r, "GET", path, sys_tok, NULL);
        g = check_json(&r, 200);
        assert_string_equal(jstr(g, "name"), inst_name);
        reply_free(&r);
        json_object_put(g);
        g = NULL;
        snprintf(path, sizeof(path), "/instances/%s/interfaces", inst_uuid);
        req(&r, "GET", path, sys_tok, NULL);
        g = check_json(&r, 200);
        assert_int_equal(json_object_array_length(g), 1);
        reply_free(&r);
        snprintf(path, sizeof(path), "/interfaces/%s", jstr(if0, "uuid"));
        req(&r, "GET", path, sys_tok, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "interface not found");
        reply_free(&r);

        /* Visibility from ns1: 404, never 403, and not listed. */
        snprintf(path, sizeof(path), "/instances/%s", inst_uuid);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s", inst_name);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s", inst_uuid);
        req(&r, "DELETE", path, ns1_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
        json_object_put(list);
        req(&r, "GET", "/instances", ns1_tok, "{'all': true}");
        list = check_json(&r, 200);
        assert_false(list_has(list, inst_uuid));
        reply_free(&r);
}

static void test_instance_events(void **state) {
        const char *const evkeys[] = {"type", "timestamp", "fqdn", "duration", "message", "extra"};
        _cleanup_json_ json_object *all = NULL, *audit = NULL, *one = NULL;
        char path[256];
        bool created = false;
        size_t n;
        reply_t r;

        (void)state;
        snprintf(path, sizeof(path), "/instances/%s/events", inst_uuid);
        req(&r, "GET", path, sys_tok, NULL);
        all = check_json(&r, 200);
        reply_free(&r);
        assert_true(json_object_is_type(all, json_type_array));
        n = json_object_array_length(all);
        assert_true(n >= 3);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(all, i), *ts;
                assert_int_equal(json_object_object_length(e), SF_ARRAY_SIZE(evkeys));
                for (size_t k = 0; k < SF_ARRAY_SIZE(evkeys); k++)
                        if (!json_object_object_get_ex(e, evkeys[k], NULL))
                                fail_msg("event %zu lacks %s: %s", i, evkeys[k], json_object_to_json_string(e));
                ts = json_object_object_get(e, "timestamp");
                assert_true(json_object_is_type(ts, json_type_double) || json_object_is_type(ts, json_type_int));
                if (i > 0) /* newest first, timestamps unique per object */
                        assert_true(json_object_get_double(ts) <
                                    json_object_get_double(
                                            json_object_object_get(json_object_array_get_idx(all, i - 1), "timestamp")));
                created |= strcmp(jstr(e, "message") ?: "", "db record created") == 0;
        }
        assert_true(created);
        /* The oldest event is the record's creation. */
        assert_string_equal(jstr(json_object_array_get_idx(all, n - 1), "message"), "db record created");

        req(&r, "GET", path, sys_tok, "{'event_type': 'audit'}");
        audit = check_json(&r, 200);
        reply_free(&r);
        assert_true(json_object_array_length(audit) >= 2); /* db record created, schedule final candidates */
        assert_true(json_object_array_length(audit) < n);   /* there are mutate events too */
        for (size_t i = 0; i < json_object_array_length(audit); i++)
                assert_string_equal(jstr(json_object_array_get_idx(audit, i), "type"), "audit");

        req(&r, "GET", path, sys_tok, "{'limit': 1}");
        one = check_json(&r, 200);
        reply_free(&r);
        assert_int_equal(json_object_array_length(one), 1);
        assert_string_equal(json_object_to_json_string(json_object_array_get_idx(one, 0)),
                            json_object_to_json_string(json_object_array_get_idx(all, 0)));

        req(&r, "GET", path, sys_tok, "{'event_type': 'nonsense'}");
        assert_int_equal(r.status >= 400, 1);
        reply_free(&r);
        snprintf(path, sizeof(path), "/instances/%s/events", inst_uuid);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
}

static void test_instance_consoledata(void **state) {
        char path[256], dir[512], file[600];
        reply_t r;

        (void)state;
        snprintf(path, sizeof(path), "/instances/%s/consoledata", inst_uuid);
        req(&r, "GET", path, sys_tok, "{'length': 'x'}");
        check_error(&r, 400, "length is not an integer");
        reply_free(&r);
        /* No console file yet: empty, with upstream's mimetype typo. */
        req(&r, "GET", path, sys_tok, NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, 0);
        assert_string_equal(r.ctype, "applicaton/octet-stream");
        reply_free(&r);

        /* With a console log: the last `length` bytes, -1 = all. */
        snprintf(dir, sizeof(dir), "%s/instances/%s", storage, inst_uuid);
        assert_int_equal(sf_mkdir_p(dir, 0755), 0);
        snprintf(file, sizeof(file), "%s/console.log", dir);
        assert_int_equal(sf_file_write_atomic(file, "boot ok\nlogin:", 14, 0644), 0);
        req(&r, "GET", path, sys_tok, "{'length': 6}");
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, "applicaton/octet-stream");
        assert_string_equal(r.body, "login:");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, "{'length': -1}");
        assert_string_equal(r.body, "boot ok\nlogin:");
        reply_free(&r);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
}

static void test_instance_delete(void **state) {
        _cleanup_json_ json_object *o = NULL;
        char path[256];
        reply_t r;

        (void)state;
        snprintf(path, sizeof(path), "/instances/%s", inst_uuid);
        req(&r, "DELETE", path, sys_tok, "{'namespace': '%s'}", ns1);
        check_error(&r, 404, "instance not in namespace");
        reply_free(&r);
        assert_false(intent_pending("instance.delete", "instance", inst_uuid, NULL, 0));
        req(&r, "DELETE", path, sys_tok, NULL);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(o, "uuid"), inst_uuid);
        /* Asynchronous: the compute worker (not running here) finishes it. */
        assert_string_equal(jstr(o, "state"), "initial");
        assert_true(intent_pending("instance.delete", "instance", inst_uuid, NULL, 0));
        req(&r, "DELETE", "/instances/nosuch-instance-name", sys_tok, NULL);
        check_error(&r, 404, "instance not found");
        reply_free(&r);
}

static void test_nodes(void **state) {
        _cleanup_json_ json_object *list = NULL, *one = NULL;
        static const char *const keys[] = {"name", "ip", "state", "lastseen", "version", "release",
                                           "is_etcd_master", "is_hypervisor", "is_network_node",
                                           "is_eventlog_node", "is_cluster_maintainer", NULL};
        char path[128];
        bool found = false;
        reply_t r;

        (void)state;
        put_node(true, 100000);
        req(&r, "GET", "/nodes", sys_tok, NULL);
        list = check_json(&r, 200);
        reply_free(&r);
        for (size_t i = 0; i < json_object_array_length(list); i++)
                found |= strcmp(jstr(json_object_array_get_idx(list, i), "name") ?: "", node_name) == 0;
        assert_true(found);
        snprintf(path, sizeof(path), "/nodes/%s", node_name);
        req(&r, "GET", path, sys_tok, NULL);
        one = check_json(&r, 200);
        reply_free(&r);
        check_keys(one, keys);
        assert_string_equal(jstr(one, "state"), "created");
        assert_string_equal(jstr(one, "version"), "3");
        /* Admin only; an unknown node is a 404 (not v0.7.2's 200 of nulls). */
        req(&r, "GET", "/nodes", ns1_tok, NULL);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);
        req(&r, "GET", "/nodes/no-such-node", sys_tok, NULL);
        check_error(&r, 404, "node not found");
        reply_free(&r);

        /* Node metadata (capability node-metadata): system only (the heartbeat merges its
         * fields into the record, so metadata stays). */
        snprintf(path, sizeof(path), "/nodes/%s/metadata", node_name);
        req(&r, "POST", path, sys_tok, "{'key': 'rack', 'value': 'r7'}");
        assert_int_equal(r.status, 200);
        reply_free(&r);
        req(&r, "POST", path, ns1_tok, "{'key': 'rack', 'value': 'r8'}");
        check_error(&r, 401, "unauthorized");
        reply_free(&r);
        req(&r, "POST", path, sys_tok, "{'key': 'rack', 'value': ''}");
        check_error(&r, 400, "no value specified");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"rack\": \"r7\"}\n");
        reply_free(&r);
        snprintf(path, sizeof(path), "/nodes/%s/metadata/rack", node_name);
        req(&r, "DELETE", path, sys_tok, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        req(&r, "GET", "/nodes/no-such-node/metadata", sys_tok, NULL);
        check_error(&r, 404, "node not found");
        reply_free(&r);
        snprintf(path, sizeof(path), "/nodes/%s/events", node_name);
        req(&r, "GET", path, sys_tok, NULL);
        json_object_put(check_json(&r, 200));
        reply_free(&r);
        req(&r, "GET", path, ns1_tok, NULL);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);

        /* GET /admin/locks shows a held lock with its holder and fencing token. */
        {
                char name[64], key[80];
                sf_lock_t *lock = NULL;
                _cleanup_json_ json_object *locks = NULL;
                json_object *l;

                snprintf(name, sizeof(name), "test/admin-%s", sfx);
                snprintf(key, sizeof(key), "sf:lock:%s", name);
                assert_int_equal(sf_lock_acquire_worker(ctx.store, name, node_name, 30000, 0, &lock), 0);
                req(&r, "GET", "/admin/locks", sys_tok, NULL);
                locks = check_json(&r, 200);
                reply_free(&r);
                assert_true(json_object_object_get_ex(locks, key, &l));
                assert_string_equal(jstr(l, "node"), node_name);
                assert_int_equal(sf_json_int(l, "pid", 0), getpid());
                assert_string_equal(jstr(l, "operation"), name);
                assert_int_equal(sf_json_int(l, "fence_token", 0), (int64_t)sf_lock_token(lock));
                assert_true(sf_json_int(l, "ttl_ms", 0) > 0);
                req(&r, "GET", "/admin/locks", ns1_tok, NULL);
                check_error(&r, 401, "unauthorized");
                reply_free(&r);
                sf_lock_release(ctx.store, lock);
                json_object_put(locks);
                req(&r, "GET", "/admin/locks", sys_tok, NULL);
                locks = check_json(&r, 200);
                reply_free(&r);
                assert_false(json_object_object_get_ex(locks, key, NULL));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_root),
                cmocka_unit_test(test_wire),
                cmocka_unit_test(test_auth_post),
                cmocka_unit_test(test_tokens),
                cmocka_unit_test(test_namespaces),
                cmocka_unit_test(test_namespace_trusts),
                cmocka_unit_test(test_namespace_delete),
                cmocka_unit_test(test_instances_delete_all),
                cmocka_unit_test(test_networks),
                cmocka_unit_test(test_networks_delete_all),
                cmocka_unit_test(test_instance_validation),
                cmocka_unit_test(test_instance_no_node),
                cmocka_unit_test(test_instance_create),
                cmocka_unit_test(test_instance_events),
                cmocka_unit_test(test_instance_consoledata),
                cmocka_unit_test(test_instance_delete),
                cmocka_unit_test(test_nodes),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
