/* Integration: who sees what (api.md §1.5, §2, §3), over every route sf-api serves.
 *
 * The isolation matrix is generated from the route table: every entry of sf_api_routes[]
 * must have a case below (keyed "METHOD pattern"), and every case must name a served
 * route, or the test fails.  Namespaces A, B, C and D; A trusts C and D.  A owns a
 * network, a second network, an instance on it (with its interface) and keys; a fake
 * hypervisor node holds the instance.  Then, for every route:
 *   - no token: 401 (unless the route is public);
 *   - B: 404 for A's objects (401 `unauthorized` on system-only routes), lists without
 *     A's objects, no change to anything of A's (every record's revision is compared);
 *   - C (trusted by A): what api.md §3.4 gives a trusted namespace: A's namespace-level
 *     routes and creating instances in A; never A's instances, networks or interfaces;
 *   - system: everything.
 * Also here: the auth failures (expired, tampered, alg none, deleted/rotated key, deleted
 * namespace), reserved key names, metadata rules on every object type, events (types,
 * limit, retention, audit mirrored to the namespace), node delete, and GET /'s
 * capabilities.  sf-api runs in-process against real Redis and NATS (tests/run.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <jwt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "ctx.h"
#include "event.h"
#include "http.h"
#include "intent.h"
#include "lock.h"
#include "object.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;
static sf_http_server_t *srv;
static int port;
static char storage[64];
static char sfx[9];

#include "apiclient.h"

/* ---- the world ---- */

typedef enum { WHO_NONE, WHO_A, WHO_B, WHO_C, WHO_SYSTEM, WHO_N } who_t;
static const char *const who_name[WHO_N] = {"nobody", "A", "B", "C", "system"};

static char ns_a[32], ns_b[32], ns_c[32], ns_d[32];
static char key_a[40], key_b[40], key_c[40], key_sys[40];
static char tok[WHO_N][1024];
static char node_name[64];
static char node2[64]; /* test_node_delete's own node */
static char net_uuid[SF_UUID_LEN], net_name[64], net2_uuid[SF_UUID_LEN];
static char inst_uuid[SF_UUID_LEN], inst_name[64], iface_uuid[SF_UUID_LEN];
static char blob_uuid[SF_UUID_LEN]; /* a blob of system's, with its file */

#define DISK "[{'size': 8, 'base': 'http://images.example.com/sf-iso.qcow2'}]"

static const char *jstr(json_object *o, const char *k) { return sf_json_str(o, k); }

static void get_token(const char *ns, const char *key, char *out, size_t outlen) {
        _cleanup_json_ json_object *o = NULL;
        reply_t r;

        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        o = check_json(&r, 200);
        snprintf(out, outlen, "%s", jstr(o, "access_token"));
        reply_free(&r);
}

static void make_ns(const char *ns, const char *key) {
        reply_t r;

        req(&r, "POST", "/auth/namespaces", tok[WHO_SYSTEM], "{'namespace': '%s', 'key_name': 'k', 'key': '%s'}", ns,
            key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
}

static void put_node(void) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *m = json_object_new_object();

        json_object_object_add(doc, "uuid", json_object_new_string(node_name));
        json_object_object_add(doc, "name", json_object_new_string(node_name));
        json_object_object_add(doc, "state", json_object_new_string("created"));
        json_object_object_add(doc, "is_hypervisor", json_object_new_boolean(true));
        json_object_object_add(doc, "lastseen", json_object_new_int64((int64_t)sf_now()));
        json_object_object_add(doc, "metadata", json_object_new_object());
        /* Far more RAM than any other node a shared Redis may hold: placements come here. */
        json_object_object_add(m, "memory_available", json_object_new_int64((int64_t)1 << 50));
        /* What a heartbeat records (api/scheduler.c filters on it); the lowest load of any
         * node a shared Redis may hold, so placements come here. */
        json_object_object_add(m, "cpu_max", json_object_new_int64(4));
        json_object_object_add(m, "cpu_max_per_instance", json_object_new_int64(16));
        json_object_object_add(m, "memory_max", json_object_new_int64((int64_t)1 << 50));
        json_object_object_add(m, "disk_free_instances", json_object_new_int64((int64_t)1 << 50));
        json_object_object_add(m, "cpu_load_1", json_object_new_double(-1));
        json_object_object_add(doc, "metrics", json_object_get(m));
        sf_store_purge(ctx.store, "node", node_name);
        assert_int_equal(sf_obj_create(&ctx, "node", node_name, doc), 0);
}

static int setup(void **state) {
        char u[SF_UUID_LEN], secret[33], nodeenv[64];

        (void)state;
        sf_uuid_new(u);
        snprintf(sfx, sizeof(sfx), "%.8s", u);
        sf_random_alnum(secret, 32);
        snprintf(nodeenv, sizeof(nodeenv), "isotest-%s", sfx);
        setenv("SF_AUTH_SECRET", secret, 1);
        setenv("SF_NODE", nodeenv, 1);
        snprintf(storage, sizeof(storage), "/tmp/sf-isotest.XXXXXX");
        if (!mkdtemp(storage))
                return -1;
        setenv("SF_STORAGE", storage, 1);
        if (sf_ctx_open(&ctx, true, 5) < 0)
                return -1;
        sf_auth_set_bcrypt_cost(4);
        sf_random_alnum(key_sys, 32);
        if (sf_api_init(&ctx.cfg, ctx.bus) < 0 || sf_api_ns_ensure(&ctx, "system") < 0 ||
            sf_api_ns_set_key(&ctx, "system", "iso", key_sys) < 0)
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
        /* Our fake hypervisors must not take placements of later tests. */
        if (ctx.store && node_name[0])
                sf_store_purge(ctx.store, "node", node_name);
        if (ctx.store && node2[0])
                sf_store_purge(ctx.store, "node", node2);
        if (ctx.store && blob_uuid[0])
                sf_store_purge(ctx.store, "blob", blob_uuid);
        sf_ctx_close(&ctx);
        if (storage[0])
                sf_rm_rf(storage);
        return 0;
}

/* A, B, C, D; A trusts C and D; A's network (created), second network, instance with an
 * interface on the fake node, and the keys the key routes act on. */
static void test_world(void **state) {
        _cleanup_json_ json_object *o = NULL;
        char path[160];
        reply_t r;

        (void)state;
        get_token("system", key_sys, tok[WHO_SYSTEM], sizeof(tok[WHO_SYSTEM]));
        snprintf(ns_a, sizeof(ns_a), "iso-a-%s", sfx);
        snprintf(ns_b, sizeof(ns_b), "iso-b-%s", sfx);
        snprintf(ns_c, sizeof(ns_c), "iso-c-%s", sfx);
        snprintf(ns_d, sizeof(ns_d), "iso-d-%s", sfx);
        snprintf(key_a, sizeof(key_a), "key-a-%s", sfx);
        snprintf(key_b, sizeof(key_b), "key-b-%s", sfx);
        snprintf(key_c, sizeof(key_c), "key-c-%s", sfx);
        make_ns(ns_a, key_a);
        make_ns(ns_b, key_b);
        make_ns(ns_c, key_c);
        make_ns(ns_d, "unused-key");
        get_token(ns_a, key_a, tok[WHO_A], sizeof(tok[WHO_A]));
        get_token(ns_b, key_b, tok[WHO_B], sizeof(tok[WHO_B]));
        get_token(ns_c, key_c, tok[WHO_C], sizeof(tok[WHO_C]));
        snprintf(path, sizeof(path), "/auth/namespaces/%s/trust", ns_a);
        req(&r, "POST", path, tok[WHO_A], "{'external_namespace': '%s'}", ns_c);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        req(&r, "POST", path, tok[WHO_A], "{'external_namespace': '%s'}", ns_d);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        /* One victim key per caller, so each caller's key delete has its own target. */
        snprintf(path, sizeof(path), "/auth/namespaces/%s/keys", ns_a);
        for (int w = WHO_NONE; w < WHO_N; w++) {
                req(&r, "POST", path, tok[WHO_A], "{'key_name': 'victim-%s', 'key': 'v-%s'}", who_name[w], sfx);
                assert_int_equal(r.status, 200);
                reply_free(&r);
        }

        snprintf(node_name, sizeof(node_name), "isonode-%s", sfx);
        put_node();

        snprintf(net_name, sizeof(net_name), "isonet-%s", sfx);
        req(&r, "POST", "/networks", tok[WHO_A], "{'netblock': '10.77.0.0/24', 'name': '%s'}", net_name);
        o = check_json(&r, 200);
        snprintf(net_uuid, sizeof(net_uuid), "%s", jstr(o, "uuid"));
        reply_free(&r);
        json_object_put(o);
        req(&r, "POST", "/networks", tok[WHO_A], "{'netblock': '10.78.0.0/24', 'name': 'isonet2-%s'}", sfx);
        o = check_json(&r, 200);
        snprintf(net2_uuid, sizeof(net2_uuid), "%s", jstr(o, "uuid"));
        reply_free(&r);
        json_object_put(o);
        assert_int_equal(sf_obj_set_state(&ctx, "network", net_uuid, "created", NULL, NULL, NULL), 0);

        snprintf(inst_name, sizeof(inst_name), "isovm-%s", sfx);
        req(&r, "POST", "/instances", tok[WHO_A],
            "{'name': '%s', 'cpus': 1, 'memory': 64, 'disk': " DISK ", 'network': [{'network_uuid': '%s'}],"
            " 'metadata': {'owner': 'a'}, 'placed_on': '%s'}",
            inst_name, net_uuid, node_name);
        o = check_json(&r, 200);
        reply_free(&r);
        snprintf(inst_uuid, sizeof(inst_uuid), "%s", jstr(o, "uuid"));
        assert_string_equal(jstr(o, "node"), node_name);
        snprintf(iface_uuid, sizeof(iface_uuid), "%s",
                 jstr(json_object_array_get_idx(json_object_object_get(o, "interfaces"), 0), "uuid"));
        assert_true(sf_uuid_parse(iface_uuid, NULL));

        /* A blob as a screenshot leaves it: a record of system's and its file. */
        {
                _cleanup_json_ json_object *b = json_object_new_object();
                char dir[128], file[256];

                sf_uuid_new(blob_uuid);
                snprintf(dir, sizeof(dir), "%s/blobs/%.2s", storage, blob_uuid);
                snprintf(file, sizeof(file), "%s/%s", dir, blob_uuid);
                assert_int_equal(sf_mkdir_p(dir, 0755), 0);
                assert_int_equal(sf_file_write_atomic(file, "P6\n1 1\n255\n\0\0\0", 14, 0644), 0);
                json_object_object_add(b, "uuid", json_object_new_string(blob_uuid));
                json_object_object_add(b, "state", json_object_new_string("created"));
                json_object_object_add(b, "namespace", json_object_new_string("system"));
                json_object_object_add(b, "size", json_object_new_int(14));
                assert_int_equal(sf_obj_create(&ctx, "blob", blob_uuid, b), 0);
        }
}

