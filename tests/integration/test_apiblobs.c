/* Integration: sf-api's blob routes (api/blobs.c, api.md §2.8) in-process, over real HTTP
 * (libcurl), against real Redis and NATS (tests/run.sh starts them).  Blob records and
 * files are written here as sf-compute's screenshot and sf-blob write them:
 *   - GET /blobs/<uuid>: upstream's view in its key order (+ the healthy instances using
 *     the blob), for any namespace's token; 404 `blob not found` for an unknown, deleted
 *     or malformed uuid; 401 without a token;
 *   - GET /blobs/<uuid>/data: the file's bytes (text/plain), offset and limit (0 = all),
 *     empty past the end; 400 for a bad offset or limit; 404 `blob not found` / `blob
 *     missing` (record without a local file); 401 without a token. */
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
#include "blobfile.h"
#include "ctx.h"
#include "http.h"
#include "object.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;
static sf_http_server_t *srv;
static int port;
static char storage[64];
static char sfx[9];
static char sys_key[33], ns1[32], ns1_key[33];
static char sys_tok[1024], ns1_tok[1024];

#include "apiclient.h"

/* The blobs of these tests: one with a file, one whose file is gone, one deleted. */
static char blob[SF_UUID_LEN], blob_nofile[SF_UUID_LEN], blob_deleted[SF_UUID_LEN];
static char inst_live[SF_UUID_LEN], inst_dead[SF_UUID_LEN];
static char sha[SF_SHA512_HEX_LEN];
#define DATA_LEN (3 * 1024 * 1024 + 17) /* several MHD buffers, not a round number */
static unsigned char *data;

static void get_token(const char *ns, const char *key, char *out, size_t outlen) {
        _cleanup_json_ json_object *o = NULL;
        reply_t r;

        req(&r, "POST", "/auth", NULL, "{'namespace': '%s', 'key': '%s'}", ns, key);
        o = check_json(&r, 200);
        snprintf(out, outlen, "%s", sf_json_str(o, "access_token"));
        reply_free(&r);
}

/* A blob record as sf-compute's screenshot writes it (namespace system, this node). */
static void put_blob(const char *uuid, int64_t size, const char *sha512) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *locs = json_object_new_array();

        json_object_array_add(locs, json_object_new_string(ctx.cfg.node));
        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "namespace", json_object_new_string("system"));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "size", json_object_new_int64(size));
        json_object_object_add(doc, "modified", NULL);
        json_object_object_add(doc, "etag", NULL);
        json_object_object_add(doc, "fetched_at", json_object_new_double(1700000000.5));
        json_object_object_add(doc, "sha512", sha512 ? json_object_new_string(sha512) : NULL);
        json_object_object_add(doc, "mime_type", json_object_new_string("image/x-portable-pixmap"));
        json_object_object_add(doc, "locations", json_object_get(locs));
        json_object_object_add(doc, "reference_count", json_object_new_int(0));
        json_object_object_add(doc, "last_used", json_object_new_double(1700000001.25));
        json_object_object_add(doc, "depends_on", NULL);
        json_object_object_add(doc, "transcodes", json_object_new_object());
        assert_int_equal(sf_obj_create(&ctx, "blob", uuid, doc), 0);
        assert_int_equal(sf_obj_set_state(&ctx, "blob", uuid, "created", NULL, NULL, NULL), 0);
}

/* An instance record whose first disk is on blob uuid, in state `state`. */
static void put_instance(const char *uuid, const char *state, const char *blob_uuid) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *disks = json_object_new_array(),
                                   *d = json_object_new_object();

        json_object_object_add(d, "device", json_object_new_string("vda"));
        json_object_object_add(d, "blob_uuid", json_object_new_string(blob_uuid));
        json_object_array_add(disks, json_object_get(d));
        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "name", json_object_new_string(uuid));
        json_object_object_add(doc, "namespace", json_object_new_string(ns1));
        json_object_object_add(doc, "state", json_object_new_string(state));
        json_object_object_add(doc, "disks", json_object_get(disks));
        assert_int_equal(sf_obj_create(&ctx, "instance", uuid, doc), 0);
}

