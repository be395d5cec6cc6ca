/* sf-api: blobs (api.md §2.8).
 *   GET /blobs/<uuid>        the blob view (§4.2) plus the healthy instances using it
 *   GET /blobs/<uuid>/data   the bytes of this node's copy, ?offset=N&limit=M
 * Any valid token may read any blob: upstream checks no namespace, since knowing the
 * uuid implies access.  Blobs are addressed by uuid only: anything else is not found.
 *
 * sf-api runs on the node that holds the blobs it serves (sf-compute writes screenshots,
 * sf-blob downloads images, into the same SF_STORAGE), so the data route reads the local
 * file; upstream would proxy to another node in `locations`, which a single node never
 * needs.  The file is handed to libmicrohttpd as is (sendfile), never read into memory. */
#include "api.h"

#include "blobfile.h"
#include "keys.h"
#include "state.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Upstream's blob data mimetype (api.md §1.3), whatever the bytes are. */
#define BLOB_DATA_CONTENT_TYPE "text/plain"

/* The blob record of the uuid in params[0], after authenticating; 404 `blob not found`
 * for a malformed uuid, an unknown blob or a deleted one.  0 with *ret_doc and the
 * canonical uuid, or a negative errno with resp filled (or -EIO/-EAGAIN unfilled: 500). */
static int blob_find(sf_http_req_t *req, sf_http_resp_t *resp, json_object **ret_doc, char uuid[SF_UUID_LEN]) {
        sf_ctx_t *ctx = sf_api_ctx();
        json_object *doc = NULL;
        int r;

        if (!sf_uuid_parse(req->params[0], uuid))
                return sf_http_error(resp, 404, "blob not found"), -ENOENT;
        r = sf_store_get(ctx->store, "blob", uuid, &doc, NULL);
        if (r == -ENOENT)
                return sf_http_error(resp, 404, "blob not found"), r;
        if (r < 0)
                return r;
        if (strcmp(sf_json_str(doc, "state") ?: "", "deleted") == 0) {
                json_object_put(doc);
                return sf_http_error(resp, 404, "blob not found"), -ENOENT;
        }
        *ret_doc = doc;
        return 0;
}

static void view_copy(json_object *to, json_object *from, const char *key, const char *as) {
        json_object *v = NULL;

        json_object_object_get_ex(from, key, &v);
        json_object_object_add(to, as, v ? json_object_get(v) : NULL);
}

/* Upstream's Blob.external_view(): the common head, the blob's fields, then its `info`
 * (qemu-img info keys and `mime-type`; sf records the MIME type as mime_type). */
static json_object *blob_view(json_object *doc) {
        static const char *const keys[] = {"size", "modified", "fetched_at", "depends_on", "transcodes",
                                           "locations", "reference_count", "sha512", "last_used"};
        json_object *v = json_object_new_object(), *md = NULL, *info = NULL;

        view_copy(v, doc, "uuid", "uuid");
        view_copy(v, doc, "state", "state");
        json_object_object_get_ex(doc, "metadata", &md);
        json_object_object_add(v, "metadata", json_object_is_type(md, json_type_object) ? json_object_get(md)
                                                                                      : json_object_new_object());
        json_object_object_add(v, "version", json_object_new_int(SF_VERSION_BLOB));
        for (size_t i = 0; i < SF_ARRAY_SIZE(keys); i++)
                view_copy(v, doc, keys[i], keys[i]);
        if (json_object_object_get_ex(doc, "info", &info) && json_object_is_type(info, json_type_object)) {
                json_object_object_foreach(info, k, val)
                        json_object_object_add(v, k, json_object_get(val));
        }
        if (sf_json_str(doc, "mime_type") && *sf_json_str(doc, "mime_type"))
                view_copy(v, doc, "mime_type", "mime-type");
        return v;
}

/* Is the instance doc healthy (initial, preflight, creating, created) with a disk on blob
 * uuid?  Upstream's instance_usage_for_blob_uuid asks this of every instance. */