/* ---- the matrix ---- */

typedef enum {
        ISO_PUBLIC,  /* no token needed: everybody gets sys_status */
        ISO_OBJECT,  /* the path names A or one of A's objects */
        ISO_SYSTEM,  /* system only: everybody else 401 unauthorized */
        ISO_LIST,    /* a collection: A's `listed` item only for callers allowed to see it */
        ISO_FOREIGN, /* the body names A's namespace (create in it, delete all of it) */
        ISO_STREAM,  /* a live event stream: A's events reach only those allowed to see them */
} iso_kind_t;

typedef struct iso_case {
        const char *route; /* "METHOD pattern" exactly as in sf_api_routes[] */
        iso_kind_t kind;
        const char *path;  /* placeholders: {A} {B} {D} {net} {net2} {inst} {iface} {node} {who} {blob} */
        const char *body;  /* NULL = no body; same placeholders */
        long denied_status; /* what B gets (404, or 401 for FOREIGN), with denied_msg */
        const char *denied_msg;
        bool trusted;      /* C, trusted by A, gets what system gets (api.md §3.4) */
        long sys_status;   /* what system gets (and A, and trusted C) */
        const char *sys_msg; /* NULL: any body; else the error envelope's message */
        const char *listed; /* LIST: placeholder of the item A owns, e.g. "{inst}" */
} iso_case_t;

#define NF(what) 404, what " not found"
#define UNAUTH 401, "unauthorized"

/* Order matters only for system's turn, which comes last: destructive cases at the end.
 * A live stream gets a case of its own kind, checked by check_stream (subscribe, let
 * system change A's instance, see whether A's events arrive), e.g.
 *     {"GET /events/stream", ISO_STREAM, "/events/stream", NULL, 0, NULL, false, 200, NULL, NULL}, */