static int setup(void **state) {
        char u[SF_UUID_LEN], secret[33], nodeenv[64];

        (void)state;
        sf_uuid_new(u);
        snprintf(sfx, sizeof(sfx), "%.8s", u);
        sf_random_alnum(secret, 32);
        snprintf(nodeenv, sizeof(nodeenv), "blobapitest-%s", sfx);
        setenv("SF_AUTH_SECRET", secret, 1);
        setenv("SF_NODE", nodeenv, 1);
        snprintf(storage, sizeof(storage), "/tmp/sf-blobapitest.XXXXXX");
        if (!mkdtemp(storage))
                return -1;
        setenv("SF_STORAGE", storage, 1);
        if (sf_ctx_open(&ctx, true, 5) < 0)
                return -1;
        sf_auth_set_bcrypt_cost(4);
        sf_random_alnum(sys_key, 32);
        sf_random_alnum(ns1_key, 32);
        snprintf(ns1, sizeof(ns1), "blobns-%s", sfx);
        if (sf_api_init(&ctx.cfg, ctx.bus) < 0 || sf_api_ns_ensure(&ctx, "system") < 0 ||
            sf_api_ns_set_key(&ctx, "system", "blobtest", sys_key) < 0 || sf_api_ns_ensure(&ctx, ns1) < 0 ||
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
        const char *const blobs[] = {blob, blob_nofile, blob_deleted};
        const char *const insts[] = {inst_live, inst_dead};

        (void)state;
        sf_http_stop(srv);
        srv = NULL;
        curl_global_cleanup();
        for (size_t i = 0; ctx.store && i < SF_ARRAY_SIZE(blobs); i++)
                if (blobs[i][0])
                        sf_store_purge(ctx.store, "blob", blobs[i]);
        for (size_t i = 0; ctx.store && i < SF_ARRAY_SIZE(insts); i++)
                if (insts[i][0])
                        sf_store_purge(ctx.store, "instance", insts[i]);
        sf_ctx_close(&ctx);
        if (storage[0])
                sf_rm_rf(storage);
        free(data);
        return 0;
}

/* Tokens, the blobs (a file of DATA_LEN bytes with its sha512, a record whose file is not
 * there, a deleted one) and two instances on the first blob (one healthy, one deleted). */
static void test_world(void **state) {
        char path[256], dir[256];

        (void)state;
        get_token("system", sys_key, sys_tok, sizeof(sys_tok));
        get_token(ns1, ns1_key, ns1_tok, sizeof(ns1_tok));
        sf_uuid_new(blob);
        sf_uuid_new(blob_nofile);
        sf_uuid_new(blob_deleted);
        data = malloc(DATA_LEN);
        assert_non_null(data);
        for (size_t i = 0; i < DATA_LEN; i++)
                data[i] = (unsigned char)((i * 131) ^ (i >> 9));
        memcpy(data, "P6\n", 3);
        snprintf(dir, sizeof(dir), "%s/blobs/%.2s", storage, blob);
        assert_int_equal(sf_mkdir_p(dir, 0755), 0);
        assert_int_equal(sf_blobfile_path(storage, blob, path, sizeof(path)), 0);
        assert_int_equal(sf_file_write_atomic(path, data, DATA_LEN, 0644), 0);
        assert_int_equal(sf_blobfile_sha512(path, sha), 0);
        assert_int_equal(strlen(sha), 128);
        put_blob(blob, DATA_LEN, sha);
        put_blob(blob_nofile, 10, NULL);
        put_blob(blob_deleted, 10, NULL);
        assert_int_equal(sf_obj_set_state(&ctx, "blob", blob_deleted, "deleted", NULL, NULL, NULL), 0);
        sf_uuid_new(inst_live);
        sf_uuid_new(inst_dead);
        put_instance(inst_live, "created", blob);
        put_instance(inst_dead, "deleted", blob);
}

/* The sha512 helper against a known digest (sha512 of "abc", FIPS 180-2). */
static void test_sha512_helper(void **state) {
        char path[256], out[SF_SHA512_HEX_LEN];

        (void)state;
        snprintf(path, sizeof(path), "%s/abc", storage);
        assert_int_equal(sf_file_write_atomic(path, "abc", 3, 0644), 0);
        assert_int_equal(sf_blobfile_sha512(path, out), 0);
        assert_string_equal(out, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                                 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
        assert_int_equal(sf_blobfile_sha512("/nonexistent/x", out), -ENOENT);
        assert_int_equal(sf_blobfile_path(storage, "../../etc/passwd", path, sizeof(path)), -EINVAL);
}

static void test_blob_get(void **state) {
        static const char *const keys[] = {"uuid", "state", "metadata", "version", "size", "modified",
                                           "fetched_at", "depends_on", "transcodes", "locations",
                                           "reference_count", "sha512", "last_used", "mime-type",
                                           "instances", NULL};
        char path[128], upper[SF_UUID_LEN];
        reply_t r;

        (void)state;
        snprintf(path, sizeof(path), "/blobs/%s", blob);
        /* Any namespace's token: knowing the uuid implies access (api.md §2.8). */
        for (int t = 0; t < 2; t++) {
                _cleanup_json_ json_object *o = NULL;
                json_object *inst, *locs;
                size_t i = 0;

                req(&r, "GET", path, t ? ns1_tok : sys_tok, NULL);
                o = check_json(&r, 200);
                reply_free(&r);
                json_object_object_foreach(o, k, v) {
                        (void)v;
                        if (!keys[i] || strcmp(k, keys[i]) != 0)
                                fail_msg("key %zu: want %s, got %s", i, keys[i] ? keys[i] : "(end)", k);
                        i++;
                }
                assert_null(keys[i]);
                assert_string_equal(sf_json_str(o, "uuid"), blob);
                assert_string_equal(sf_json_str(o, "state"), "created");
                assert_int_equal(sf_json_int(o, "version", 0), 6);
                assert_int_equal(sf_json_int(o, "size", 0), DATA_LEN);
                assert_string_equal(sf_json_str(o, "sha512"), sha);
                assert_string_equal(sf_json_str(o, "mime-type"), "image/x-portable-pixmap");
                locs = json_object_object_get(o, "locations");
                assert_int_equal(json_object_array_length(locs), 1);
                assert_string_equal(json_object_get_string(json_object_array_get_idx(locs, 0)), ctx.cfg.node);
                /* The healthy instance on it; the deleted one is not using it any more. */
                inst = json_object_object_get(o, "instances");
                assert_int_equal(json_object_array_length(inst), 1);
                assert_string_equal(json_object_get_string(json_object_array_get_idx(inst, 0)), inst_live);
        }
        /* Any UUID spelling names the same blob. */
        for (size_t i = 0; i <= strlen(blob); i++)
                upper[i] = (char)(blob[i] >= 'a' && blob[i] <= 'f' ? blob[i] - 32 : blob[i]);
        snprintf(path, sizeof(path), "/blobs/%s", upper);
        req(&r, "GET", path, sys_tok, NULL);
        {
                _cleanup_json_ json_object *o = check_json(&r, 200);
                assert_string_equal(sf_json_str(o, "uuid"), blob);
        }
        reply_free(&r);
        /* A record without a file still has its view; no instance uses it. */
        snprintf(path, sizeof(path), "/blobs/%s", blob_nofile);
        req(&r, "GET", path, ns1_tok, NULL);
        {
                _cleanup_json_ json_object *o = check_json(&r, 200);
                assert_null(json_object_object_get(o, "sha512"));
                assert_int_equal(json_object_array_length(json_object_object_get(o, "instances")), 0);
        }
        reply_free(&r);

        /* Not found: unknown, deleted, not a uuid. */
        {
                char unknown[SF_UUID_LEN];
                const char *const refs[] = {unknown, blob_deleted, "not-a-uuid"};
                sf_uuid_new(unknown);
                for (size_t i = 0; i < SF_ARRAY_SIZE(refs); i++) {
                        snprintf(path, sizeof(path), "/blobs/%s", refs[i]);
                        req(&r, "GET", path, sys_tok, NULL);
                        check_error(&r, 404, "blob not found");
                        reply_free(&r);
                }
        }
        snprintf(path, sizeof(path), "/blobs/%s", blob);
        req(&r, "GET", path, NULL, NULL);
        check_error(&r, 401, "Missing Authorization Header");
        reply_free(&r);
        req(&r, "GET", path, sys_tok, "{'all': true}");
        check_error(&r, 400, "get() got an unexpected keyword argument 'all'");
        reply_free(&r);
}

/* GET data with query q (may be ""); status and body into r. */
static void get_data(reply_t *r, const char *uuid, const char *q, const char *tok) {
        char path[256];

        snprintf(path, sizeof(path), "/blobs/%s/data%s%s", uuid, *q ? "?" : "", q);
        req(r, "GET", path, tok, NULL);
}

static void expect_bytes(const char *uuid, const char *q, size_t from, size_t len) {
        reply_t r;

        get_data(&r, uuid, q, sys_tok);
        if (r.status != 200)
                fail_msg("?%s: want 200, got %ld %s", q, r.status, r.body);
        assert_string_equal(r.ctype, "text/plain");
        if (r.len != len)
                fail_msg("?%s: want %zu bytes, got %zu", q, len, r.len);
        assert_memory_equal(r.body, data + from, len);
        reply_free(&r);
}

static void test_blob_data(void **state) {
        char q[128];
        reply_t r;

        (void)state;
        /* Whole, from an offset, at most limit bytes (0 = no limit), past the end. */
        expect_bytes(blob, "", 0, DATA_LEN);
        expect_bytes(blob, "offset=0", 0, DATA_LEN);
        expect_bytes(blob, "offset=10", 10, DATA_LEN - 10);
        expect_bytes(blob, "offset=10&limit=5", 10, 5);
        expect_bytes(blob, "limit=3", 0, 3);
        expect_bytes(blob, "offset=7&limit=0", 7, DATA_LEN - 7);
        snprintf(q, sizeof(q), "offset=%d&limit=100", DATA_LEN - 40);
        expect_bytes(blob, q, DATA_LEN - 40, 40);
        snprintf(q, sizeof(q), "offset=%d", DATA_LEN);
        expect_bytes(blob, q, 0, 0);
        expect_bytes(blob, "offset=99999999999", 0, 0);
        /* The way upstream's client reads it with blob-data-limit: chunks until a short one. */
        {
                size_t got = 0, chunk = 1024 * 1024;
                for (;;) {
                        snprintf(q, sizeof(q), "offset=%zu&limit=%zu", got, chunk);
                        get_data(&r, blob, q, sys_tok);
                        assert_int_equal(r.status, 200);
                        assert_memory_equal(r.body, data + got, r.len);
                        size_t n = r.len;
                        got += n;
                        reply_free(&r);
                        if (n < chunk)
                                break;
                }
                assert_int_equal(got, DATA_LEN);
        }
        /* Any namespace's token. */
        get_data(&r, blob, "limit=2", ns1_tok);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, 2);
        assert_memory_equal(r.body, "P6", 2);
        reply_free(&r);

        /* Bad query values: 400, before the blob is even looked up. */
        {
                static const struct {
                        const char *q, *msg;
                } bad[] = {
                        {"offset=x", "offset is not an integer"},
                        {"offset=", "offset is not an integer"},
                        {"offset=1.5", "offset is not an integer"},
                        {"offset=-1", "offset must not be negative"},
                        {"limit=abc", "limit is not an integer"},
                        {"limit=-5", "limit must not be negative"},
                        {"offset=99999999999999999999", "offset is not an integer"},
                };
                char unknown[SF_UUID_LEN];
                sf_uuid_new(unknown);
                for (size_t i = 0; i < SF_ARRAY_SIZE(bad); i++) {
                        get_data(&r, blob, bad[i].q, sys_tok);
                        check_error(&r, 400, bad[i].msg);
                        reply_free(&r);
                        get_data(&r, unknown, bad[i].q, sys_tok);
                        check_error(&r, 400, bad[i].msg);
                        reply_free(&r);
                }
                /* Not found; a record without a local file is missing. */
                get_data(&r, unknown, "", sys_tok);
                check_error(&r, 404, "blob not found");
                reply_free(&r);
        }
        get_data(&r, blob_deleted, "", sys_tok);
        check_error(&r, 404, "blob not found");
        reply_free(&r);
        get_data(&r, "not-a-uuid", "", sys_tok);
        check_error(&r, 404, "blob not found");
        reply_free(&r);
        get_data(&r, blob_nofile, "", sys_tok);
        check_error(&r, 404, "blob missing");
        reply_free(&r);
        get_data(&r, blob_nofile, "offset=3", ns1_tok);
        check_error(&r, 404, "blob missing");
        reply_free(&r);
        /* A token is needed. */
        get_data(&r, blob, "", NULL);
        check_error(&r, 401, "Missing Authorization Header");
        reply_free(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_world),
                cmocka_unit_test(test_sha512_helper),
                cmocka_unit_test(test_blob_get),
                cmocka_unit_test(test_blob_data),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