static bool instance_uses_blob(json_object *doc, const char *uuid) {
        static const char *const healthy[] = {"initial", "preflight", "creating", "created"};
        const char *st = sf_json_str(doc, "state") ?: "";
        json_object *disks = NULL;
        bool ok = false;

        for (size_t i = 0; i < SF_ARRAY_SIZE(healthy); i++)
                ok |= strcmp(st, healthy[i]) == 0;
        if (!ok || !json_object_object_get_ex(doc, "disks", &disks) || !json_object_is_type(disks, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(disks); i++)
                if (strcmp(sf_json_str(json_object_array_get_idx(disks, i), "blob_uuid") ?: "", uuid) == 0)
                        return true;
        return false;
}

/* The uuids of the instances using blob uuid: one index read and one pipelined read of
 * the instances; only documents that mention the uuid at all are parsed. */
static int blob_instances(sf_ctx_t *ctx, const char *uuid, json_object **ret) {
        _cleanup_json_ json_object *list = json_object_new_array();
        _cleanup_free_ const char **types = NULL;
        redisReply **rep = NULL;
        char **ids = NULL;
        size_t n = 0;
        int r;

        r = sf_store_index(ctx->store, "instance", "all", NULL, &ids, &n);
        if (r < 0)
                return r;
        types = calloc(n ? n : 1, sizeof(*types));
        if (!list || !types) {
                r = -ENOMEM;
                goto cleanup;
        }
        for (size_t i = 0; i < n; i++)
                types[i] = "instance";
        if (n) {
                r = sf_store_read_many(ctx->store, n, types, (const char *const *)ids, true, &rep);
                if (r < 0)
                        goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *doc = NULL;
                const char *text = NULL;

                if (sf_store_reply_obj(rep[i], "instance", ids[i], NULL, &text, NULL) < 0 || !text ||
                    !strstr(text, uuid) || sf_store_doc_parse(text, "instance", ids[i], &doc) < 0)
                        continue;
                if (instance_uses_blob(doc, uuid))
                        json_object_array_add(list, json_object_new_string(ids[i]));
        }
        *ret = list;
        list = NULL;
cleanup:
        if (rep)
                sf_store_replies_free(rep, n);
        sf_strv_free(ids);
        return r;
}

int sf_api_blob_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {NULL};
        _cleanup_json_ json_object *doc = NULL;
        json_object *instances = NULL, *view;
        char uuid[SF_UUID_LEN];
        sf_caller_t caller;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        r = blob_find(req, resp, &doc, uuid);
        if (r < 0)
                return r;
        r = blob_instances(sf_api_ctx(), uuid, &instances);
        if (r < 0)
                return r;
        view = blob_view(doc);
        json_object_object_add(view, "instances", instances);
        return sf_http_json(resp, 200, view);
}

/* A query argument as a non-negative integer (upstream's webargs Int, missing = 0): 0, or
 * -EINVAL with the 400 filled in. */
static int query_uint(sf_http_req_t *req, sf_http_resp_t *resp, const char *name, uint64_t *ret) {
        const char *v = req->conn ? MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
        char *end = NULL;
        long long n;

        *ret = 0;
        if (!v)
                return 0;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (!*v || *end || errno == ERANGE || !(v[0] == '-' || v[0] == '+' || (v[0] >= '0' && v[0] <= '9')))
                return sf_http_error(resp, 400, "%s is not an integer", name), -EINVAL;
        if (n < 0)
                return sf_http_error(resp, 400, "%s must not be negative", name), -EINVAL;
        *ret = (uint64_t)n;
        return 0;
}

int sf_api_blob_data(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_close_ int fd = -1;
        char uuid[SF_UUID_LEN], path[PATH_MAX + 64];
        uint64_t offset, limit, size;
        sf_caller_t caller;
        struct stat st;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        /* Upstream parses the query before it looks the blob up. */
        if (query_uint(req, resp, "offset", &offset) < 0 || query_uint(req, resp, "limit", &limit) < 0)
                return 0;
        r = blob_find(req, resp, &doc, uuid);
        if (r < 0)
                return r;
        r = sf_blobfile_path(ctx->cfg.storage, uuid, path, sizeof(path));
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT)
                return -errno;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return sf_http_error(resp, 404, "blob missing");
        /* Past the end is an empty answer, as upstream's seek-then-read gives. */
        size = offset < (uint64_t)st.st_size ? (uint64_t)st.st_size - offset : 0;
        if (limit && size > limit)
                size = limit;
        r = sf_http_file(resp, 200, BLOB_DATA_CONTENT_TYPE, fd, size ? offset : 0, size);
        fd = -1; /* consumed */
        return r;
}