static const iso_case_t cases[] = {
        {"GET /", ISO_PUBLIC, "/", NULL, 0, NULL, false, 200, NULL, NULL},
        {"GET /openapi.json", ISO_PUBLIC, "/openapi.json", NULL, 0, NULL, false, 200, NULL, NULL},
        /* Nobody gets into A without A's key. */
        {"POST /auth", ISO_PUBLIC, "/auth", "{'namespace': '{A}', 'key': 'not-the-key'}", 0, NULL, false, 401,
         "unauthorized", NULL},
        {"GET /auth/namespaces", ISO_LIST, "/auth/namespaces", NULL, 0, NULL, true, 200, NULL, "{A}"},
        {"POST /auth/namespaces", ISO_SYSTEM, "/auth/namespaces", "{'namespace': '{A}'}", UNAUTH, false, 200, NULL,
         NULL},
        {"GET /auth/namespaces/{}", ISO_OBJECT, "/auth/namespaces/{A}", NULL, NF("namespace"), true, 200, NULL, NULL},
        {"GET /auth/namespaces/{}/keys", ISO_OBJECT, "/auth/namespaces/{A}/keys", NULL, NF("namespace"), true, 200,
         NULL, NULL},
        {"POST /auth/namespaces/{}/keys", ISO_OBJECT, "/auth/namespaces/{A}/keys",
         "{'key_name': 'victim-{who}', 'key': 'rotated'}", NF("namespace"), true, 200, NULL, NULL},
        {"PUT /auth/namespaces/{}/keys", ISO_OBJECT, "/auth/namespaces/{A}/keys",
         "{'key_name': 'victim-{who}', 'key': 'rotated-again'}", NF("namespace"), true, 200, NULL, NULL},
        {"DELETE /auth/namespaces/{}/keys/{}", ISO_OBJECT, "/auth/namespaces/{A}/keys/victim-{who}", NULL,
         NF("namespace"), true, 200, NULL, NULL},
        {"POST /auth/namespaces/{}/trust", ISO_OBJECT, "/auth/namespaces/{A}/trust", "{'external_namespace': '{D}'}",
         NF("namespace"), true, 200, NULL, NULL},
        {"DELETE /auth/namespaces/{}/trust/{}", ISO_OBJECT, "/auth/namespaces/{A}/trust/{D}", NULL, NF("namespace"),
         true, 200, NULL, NULL},
        {"GET /auth/namespaces/{}/events", ISO_OBJECT, "/auth/namespaces/{A}/events", NULL, NF("namespace"), true, 200,
         NULL, NULL},
        {"GET /auth/namespaces/{}/metadata", ISO_OBJECT, "/auth/namespaces/{A}/metadata", NULL, NF("namespace"), true,
         200, NULL, NULL},
        {"POST /auth/namespaces/{}/metadata", ISO_OBJECT, "/auth/namespaces/{A}/metadata",
         "{'key': 'probe', 'value': 'x'}", NF("namespace"), true, 200, NULL, NULL},
        {"PUT /auth/namespaces/{}/metadata/{}", ISO_OBJECT, "/auth/namespaces/{A}/metadata/probe", "{'value': 'y'}",
         NF("namespace"), true, 200, NULL, NULL},
        {"DELETE /auth/namespaces/{}/metadata/{}", ISO_OBJECT, "/auth/namespaces/{A}/metadata/probe", NULL,
         NF("namespace"), true, 200, NULL, NULL},
        /* system reaches it, and is refused only for what A still has. */
        {"DELETE /auth/namespaces/{}", ISO_SYSTEM, "/auth/namespaces/{A}", NULL, UNAUTH, false, 400,
         "you cannot delete a namespace with instances", NULL},

        {"GET /networks", ISO_LIST, "/networks", NULL, 0, NULL, false, 200, NULL, "{net}"},
        {"POST /networks", ISO_FOREIGN, "/networks", "{'netblock': '10.79.0.0/24', 'namespace': '{A}'}", 401,
         "only admins can create resources in a different namespace", false, 200, NULL, NULL},
        {"GET /networks/{}", ISO_OBJECT, "/networks/{net}", NULL, NF("network"), false, 200, NULL, NULL},
        {"GET /networks/{}/events", ISO_OBJECT, "/networks/{net}/events", NULL, NF("network"), false, 200, NULL, NULL},
        {"GET /networks/{}/interfaces", ISO_OBJECT, "/networks/{net}/interfaces", NULL, NF("network"), false, 200,
         NULL, NULL},
        {"GET /networks/{}/metadata", ISO_OBJECT, "/networks/{net}/metadata", NULL, NF("network"), false, 200, NULL,
         NULL},
        {"POST /networks/{}/metadata", ISO_OBJECT, "/networks/{net}/metadata", "{'key': 'probe', 'value': 'x'}",
         NF("network"), false, 200, NULL, NULL},
        {"PUT /networks/{}/metadata/{}", ISO_OBJECT, "/networks/{net}/metadata/probe", "{'value': 'y'}", NF("network"),
         false, 200, NULL, NULL},
        {"DELETE /networks/{}/metadata/{}", ISO_OBJECT, "/networks/{net}/metadata/probe", NULL, NF("network"), false,
         200, NULL, NULL},

        {"GET /instances", ISO_LIST, "/instances", NULL, 0, NULL, false, 200, NULL, "{inst}"},
        /* api.md §3.4: a namespace trusted by A may create instances in A. */
        {"POST /instances", ISO_FOREIGN, "/instances",
         "{'name': 'iso-{who}', 'cpus': 1, 'memory': 64, 'disk': " DISK ", 'namespace': '{A}', 'placed_on': '{node}'}",
         NF("namespace"), true, 200, NULL, NULL},
        {"GET /instances/{}", ISO_OBJECT, "/instances/{inst}", NULL, NF("instance"), false, 200, NULL, NULL},
        {"GET /instances/{}/events", ISO_OBJECT, "/instances/{inst}/events", NULL, NF("instance"), false, 200, NULL,
         NULL},
        {"GET /instances/{}/interfaces", ISO_OBJECT, "/instances/{inst}/interfaces", NULL, NF("instance"), false, 200,
         NULL, NULL},
        {"GET /instances/{}/consoledata", ISO_OBJECT, "/instances/{inst}/consoledata", NULL, NF("instance"), false,
         200, NULL, NULL},
        {"GET /instances/{}/metadata", ISO_OBJECT, "/instances/{inst}/metadata", NULL, NF("instance"), false, 200,
         NULL, NULL},
        /* Power and consoles (api/power.c): A's instance never leaves `initial` here (no
         * sf-compute), so whoever may reach it gets upstream's 406 and nothing is queued. */
        {"DELETE /instances/{}/consoledata", ISO_OBJECT, "/instances/{inst}/consoledata", NULL, NF("instance"), false,
         406, NULL, NULL},
        {"POST /instances/{}/rebootsoft", ISO_OBJECT, "/instances/{inst}/rebootsoft", NULL, NF("instance"), false, 406,
         NULL, NULL},
        {"POST /instances/{}/reboothard", ISO_OBJECT, "/instances/{inst}/reboothard", NULL, NF("instance"), false, 406,
         NULL, NULL},
        {"POST /instances/{}/poweroff", ISO_OBJECT, "/instances/{inst}/poweroff", NULL, NF("instance"), false, 406,
         NULL, NULL},
        {"POST /instances/{}/poweron", ISO_OBJECT, "/instances/{inst}/poweron", NULL, NF("instance"), false, 406, NULL,
         NULL},
        {"POST /instances/{}/pause", ISO_OBJECT, "/instances/{inst}/pause", NULL, NF("instance"), false, 406, NULL,
         NULL},
        {"POST /instances/{}/unpause", ISO_OBJECT, "/instances/{inst}/unpause", NULL, NF("instance"), false, 406, NULL,
         NULL},
        {"GET /instances/{}/screenshot", ISO_OBJECT, "/instances/{inst}/screenshot", NULL, NF("instance"), false, 406,
         NULL, NULL},
        /* No VDI port before the domain is built. */
        {"GET /instances/{}/vdiconsolehelper", ISO_OBJECT, "/instances/{inst}/vdiconsolehelper", NULL, NF("instance"),
         false, 406, NULL, NULL},
        {"POST /instances/{}/metadata", ISO_OBJECT, "/instances/{inst}/metadata", "{'key': 'probe', 'value': 'x'}",
         NF("instance"), false, 200, NULL, NULL},
        {"PUT /instances/{}/metadata/{}", ISO_OBJECT, "/instances/{inst}/metadata/probe", "{'value': 'y'}",
         NF("instance"), false, 200, NULL, NULL},
        {"DELETE /instances/{}/metadata/{}", ISO_OBJECT, "/instances/{inst}/metadata/probe", NULL, NF("instance"),
         false, 200, NULL, NULL},

        {"GET /interfaces/{}", ISO_OBJECT, "/interfaces/{iface}", NULL, NF("interface"), false, 200, NULL, NULL},
        {"GET /interfaces/{}/events", ISO_OBJECT, "/interfaces/{iface}/events", NULL, NF("interface"), false, 200,
         NULL, NULL},
        {"GET /interfaces/{}/metadata", ISO_OBJECT, "/interfaces/{iface}/metadata", NULL, NF("interface"), false, 200,
         NULL, NULL},
        {"POST /interfaces/{}/metadata", ISO_OBJECT, "/interfaces/{iface}/metadata", "{'key': 'probe', 'value': 'x'}",
         NF("interface"), false, 200, NULL, NULL},
        {"PUT /interfaces/{}/metadata/{}", ISO_OBJECT, "/interfaces/{iface}/metadata/probe", "{'value': 'y'}",
         NF("interface"), false, 200, NULL, NULL},
        {"DELETE /interfaces/{}/metadata/{}", ISO_OBJECT, "/interfaces/{iface}/metadata/probe", NULL,
         NF("interface"), false, 200, NULL, NULL},

        {"GET /nodes", ISO_SYSTEM, "/nodes", NULL, UNAUTH, false, 200, NULL, NULL},
        {"GET /nodes/{}", ISO_SYSTEM, "/nodes/{node}", NULL, UNAUTH, false, 200, NULL, NULL},
        {"GET /nodes/{}/events", ISO_SYSTEM, "/nodes/{node}/events", NULL, UNAUTH, false, 200, NULL, NULL},
        {"GET /nodes/{}/metadata", ISO_SYSTEM, "/nodes/{node}/metadata", NULL, UNAUTH, false, 200, NULL, NULL},
        {"POST /nodes/{}/metadata", ISO_SYSTEM, "/nodes/{node}/metadata", "{'key': 'probe', 'value': 'x'}", UNAUTH,
         false, 200, NULL, NULL},
        {"PUT /nodes/{}/metadata/{}", ISO_SYSTEM, "/nodes/{node}/metadata/probe", "{'value': 'y'}", UNAUTH, false, 200,
         NULL, NULL},
        {"DELETE /nodes/{}/metadata/{}", ISO_SYSTEM, "/nodes/{node}/metadata/probe", NULL, UNAUTH, false, 200, NULL,
         NULL},
        {"GET /admin/locks", ISO_SYSTEM, "/admin/locks", NULL, UNAUTH, false, 200, NULL, NULL},
        /* Any token (upstream: the cluster's CA is no secret): B gets it as system does. */
        {"GET /admin/cacert", ISO_SYSTEM, "/admin/cacert", NULL, 200, NULL, false, 200, NULL, NULL},
        /* Blobs: any token reads any blob (api.md §2.8: knowing the uuid implies access). */
        {"GET /blobs/{}", ISO_SYSTEM, "/blobs/{blob}", NULL, 200, NULL, false, 200, NULL, NULL},
        {"GET /blobs/{}/data", ISO_SYSTEM, "/blobs/{blob}/data", NULL, 200, NULL, false, 200, NULL, NULL},
        /* The live stream: A's instance events reach A and system only (a trust shows
         * namespace events, never instances: api.md §3.4, docs/events-stream.md). */
        {"GET /events/stream", ISO_STREAM, "/events/stream", NULL, 0, NULL, false, 200, NULL, NULL},

        /* Destructive for system: last. */
        {"DELETE /instances/{}", ISO_OBJECT, "/instances/{inst}", NULL, NF("instance"), false, 200, NULL, NULL},
        {"DELETE /networks/{}", ISO_OBJECT, "/networks/{net2}", NULL, NF("network"), false, 200, NULL, NULL},
        {"DELETE /nodes/{}", ISO_SYSTEM, "/nodes/{node}", NULL, UNAUTH, false, 200, NULL, NULL},
        {"DELETE /instances", ISO_FOREIGN, "/instances", "{'confirm': true, 'namespace': '{A}'}", 401,
         "you cannot delete other namespaces", false, 200, NULL, NULL},
        /* The instances went with their deleted node, releasing their interfaces: every
         * network of A can go. */
        {"DELETE /networks", ISO_FOREIGN, "/networks", "{'confirm': true, 'namespace': '{A}'}", 401,
         "you cannot delete other namespaces", false, 200, NULL, NULL},
};

/* Every served route has exactly one case; every case is a served route. */
static void test_matrix_covers_routes(void **state) {
        char key[256];
        int missing = 0;

        (void)state;
        for (size_t i = 0; i < sf_api_nroutes; i++) {
                int n = 0;
                snprintf(key, sizeof(key), "%s %s", sf_api_routes[i].method, sf_api_routes[i].pattern);
                for (size_t c = 0; c < SF_ARRAY_SIZE(cases); c++)
                        n += strcmp(cases[c].route, key) == 0;
                if (n != 1) {
                        print_error("route \"%s\" has %d isolation cases (want 1)\n", key, n);
                        missing++;
                }
        }
        for (size_t c = 0; c < SF_ARRAY_SIZE(cases); c++) {
                bool served = false;
                for (size_t i = 0; i < sf_api_nroutes && !served; i++) {
                        snprintf(key, sizeof(key), "%s %s", sf_api_routes[i].method, sf_api_routes[i].pattern);
                        served = strcmp(cases[c].route, key) == 0;
                }
                if (!served) {
                        print_error("isolation case \"%s\" names no served route\n", cases[c].route);
                        missing++;
                }
        }
        assert_int_equal(missing, 0);
}

/* Fill the placeholders (names instead of UUIDs for A's instance and network if by_name). */
static void expand(const char *in, who_t who, bool by_name, char *out, size_t outlen) {
        size_t o = 0;

        for (const char *p = in; *p && o + 1 < outlen;) {
                const char *v = NULL;
                size_t skip = 0;
                static const struct {
                        const char *ph;
                        int which;
                } phs[] = {{"{A}", 0}, {"{B}", 1}, {"{D}", 2}, {"{net}", 3}, {"{net2}", 4}, {"{inst}", 5},
                           {"{iface}", 6}, {"{node}", 7}, {"{who}", 8}, {"{blob}", 9}};

                for (size_t i = 0; i < SF_ARRAY_SIZE(phs) && !v; i++) {
                        if (strncmp(p, phs[i].ph, strlen(phs[i].ph)) != 0)
                                continue;
                        skip = strlen(phs[i].ph);
                        switch (phs[i].which) {
                        case 0: v = ns_a; break;
                        case 1: v = ns_b; break;
                        case 2: v = ns_d; break;
                        case 3: v = by_name ? net_name : net_uuid; break;
                        case 4: v = net2_uuid; break;
                        case 5: v = by_name ? inst_name : inst_uuid; break;
                        case 6: v = iface_uuid; break;
                        case 7: v = node_name; break;
                        case 9: v = blob_uuid; break;
                        default: v = who_name[who]; break;
                        }
                }
                if (v) {
                        o += (size_t)snprintf(out + o, outlen - o, "%s", v);
                        p += skip;
                } else {
                        out[o++] = *p++;
                }
        }
        out[o < outlen ? o : outlen - 1] = 0;
}

static void iso_request(reply_t *r, const iso_case_t *c, who_t who, bool by_name) {
        char method[16], path[512], body[1024] = "";

        snprintf(method, sizeof(method), "%.*s", (int)strcspn(c->route, " "), c->route);
        expand(c->path, who, by_name, path, sizeof(path));
        if (c->body)
                expand(c->body, who, by_name, body, sizeof(body));
        req(r, method, path, who == WHO_NONE ? NULL : tok[who], c->body ? "%s" : NULL, body);
}

/* status (and the error envelope's message, if msg) or fail naming the case and caller. */
static void expect(reply_t *r, const iso_case_t *c, who_t who, long status, const char *msg) {
        if (r->status != status)
                fail_msg("%s as %s: want %ld, got %ld %s", c->route, who_name[who], status, r->status, r->body);
        if (msg)
                check_error(r, status, msg);
}

static bool list_names(json_object *list, const char *id) {
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *e = json_object_array_get_idx(list, i);
                if (strcmp(jstr(e, "uuid") ?: "", id) == 0 || strcmp(jstr(e, "name") ?: "", id) == 0)
                        return true;
        }
        return false;
}

/* What one caller may do: B never, C when trusted, system (and A) always. */
static bool allowed(const iso_case_t *c, who_t who) {
        return who == WHO_SYSTEM || who == WHO_A || (who == WHO_C && c->trusted);
}

static void check_list(const iso_case_t *c, who_t who) {
        _cleanup_json_ json_object *list = NULL;
        char id[128];
        reply_t r;

        iso_request(&r, c, who, false);
        list = check_json(&r, 200);
        expand(c->listed, who, false, id, sizeof(id));
        if (list_names(list, id) != allowed(c, who))
                fail_msg("%s as %s: A's %s %s listed", c->route, who_name[who], id,
                         allowed(c, who) ? "not" : "wrongly");
        reply_free(&r);
}

/* A live stream (e.g. GET /events/stream): subscribe as `who` for a moment while system
 * changes A's instance; A's events must arrive only if who may see A's instance. */
typedef struct {
        int delay_ms;
} poke_t;

/* An event of A's instance that changes no record (the matrix checks that B's and C's
 * turns leave A's records untouched).  ctx is free: the main thread waits in curl. */
static void *poke_instance(void *arg) {
        poke_t *p = arg;

        usleep((useconds_t)p->delay_ms * 1000);
        sf_event_emit(&ctx, "instance", inst_uuid, ns_a, "status", "stream-probe", NULL, -1);
        return NULL;
}

static void check_stream(const iso_case_t *c, who_t who) {
        char path[512], url[600], hdr[1100];
        reply_t r = {0};
        poke_t p = {.delay_ms = 500}; /* after the subscription is in place */
        pthread_t th;
        CURL *cu = curl_easy_init();
        struct curl_slist *h = NULL;
        bool seen;

        expand(c->path, who, false, path, sizeof(path));
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok[who]);
        h = curl_slist_append(h, hdr);
        curl_easy_setopt(cu, CURLOPT_URL, url);
        curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(cu, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 2500L);
        assert_int_equal(pthread_create(&th, NULL, poke_instance, &p), 0);
        curl_easy_perform(cu); /* ends by the timeout: a stream does not end by itself */
        pthread_join(th, NULL);
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &r.status);
        curl_slist_free_all(h);
        curl_easy_cleanup(cu);
        if (r.status != 200)
                fail_msg("%s as %s: want 200, got %ld", c->route, who_name[who], r.status);
        seen = r.body && strstr(r.body, inst_uuid);
        if (seen != (who == WHO_SYSTEM || who == WHO_A))
                fail_msg("%s as %s: A's instance events %s", c->route, who_name[who], seen ? "leaked" : "missing");
        reply_free(&r);
}

/* One caller against one case. */
static void check_case(const iso_case_t *c, who_t who) {
        reply_t r;

        if (who == WHO_NONE) {
                iso_request(&r, c, who, false);
                if (c->kind == ISO_PUBLIC)
                        expect(&r, c, who, c->sys_status, c->sys_msg);
                else
                        expect(&r, c, who, 401, "Missing Authorization Header");
                reply_free(&r);
                return;
        }
        switch (c->kind) {
        case ISO_LIST:
                check_list(c, who);
                return;
        case ISO_STREAM:
                check_stream(c, who);
                return;
        case ISO_PUBLIC:
                iso_request(&r, c, who, false);
                expect(&r, c, who, c->sys_status, c->sys_msg);
                break;
        case ISO_SYSTEM:
                iso_request(&r, c, who, false);
                if (who == WHO_SYSTEM)
                        expect(&r, c, who, c->sys_status, c->sys_msg);
                else
                        expect(&r, c, who, c->denied_status, c->denied_msg);
                break;
        case ISO_OBJECT:
        case ISO_FOREIGN:
                iso_request(&r, c, who, false);
                if (allowed(c, who))
                        expect(&r, c, who, c->sys_status, c->sys_msg);
                else
                        expect(&r, c, who, c->denied_status, c->denied_msg);
                /* By name too: the name lookup has its own visibility check. */
                if (!allowed(c, who) && (strstr(c->path, "{inst}") || strstr(c->path, "{net}"))) {
                        reply_free(&r);
                        iso_request(&r, c, who, true);
                        expect(&r, c, who, c->denied_status, c->denied_msg);
                }
                break;
        }
        reply_free(&r);
}

/* Every record of A's, with its revision: any write at all changes it. */
typedef struct {
        const char *type;
        const char *uuid;
        uint64_t rev;
        char *doc;
} snap_t;

static void snapshot(snap_t *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *doc = NULL;
                assert_int_equal(sf_store_get(ctx.store, s[i].type, s[i].uuid, &doc, &s[i].rev), 0);
                free(s[i].doc);
                s[i].doc = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        }
}

static void snapshot_same(const snap_t *before, size_t n, const char *after_what) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *doc = NULL;
                uint64_t rev = 0;
                assert_int_equal(sf_store_get(ctx.store, before[i].type, before[i].uuid, &doc, &rev), 0);
                if (rev != before[i].rev ||
                    strcmp(before[i].doc, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN)) != 0)
                        fail_msg("after %s: A's %s %s changed:\n was %s\n now %s", after_what, before[i].type,
                                 before[i].uuid, before[i].doc, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        }
}

/* Does any of who's own namespace events name one of A's objects? */
static void check_own_events_clean(who_t who, const char *ns) {
        char path[160];
        reply_t r;

        snprintf(path, sizeof(path), "/auth/namespaces/%s/events", ns);
        req(&r, "GET", path, tok[who], "{'limit': 1000}");
        json_object_put(check_json(&r, 200));
        if (strstr(r.body, inst_uuid) || strstr(r.body, net_uuid) || strstr(r.body, iface_uuid) ||
            strstr(r.body, ns_a))
                fail_msg("%s's namespace events mention A's objects: %s", who_name[who], r.body);
        reply_free(&r);
}

static void test_matrix(void **state) {
        snap_t snaps[] = {{"namespace", ns_a, 0, NULL},  {"network", net_uuid, 0, NULL},
                          {"network", net2_uuid, 0, NULL}, {"instance", inst_uuid, 0, NULL},
                          {"networkinterface", iface_uuid, 0, NULL}, {"node", node_name, 0, NULL}};
        size_t nobj = SF_ARRAY_SIZE(snaps) - 1; /* all but the namespace (snaps[0]) */
        reply_t r;

        (void)state;
        snapshot(snaps, SF_ARRAY_SIZE(snaps));
        for (size_t i = 0; i < SF_ARRAY_SIZE(cases); i++)
                check_case(&cases[i], WHO_NONE);
        for (size_t i = 0; i < SF_ARRAY_SIZE(cases); i++)
                check_case(&cases[i], WHO_B);
        snapshot_same(snaps, SF_ARRAY_SIZE(snaps), "B's turn");
        check_own_events_clean(WHO_B, ns_b);
        /* A's key still works; B's attempts rotated nothing. */
        req(&r, "GET", "/instances", tok[WHO_A], NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);

        for (size_t i = 0; i < SF_ARRAY_SIZE(cases); i++)
                check_case(&cases[i], WHO_C);
        /* C may change A's namespace (keys, trusts, metadata), never A's objects. */
        snapshot_same(snaps + 1, nobj, "C's turn");
        check_own_events_clean(WHO_C, ns_c);
        /* C's key delete hit victim-C only: A's other keys are all there. */
        {
                char path[128];
                snprintf(path, sizeof(path), "/auth/namespaces/%s/keys", ns_a);
                req(&r, "GET", path, tok[WHO_A], NULL);
                assert_int_equal(r.status, 200);
                assert_non_null(strstr(r.body, "\"victim-system\""));
                assert_non_null(strstr(r.body, "\"victim-B\""));
                assert_null(strstr(r.body, "\"victim-C\""));
                reply_free(&r);
        }

        for (size_t i = 0; i < SF_ARRAY_SIZE(cases); i++)
                check_case(&cases[i], WHO_SYSTEM);
        for (size_t i = 0; i < SF_ARRAY_SIZE(snaps); i++)
                free(snaps[i].doc);
}

/* ---- auth (api.md §2.2, §3) ---- */

static const char *nonce_of(const char *ns, const char *keyname, char *out, size_t outlen) {
        _cleanup_json_ json_object *doc = NULL;
        json_object *keys, *k;

        assert_int_equal(sf_store_get(ctx.store, "namespace", ns, &doc, NULL), 0);
        assert_true(json_object_object_get_ex(doc, "keys", &keys));
        assert_true(json_object_object_get_ex(keys, keyname, &k));
        snprintf(out, outlen, "%s", jstr(k, "nonce"));
        return out;
}

/* A token for ns/keyname with the key's real nonce, crafted claim by claim. */
static char *craft(const char *ns, const char *keyname, jwt_alg_t alg, const char *secret, long iat, long exp) {
        jwt_t *j = NULL;
        char sub[256], nonce[64];
        char *out;

        nonce_of(ns, keyname, nonce, sizeof(nonce));
        assert_int_equal(jwt_new(&j), 0);
        snprintf(sub, sizeof(sub), "{\"sub\": [\"%s\", \"%s\"]}", ns, keyname);
        assert_int_equal(jwt_add_grants_json(j, sub), 0);
        assert_int_equal(jwt_add_grant(j, "nonce", nonce), 0);
        assert_int_equal(jwt_add_grant(j, "type", "access"), 0);
        assert_int_equal(jwt_add_grant_int(j, "iat", iat), 0);
        assert_int_equal(jwt_add_grant_int(j, "nbf", iat), 0);
        assert_int_equal(jwt_add_grant_int(j, "exp", exp), 0);
        assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)secret, secret ? (int)strlen(secret) : 0), 0);
        out = jwt_encode_str(j);
        assert_non_null(out);
        jwt_free(j);
        return out;
}

static void expect_401(const char *token, const char *msg) {
        reply_t r;

        req(&r, "GET", "/instances", token, NULL);
        check_error(&r, 401, msg);
        reply_free(&r);
}

static void expect_200(const char *token) {
        reply_t r;

        req(&r, "GET", "/instances", token, NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
}

static void test_auth_failures(void **state) {
        char ns[40], key[40], t1[1024], t2[1024], path[160];
        const char *secret = ctx.cfg.auth_secret;
        long now = (long)time(NULL);
        char *good, *bad;
        reply_t r;

        (void)state;
        snprintf(ns, sizeof(ns), "iso-auth-%s", sfx);
        snprintf(key, sizeof(key), "auth-key-%s", sfx);
        make_ns(ns, key);

        /* The crafting itself is right: a well-formed token works. */
        good = craft(ns, "k", JWT_ALG_HS256, secret, now - 5, now + 600);
        expect_200(good);
        /* Expired. */
        bad = craft(ns, "k", JWT_ALG_HS256, secret, now - 1000, now - 10);
        expect_401(bad, "Signature has expired");
        free(bad);
        /* alg none: no signature at all. */
        bad = craft(ns, "k", JWT_ALG_NONE, NULL, now - 5, now + 600);
        expect_401(bad, "invalid JWT in Authorization header");
        free(bad);
        /* HS512 with the right secret: only HS256 is accepted. */
        bad = craft(ns, "k", JWT_ALG_HS512, secret, now - 5, now + 600);
        expect_401(bad, "invalid JWT in Authorization header");
        free(bad);
        /* Tampered: one signature character changed; and the payload of another token
         * (system's) under this token's signature. */
        bad = strdup(good);
        {
                char *sig = strrchr(bad, '.') + 1;
                sig[3] = sig[3] == 'A' ? 'B' : 'A';
        }
        expect_401(bad, "invalid JWT in Authorization header");
        free(bad);
        {
                char *sys = craft("system", "iso", JWT_ALG_HS256, "wrong-secret", now - 5, now + 600);
                char *gdot = strchr(good, '.'), *gsig = strrchr(good, '.'), *sdot = strchr(sys, '.'),
                     *ssig = strrchr(sys, '.');
                assert_true(asprintf(&bad, "%.*s%.*s%s", (int)(gdot - good), good, (int)(ssig - sdot), sdot, gsig) > 0);
                expect_401(bad, "invalid JWT in Authorization header");
                free(bad);
                free(sys);
        }
        /* Signed with another secret. */
        bad = craft(ns, "k", JWT_ALG_HS256, "not-the-secret", now - 5, now + 600);
        expect_401(bad, "invalid JWT in Authorization header");
        free(bad);

        /* Rotated key (re-POST): the old token dies at once, a new one works. */
        get_token(ns, key, t1, sizeof(t1));
        expect_200(t1);
        snprintf(path, sizeof(path), "/auth/namespaces/%s/keys", ns);
        req(&r, "POST", path, tok[WHO_SYSTEM], "{'key_name': 'k', 'key': '%s'}", key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        expect_401(t1, "");
        expect_401(good, "");
        get_token(ns, key, t2, sizeof(t2));
        expect_200(t2);

        /* Rotated by PUT (upstream's update_namespace_key): the same, and an unknown key name
         * is a 404 that adds nothing. */
        req(&r, "PUT", path, tok[WHO_SYSTEM], "{'key_name': 'k', 'key': '%s'}", key);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "\"k\"\n");
        reply_free(&r);
        expect_401(t2, "");
        get_token(ns, key, t2, sizeof(t2));
        expect_200(t2);
        req(&r, "PUT", path, tok[WHO_SYSTEM], "{'key_name': 'nosuch', 'key': 'x'}");
        check_error(&r, 404, "key name not found in namespace");
        reply_free(&r);
        req(&r, "GET", path, tok[WHO_SYSTEM], NULL);
        assert_string_equal(r.body, "[\"k\"]\n");
        reply_free(&r);
        expect_200(t2);

        /* Deleted key. */
        snprintf(path, sizeof(path), "/auth/namespaces/%s/keys/k", ns);
        req(&r, "DELETE", path, tok[WHO_SYSTEM], NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        expect_401(t2, "");
        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);

        /* Deleted namespace: a token of a key it still had dies with it. */
        snprintf(path, sizeof(path), "/auth/namespaces/%s/keys", ns);
        req(&r, "POST", path, tok[WHO_SYSTEM], "{'key_name': 'k2', 'key': '%s'}", key);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        get_token(ns, key, t1, sizeof(t1));
        expect_200(t1);
        snprintf(path, sizeof(path), "/auth/namespaces/%s", ns);
        req(&r, "DELETE", path, tok[WHO_SYSTEM], NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        expect_401(t1, "");
        free(good);
}

static void test_reserved_and_system_trust(void **state) {
        const char *bad_names[] = {"_service_key", "_service_key_abcde", "_service_keyx", "service_key"};
        char path[160];
        reply_t r;

        (void)state;
        snprintf(path, sizeof(path), "/auth/namespaces/%s/keys", ns_b);
        for (size_t i = 0; i < SF_ARRAY_SIZE(bad_names); i++) {
                req(&r, "POST", path, tok[WHO_B], "{'key_name': '%s', 'key': 'x'}", bad_names[i]);
                check_error(&r, 403, "illegal key name");
                reply_free(&r);
                req(&r, "POST", "/auth/namespaces", tok[WHO_SYSTEM], "{'namespace': '%s', 'key_name': '%s', 'key': 'x'}",
                    ns_b, bad_names[i]);
                check_error(&r, 403, "illegal key name");
                reply_free(&r);
        }
        req(&r, "GET", path, tok[WHO_B], NULL);
        assert_string_equal(r.body, "[\"k\"]\n");
        reply_free(&r);
        /* Removing `system` from a trust list is ignored. */
        snprintf(path, sizeof(path), "/auth/namespaces/%s/trust/system", ns_b);
        req(&r, "DELETE", path, tok[WHO_B], NULL);
        {
                _cleanup_json_ json_object *o = check_json(&r, 200);
                assert_string_equal(
                        json_object_to_json_string_ext(json_object_object_get(o, "trust"), JSON_C_TO_STRING_PLAIN),
                        "{\"full\":[\"system\"]}");
        }
        reply_free(&r);
        snprintf(path, sizeof(path), "/auth/namespaces/%s", ns_b);
        req(&r, "GET", path, tok[WHO_SYSTEM], NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
}

/* ---- metadata rules on every object type (api.md §2.3-§2.10) ---- */

static void test_metadata_rules(void **state) {
        char prefixes[5][160];
        const char *falsy[] = {"''", "0", "0.0", "false", "[]", "{}", "null"};
        char path[256];
        reply_t r;

        (void)state;
        snprintf(prefixes[0], sizeof(prefixes[0]), "/instances/%s/metadata", inst_uuid);
        snprintf(prefixes[1], sizeof(prefixes[1]), "/networks/%s/metadata", net_uuid);
        snprintf(prefixes[2], sizeof(prefixes[2]), "/interfaces/%s/metadata", iface_uuid);
        snprintf(prefixes[3], sizeof(prefixes[3]), "/auth/namespaces/%s/metadata", ns_a);
        snprintf(prefixes[4], sizeof(prefixes[4]), "/nodes/%s/metadata", node_name);
        for (int t = 0; t < 5; t++) {
                const char *p = prefixes[t];
                for (size_t i = 0; i < SF_ARRAY_SIZE(falsy); i++) {
                        req(&r, "POST", p, tok[WHO_SYSTEM], "{'key': 'k', 'value': %s}", falsy[i]);
                        check_error(&r, 400, "no value specified");
                        reply_free(&r);
                        snprintf(path, sizeof(path), "%s/k", p);
                        req(&r, "PUT", path, tok[WHO_SYSTEM], "{'value': %s}", falsy[i]);
                        check_error(&r, 400, "no value specified");
                        reply_free(&r);
                }
                req(&r, "POST", p, tok[WHO_SYSTEM], "{'value': 'v'}");
                check_error(&r, 400, "no key specified");
                reply_free(&r);
                req(&r, "POST", p, tok[WHO_SYSTEM], "{'key': 'k', 'value': 'v', 'bogus': 1}");
                check_error(&r, 400, "post() got an unexpected keyword argument 'bogus'");
                reply_free(&r);
                /* Only instances check tags and affinity (api.md §2.4: "no tags/affinity validation"). */
                req(&r, "POST", p, tok[WHO_SYSTEM], "{'key': 'tags', 'value': 'not-a-list'}");
                if (t == 0)
                        check_error(&r, 400, "value for \"tags\" key should be a JSON list");
                else
                        assert_int_equal(r.status, 200);
                reply_free(&r);
                req(&r, "POST", p, tok[WHO_SYSTEM], "{'key': 'affinity', 'value': ['cpu']}");
                if (t == 0)
                        check_error(&r, 400, "value for \"affinity\" key should be a valid JSON dictionary");
                else
                        assert_int_equal(r.status, 200);
                reply_free(&r);
                /* A body key overrides the path's (api.md §1.2). */
                snprintf(path, sizeof(path), "%s/ignored", p);
                req(&r, "PUT", path, tok[WHO_SYSTEM], "{'key': 'owner', 'value': {'n': 1}}");
                assert_int_equal(r.status, 200);
                reply_free(&r);
                req(&r, "GET", p, tok[WHO_SYSTEM], NULL);
                {
                        _cleanup_json_ json_object *m = check_json(&r, 200);
                        json_object *v = NULL;
                        assert_true(json_object_object_get_ex(m, "owner", &v));
                        assert_int_equal(sf_json_int(v, "n", 0), 1);
                        assert_false(json_object_object_get_ex(m, "ignored", NULL));
                }
                reply_free(&r);
                /* Deleting a missing key is not an error. */
                snprintf(path, sizeof(path), "%s/nosuch", p);
                req(&r, "DELETE", path, tok[WHO_SYSTEM], NULL);
                assert_int_equal(r.status, 200);
                assert_string_equal(r.body, "null\n");
                reply_free(&r);
        }
        /* Instances: affinity values are what Python's int() takes (upstream casts them). */
        {
                const char *bad[] = {"{'cpu': 'banana'}", "{'cpu': true}", "{'cpu': null}", "{'cpu': []}",
                                     "{'cpu': {}}", "{'cpu': '1.5'}", "{'cpu': ''}"};
                for (size_t i = 0; i < SF_ARRAY_SIZE(bad); i++) {
                        req(&r, "POST", prefixes[0], tok[WHO_SYSTEM], "{'key': 'affinity', 'value': %s}", bad[i]);
                        check_error(&r, 400, "affinity dictionary values should be integers");
                        reply_free(&r);
                }
                req(&r, "POST", prefixes[0], tok[WHO_SYSTEM],
                    "{'key': 'affinity', 'value': {'cpu': 5, 'disk': '-1', 'instance': ' 7 ', 'x': 2.0}}");
                assert_int_equal(r.status, 200);
                reply_free(&r);
                req(&r, "POST", prefixes[0], tok[WHO_SYSTEM], "{'key': 'tags', 'value': ['web', 'db']}");
                assert_int_equal(r.status, 200);
                reply_free(&r);
                /* The same rules at create time. */
                req(&r, "POST", "/instances", tok[WHO_A],
                    "{'name': 'md-%s', 'cpus': 1, 'memory': 64, 'disk': " DISK ", 'metadata': {'affinity': {'cpu': 'x'}}}",
                    sfx);
                check_error(&r, 400, "affinity dictionary values should be integers");
                reply_free(&r);
        }
        /* Every write is a mutate event on the object. */
        {
                _cleanup_json_ json_object *ev = NULL;
                assert_int_equal(sf_event_list(ctx.store, "networkinterface", iface_uuid, "mutate", 0, &ev), 0);
                assert_true(json_object_array_length(ev) >= 3);
                assert_string_equal(jstr(json_object_array_get_idx(ev, 0), "message"), "set attribute");
        }
}

/* ---- events (api.md §5) ---- */

static void test_events(void **state) {
        char routes[5][160];
        const char *objs[5][2] = {{"instance", inst_uuid}, {"network", net_uuid}, {"networkinterface", iface_uuid},
                                  {"namespace", ns_a}, {"node", node_name}};
        reply_t r;

        (void)state;
        snprintf(routes[0], sizeof(routes[0]), "/instances/%s/events", inst_uuid);
        snprintf(routes[1], sizeof(routes[1]), "/networks/%s/events", net_uuid);
        snprintf(routes[2], sizeof(routes[2]), "/interfaces/%s/events", iface_uuid);
        snprintf(routes[3], sizeof(routes[3]), "/auth/namespaces/%s/events", ns_a);
        snprintf(routes[4], sizeof(routes[4]), "/nodes/%s/events", node_name);
        for (int t = 0; t < 5; t++) {
                _cleanup_json_ json_object *all = NULL, *one = NULL, *aud = NULL;
                double last = 1e18;

                /* Three of each type we can tell apart, oldest first. */
                for (int i = 0; i < 3; i++) {
                        assert_int_equal(sf_event_emit(&ctx, objs[t][0], objs[t][1], ns_a, "status", "st", NULL, 1.5), 0);
                        assert_int_equal(sf_event_emit(&ctx, objs[t][0], objs[t][1], ns_a, "usage", "us", NULL, -1), 0);
                }
                req(&r, "GET", routes[t], tok[WHO_SYSTEM], "{'event_type': 'bogus'}");
                check_error(&r, 400, "invalid event type");
                reply_free(&r);
                req(&r, "GET", routes[t], tok[WHO_SYSTEM], "{'limit': 'x'}");
                check_error(&r, 400, "limit is not an integer");
                reply_free(&r);
                req(&r, "GET", routes[t], tok[WHO_SYSTEM], "{'since': 1}");
                check_error(&r, 400, "get() got an unexpected keyword argument 'since'");
                reply_free(&r);
                /* All types merged newest first, timestamps unique. */
                req(&r, "GET", routes[t], tok[WHO_SYSTEM], "{'limit': 1000}");
                all = check_json(&r, 200);
                reply_free(&r);
                assert_true(json_object_array_length(all) >= 6);
                for (size_t i = 0; i < json_object_array_length(all); i++) {
                        double ts = json_object_get_double(json_object_object_get(json_object_array_get_idx(all, i),
                                                                                  "timestamp"));
                        assert_true(ts < last);
                        last = ts;
                }
                assert_string_equal(jstr(json_object_array_get_idx(all, 0), "type"), "usage");
                req(&r, "GET", routes[t], tok[WHO_SYSTEM], "{'event_type': 'status', 'limit': '2'}");
                one = check_json(&r, 200);
                reply_free(&r);
                assert_int_equal(json_object_array_length(one), 2);
                for (size_t i = 0; i < 2; i++) {
                        json_object *e = json_object_array_get_idx(one, i);
                        const char *const keys[] = {"timestamp", "type", "fqdn", "duration", "message", "extra"};
                        size_t k = 0;
                        assert_string_equal(jstr(e, "type"), "status");
                        assert_true(json_object_get_double(json_object_object_get(e, "duration")) == 1.5);
                        json_object_object_foreach(e, key, val) {
                                (void)val;
                                assert_true(k < SF_ARRAY_SIZE(keys));
                                assert_string_equal(key, keys[k++]);
                        }
                        assert_int_equal(k, SF_ARRAY_SIZE(keys));
                }
                req(&r, "GET", routes[t], tok[WHO_SYSTEM], "{'event_type': 'audit'}");
                aud = check_json(&r, 200);
                reply_free(&r);
                for (size_t i = 0; i < json_object_array_length(aud); i++)
                        assert_string_equal(jstr(json_object_array_get_idx(aud, i), "type"), "audit");
        }

        /* Audit events of A's objects are mirrored onto A's namespace, naming the object. */
        {
                _cleanup_json_ json_object *extra = json_object_new_object(), *ev = NULL;
                bool found = false;

                json_object_object_add(extra, "why", json_object_new_string("mirror-probe"));
                assert_int_equal(sf_event_emit(&ctx, "network", net_uuid, ns_a, "audit", "probe audit", extra, -1), 0);
                assert_int_equal(sf_event_emit(&ctx, "network", net_uuid, ns_a, "status", "probe status", NULL, -1), 0);
                assert_int_equal(sf_event_list(ctx.store, "namespace", ns_a, NULL, 0, &ev), 0);
                for (size_t i = 0; i < json_object_array_length(ev); i++) {
                        json_object *e = json_object_array_get_idx(ev, i), *x = json_object_object_get(e, "extra");
                        assert_string_not_equal(jstr(e, "message"), "probe status");
                        if (strcmp(jstr(e, "message"), "probe audit") == 0) {
                                found = true;
                                assert_string_equal(jstr(e, "type"), "audit");
                                assert_string_equal(jstr(x, "object_type"), "network");
                                assert_string_equal(jstr(x, "object_uuid"), net_uuid);
                                assert_string_equal(jstr(x, "why"), "mirror-probe");
                        }
                }
                assert_true(found);
                /* ... and so is the scheduler's audit of A's instance at create time. */
                found = false;
                for (size_t i = 0; i < json_object_array_length(ev); i++) {
                        json_object *e = json_object_array_get_idx(ev, i), *x = json_object_object_get(e, "extra");
                        found |= strcmp(jstr(e, "message"), "schedule final candidates") == 0 &&
                                 strcmp(jstr(x, "object_uuid") ?: "", inst_uuid) == 0;
                }
                assert_true(found);
        }
}

/* Retention per type: short for status, forever for audit. */
static void test_event_retention(void **state) {
        int64_t secs[SF_CONFIG_EVENT_TYPES];
        char uuid[SF_UUID_LEN], key[256];
        _cleanup_json_ json_object *ev = NULL;
        reply_t r;

        (void)state;
        sf_uuid_new(uuid);
        for (int i = 0; i < SF_CONFIG_EVENT_TYPES; i++)
                secs[i] = ctx.cfg.event_retention_s[i];
        secs[0] = -1; /* audit */
        secs[2] = 1;  /* status */
        sf_event_retention_set(secs);
        assert_int_equal(sf_event_emit(&ctx, "thing", uuid, ns_a, "status", "old status", NULL, -1), 0);
        assert_int_equal(sf_event_emit(&ctx, "thing", uuid, ns_a, "audit", "old audit", NULL, -1), 0);
        /* The status list expires with its last record; audit never does. */
        {
                _cleanup_reply_ redisReply *t = NULL;
                snprintf(key, sizeof(key), "sf:events:thing:%s:status", uuid);
                t = sf_store_cmd(ctx.store, "PTTL %s", key);
                assert_true(t && t->type == REDIS_REPLY_INTEGER && t->integer > 0 && t->integer <= 2000);
                freeReplyObject(t);
                snprintf(key, sizeof(key), "sf:events:thing:%s:audit", uuid);
                t = sf_store_cmd(ctx.store, "PTTL %s", key);
                assert_true(t && t->type == REDIS_REPLY_INTEGER && t->integer == -1);
        }
        usleep(1300 * 1000);
        /* Past its retention: not read, and trimmed by the next write. */
        assert_int_equal(sf_event_list(ctx.store, "thing", uuid, NULL, 0, &ev), 0);
        assert_int_equal(json_object_array_length(ev), 1);
        assert_string_equal(jstr(json_object_array_get_idx(ev, 0), "message"), "old audit");
        json_object_put(ev);
        assert_int_equal(sf_event_emit(&ctx, "thing", uuid, ns_a, "status", "new status", NULL, -1), 0);
        {
                _cleanup_reply_ redisReply *n = NULL;
                snprintf(key, sizeof(key), "sf:events:thing:%s:status", uuid);
                n = sf_store_cmd(ctx.store, "LLEN %s", key);
                assert_true(n && n->type == REDIS_REPLY_INTEGER);
                assert_int_equal(n->integer, 1);
        }
        assert_int_equal(sf_event_list(ctx.store, "thing", uuid, NULL, 0, &ev), 0);
        assert_int_equal(json_object_array_length(ev), 2);
        assert_string_equal(jstr(json_object_array_get_idx(ev, 0), "message"), "new status");
        json_object_put(ev);
        /* Records of the single list from before the per-type lists are still read. */
        {
                char rec[256];
                snprintf(rec, sizeof(rec),
                         "{\"timestamp\": %.6f, \"type\": \"mutate\", \"fqdn\": \"x\", \"duration\": null, "
                         "\"message\": \"legacy\", \"extra\": {}}",
                         sf_now() - 5);
                freeReplyObject(sf_store_cmd(ctx.store, "LPUSH sf:events:thing:%s %s", uuid, rec));
        }
        assert_int_equal(sf_event_list(ctx.store, "thing", uuid, NULL, 0, &ev), 0);
        assert_int_equal(json_object_array_length(ev), 3);
        assert_string_equal(jstr(json_object_array_get_idx(ev, 2), "message"), "legacy");
        json_object_put(ev);
        assert_int_equal(sf_event_list(ctx.store, "thing", uuid, "mutate", 0, &ev), 0);
        assert_int_equal(json_object_array_length(ev), 1);
        (void)r;
        sf_event_retention_set(ctx.cfg.event_retention_s);
        /* Purging an object removes every list, the old one too. */
        assert_int_equal(sf_store_purge(ctx.store, "thing", uuid), 0);
        {
                _cleanup_reply_ redisReply *k = sf_store_cmd(ctx.store, "KEYS sf:events:thing:%s*", uuid);
                assert_true(k && k->type == REDIS_REPLY_ARRAY);
                assert_int_equal(k->elements, 0);
        }
}

/* ---- node delete (api.md §2.10) ---- */

/* Live hypervisors other than ours and `except` (a Redis shared with earlier runs). */
static bool other_live_nodes(const char *except) {
        char **names = NULL;
        bool any = false;

        assert_int_equal(sf_store_index(ctx.store, "node", "all", NULL, &names, NULL), 0);
        for (char **p = names; *p; p++) {
                _cleanup_json_ json_object *n = NULL;
                if (strcmp(*p, node_name) == 0 || strcmp(*p, except) == 0)
                        continue;
                if (sf_store_get(ctx.store, "node", *p, &n, NULL) == 0 && sf_json_bool(n, "is_hypervisor", false) &&
                    strcmp(sf_json_str(n, "state") ?: "created", "created") == 0 &&
                    sf_now() - (double)sf_json_int(n, "lastseen", 0) <= 120)
                        any = true;
        }
        sf_strv_free(names);
        return any;
}

static void test_node_delete(void **state) {
        char path[160], name[64], uuid[SF_UUID_LEN], saved[64];
        sf_fence_t old_fence;
        static char fence_res[64];
        _cleanup_json_ json_object *o = NULL, *inst = NULL;
        reply_t r;

        (void)state;
        /* A second node of our own, holding one instance. */
        snprintf(saved, sizeof(saved), "%s", node_name);
        snprintf(node2, sizeof(node2), "isonode2-%s", sfx);
        snprintf(node_name, sizeof(node_name), "%s", node2);
        put_node();
        snprintf(node_name, sizeof(node_name), "%s", saved);
        snprintf(name, sizeof(name), "nd-%s", sfx);
        req(&r, "POST", "/instances", tok[WHO_A],
            "{'name': '%s', 'cpus': 1, 'memory': 64, 'disk': " DISK ", 'placed_on': '%s'}", name, node2);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(o, "node"), node2);
        snprintf(uuid, sizeof(uuid), "%s", jstr(o, "uuid"));
        assert_int_equal(sf_obj_set_state(&ctx, "instance", uuid, "preflight", NULL, NULL, NULL), 0);

        /* node2's worker held the instance once (its token is older than what comes). */
        {
                char lockname[64];
                sf_lock_t *l = NULL;
                snprintf(lockname, sizeof(lockname), "instance/%s", uuid);
                assert_int_equal(sf_lock_acquire(ctx.store, lockname, "elsewhere/1", 30000, 0, false, &l), 0);
                old_fence = sf_lock_fence(l);
                /* The fence names the lock's own copy of the name, freed with it. */
                snprintf(fence_res, sizeof(fence_res), "%s", old_fence.resource);
                old_fence.resource = fence_res;
                /* While it is held, the instance is left alone and counted as busy. */
                snprintf(path, sizeof(path), "/nodes/%s", node2);
                req(&r, "DELETE", path, tok[WHO_SYSTEM], NULL);
                assert_int_equal(r.status, 200);
                reply_free(&r);
                {
                        _cleanup_json_ json_object *doc = NULL, *ev = NULL;
                        assert_int_equal(sf_store_get(ctx.store, "instance", uuid, &doc, NULL), 0);
                        assert_string_equal(jstr(doc, "state"), "preflight");
                        assert_int_equal(sf_event_list(ctx.store, "node", node2, "audit", 1, &ev), 0);
                        assert_int_equal(
                                sf_json_int(json_object_object_get(json_object_array_get_idx(ev, 0), "extra"),
                                            "instances_busy", -1),
                                1);
                        assert_true(sf_json_int(json_object_object_get(json_object_array_get_idx(ev, 0), "extra"),
                                                "intents_failed", -1) >= 1);
                }
                sf_lock_release(ctx.store, l);
        }
        snprintf(path, sizeof(path), "/nodes/%s", node2);
        req(&r, "DELETE", path, tok[WHO_A], NULL);
        check_error(&r, 401, "unauthorized");
        reply_free(&r);
        req(&r, "DELETE", "/nodes/nosuch-node", tok[WHO_SYSTEM], NULL);
        check_error(&r, 404, "node not found");
        reply_free(&r);
        req(&r, "DELETE", path, tok[WHO_SYSTEM], "{'force': true}");
        check_error(&r, 400, "delete() got an unexpected keyword argument 'force'");
        reply_free(&r);
        req(&r, "DELETE", path, tok[WHO_SYSTEM], NULL);
        json_object_put(o);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(o, "name"), node2);
        assert_string_equal(jstr(o, "state"), "deleted");

        /* The old holder's fencing token is refused from now on: a late write of the
         * deleted node's worker cannot undo the error. */
        {
                _cleanup_json_ json_object *doc = NULL;
                assert_int_equal(sf_obj_set_field(&ctx, "instance", uuid, "power_state", json_object_new_string("on"),
                                                  &old_fence),
                                 -ENOLCK);
                assert_int_equal(sf_store_get(ctx.store, "instance", uuid, &doc, NULL), 0);
                assert_string_not_equal(jstr(doc, "power_state") ?: "", "on");
        }
        /* Its queue is drained: nothing pending for node2 (the create intent failed). */
        {
                _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx.store, "ZRANGE sf:intents:pending 0 -1");
                char prefix[128];
                sf_intent_subject(node2, "", prefix, sizeof(prefix));
                assert_true(ids && ids->type == REDIS_REPLY_ARRAY);
                for (size_t i = 0; i < ids->elements; i++) {
                        _cleanup_reply_ redisReply *sub =
                                sf_store_cmd(ctx.store, "HGET sf:intent:%s subject", ids->element[i]->str);
                        if (sub && sub->type == REDIS_REPLY_STRING && strncmp(sub->str, prefix, strlen(prefix)) == 0)
                                fail_msg("intent %s still pending for %s", ids->element[i]->str, sub->str);
                }
        }
        /* Its instance went preflight -> preflight-error -> error, with the reason. */
        snprintf(path, sizeof(path), "/instances/%s", uuid);
        req(&r, "GET", path, tok[WHO_A], NULL);
        inst = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(inst, "state"), "error");
        {
                char want[128];
                snprintf(want, sizeof(want), "node %s was deleted", node2);
                assert_string_equal(jstr(inst, "error_message"), want);
        }
        /* Events on the node. */
        snprintf(path, sizeof(path), "/nodes/%s/events", node2);
        req(&r, "GET", path, tok[WHO_SYSTEM], "{'event_type': 'audit', 'limit': 1}");
        {
                _cleanup_json_ json_object *ev = check_json(&r, 200);
                json_object *e = json_object_array_get_idx(ev, 0);
                assert_string_equal(jstr(e, "message"), "node deleted");
                assert_int_equal(sf_json_int(json_object_object_get(e, "extra"), "instances_failed", -1), 1);
        }
        reply_free(&r);

        /* A heartbeat (the worker merges lastseen and metrics) does not revive it ... */
        {
                _cleanup_json_ json_object *n = NULL;
                uint64_t rev;
                assert_int_equal(sf_store_get(ctx.store, "node", node2, &n, &rev), 0);
                json_object_object_add(n, "lastseen", json_object_new_int64((int64_t)sf_now()));
                assert_int_equal(sf_store_put(ctx.store, "node", node2, rev, n, NULL, NULL), 0);
        }
        snprintf(path, sizeof(path), "/nodes/%s", node2);
        req(&r, "GET", path, tok[WHO_SYSTEM], NULL);
        json_object_put(o);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(o, "state"), "deleted");
        /* ... nor makes it schedulable, asked for or not. */
        req(&r, "POST", "/instances", tok[WHO_A],
            "{'name': 'nd2-%s', 'cpus': 1, 'memory': 64, 'disk': " DISK ", 'placed_on': '%s'}", sfx, node2);
        check_error(&r, 404, "Specified node not ready");
        reply_free(&r);
        {
                /* Only node2 live (the main node looks stale for a moment): nothing fits. */
                _cleanup_json_ json_object *n = NULL;
                uint64_t rev;
                assert_int_equal(sf_store_get(ctx.store, "node", node_name, &n, &rev), 0);
                json_object_object_add(n, "lastseen", json_object_new_int64(1));
                assert_int_equal(sf_store_put(ctx.store, "node", node_name, rev, n, NULL, NULL), 0);
                if (!other_live_nodes(node2)) {
                        req(&r, "POST", "/instances", tok[WHO_A],
                            "{'name': 'nd3-%s', 'cpus': 1, 'memory': 64, 'disk': " DISK "}", sfx);
                        check_error(&r, 507, "No nodes with metrics");
                        reply_free(&r);
                }
        }
        /* Deleting again is fine (and finishes anything a crash left). */
        req(&r, "DELETE", path, tok[WHO_SYSTEM], NULL);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        /* Its error instance is deleted at once: nothing would consume an intent to it. */
        snprintf(path, sizeof(path), "/instances/%s", uuid);
        req(&r, "DELETE", path, tok[WHO_A], NULL);
        json_object_put(o);
        o = check_json(&r, 200);
        reply_free(&r);
        assert_string_equal(jstr(o, "state"), "deleted");

        sf_store_purge(ctx.store, "node", node2);
        put_node(); /* the main node, live again */
}

/* ---- GET / (api.md §2.1): exactly the capabilities implemented ---- */

static void test_capabilities(void **state) {
        /* Every upstream capability string, and the route that implements it (NULL: a
         * behaviour, not a route; sf implements none of those yet). */
        static const struct {
                const char *cap, *route;
        } known[] = {
                {"events-by-type", "GET /instances/{}/events"},
                {"instance-get", "GET /instances/{}"},
                {"interface-metadata", "GET /interfaces/{}/metadata"},
                {"node-get", "GET /nodes/{}"},
                {"node-metadata", "GET /nodes/{}/metadata"},
                {"cluster-cacert", "GET /admin/cacert"},
                {"agentoperations-crud", "GET /agentoperations/{}"},
                {"instance-agentoperations", "GET /instances/{}/agentoperations"},
                {"instance-agentoperations-all", "GET /instances/{}/agentoperations"},
                {"artifact-metadata", "GET /artifacts/{}/metadata"},
                {"artifact-upload-types", "POST /artifacts/upload/{}"},
                {"blob-metadata", "GET /blobs/{}/metadata"},
                {"blob-search-by-hash", "GET /blob_checksums/sha512/{}"},
                {"pure-affinity", NULL},
                {"spice-vdi-console", "GET /instances/{}/vdiconsolehelper"},
                {"vdi-console-helper", "GET /instances/{}/vdiconsolehelper"},
                {"instance-put-blob", "POST /instances/{}/agent/put"},
                {"instance-execute", "POST /instances/{}/agent/execute"},
                {"cluster-resources", "GET /admin/resources"},
                {"blob-data-limit", "GET /blobs/{}/data"},
                {"blob-hash-sha1", "GET /blob_checksums/{}/{}"},
                {"blob-hash-sha256", "GET /blob_checksums/{}/{}"},
                {"blob-hash-xxh128", "GET /blob_checksums/{}/{}"},
                {"instance-screenshot", "GET /instances/{}/screenshot"},
                {"get-instance-namespace", NULL},
                {"hot-plug-interface", "POST /instances/{}/interfaces"},
                {"list-addresses", "GET /networks/{}/addresses"},
                {"route-addresses", "POST /networks/{}/route"},
                {"get-network-namespace", NULL},
                {"provide-dns", NULL},
                {"extra-dns-entries", "POST /networks/{}/dns"},
                {"node-process-metrics", "GET /nodes/{}/processmetrics"},
        };
        char item[128];
        reply_t r;

        (void)state;
        req(&r, "GET", "/", NULL, NULL);
        assert_int_equal(r.status, 200);
        for (size_t i = 0; i < SF_ARRAY_SIZE(known); i++) {
                bool served = false, listed;
                for (size_t j = 0; known[i].route && j < sf_api_nroutes && !served; j++) {
                        char key[256];
                        snprintf(key, sizeof(key), "%s %s", sf_api_routes[j].method, sf_api_routes[j].pattern);
                        served = strcmp(key, known[i].route) == 0;
                }
                snprintf(item, sizeof(item), "<li>%s</li>", known[i].cap);
                listed = strstr(r.body, item) != NULL;
                if (listed != served)
                        fail_msg("capability %s is %slisted but %s", known[i].cap, listed ? "" : "not ",
                                 served ? "implemented" : "not implemented");
        }
        /* Nothing listed that is not a known capability. */
        for (const char *p = strstr(r.body, "<li>"); p; p = strstr(p + 1, "<li>")) {
                bool ok = false;
                size_t n = strcspn(p + 4, "<");
                for (size_t i = 0; i < SF_ARRAY_SIZE(known) && !ok; i++)
                        ok = strlen(known[i].cap) == n && strncmp(known[i].cap, p + 4, n) == 0;
                if (!ok)
                        fail_msg("unknown capability listed: %.*s", (int)n, p + 4);
        }
        reply_free(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_matrix_covers_routes),
                cmocka_unit_test(test_world),
                cmocka_unit_test(test_auth_failures),
                cmocka_unit_test(test_reserved_and_system_trust),
                cmocka_unit_test(test_metadata_rules),
                cmocka_unit_test(test_events),
                cmocka_unit_test(test_event_retention),
                cmocka_unit_test(test_node_delete),
                cmocka_unit_test(test_capabilities),
                cmocka_unit_test(test_matrix),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
