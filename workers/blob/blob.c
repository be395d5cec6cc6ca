#include "blob.h"

#include "event.h"
#include "fetch.h"
#include "lock.h"
#include "log.h"
#include "object.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define LOCK_TTL_MS          30000
#define LOCK_WAIT_MS         3000
#define DEFAULT_MAX_VERSIONS 3
#define BLOB_NS              "system" /* blobs are infrastructure, shared by artifacts */

/* One blob.fetch under the artifact lock. */
typedef struct job {
        sf_work_t *w;
        sf_ctx_t *ctx;
        const char *auuid;
        sf_fence_t fence;
        char ns[128];
        const char *url;
} job_t;

int sf_blob_path(const char *storage, const char *uuid, char *out, size_t len) {
        char u[SF_UUID_LEN];

        /* uuids come from documents: never let one name a path outside blobs/ */
        if (!uuid || !sf_uuid_parse(uuid, u))
                return -EINVAL;
        if (snprintf(out, len, "%s/blobs/%.2s/%s", storage, u, u) >= (int)len)
                return -ENAMETOOLONG;
        return 0;
}

/* blobs/ and blobs/<xx>/ must be 0755 whatever the umask: qemu (libvirt-qemu) reads them. */
static int ensure_blob_dir(const char *storage, const char *uuid) {
        char dir[PATH_MAX];
        int r;

        if (snprintf(dir, sizeof(dir), "%s/blobs/%.2s", storage, uuid) >= (int)sizeof(dir))
                return -ENAMETOOLONG;
        r = sf_mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        if (chmod(dir, 0755) < 0)
                return -errno;
        *strrchr(dir, '/') = 0;
        return chmod(dir, 0755) < 0 ? -errno : 0;
}

/* A retry of the same intent must pick the same blob, so the uuid is a hash of the intent. */
static void derive_uuid(const char *intent_id, const char *auuid, char out[SF_UUID_LEN]) {
        _cleanup_free_ char *name = sf_strdupf("sf-blob:%s:%s", intent_id, auuid);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;

        if (!name || EVP_Digest(name, strlen(name), md, &mdlen, EVP_sha512(), NULL) != 1) {
                sf_uuid_new(out);
                return;
        }
        md[6] = (md[6] & 0x0f) | 0x80; /* version 8: custom, name-based */
        md[8] = (md[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(out, SF_UUID_LEN,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
                 md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11],
                 md[12], md[13], md[14], md[15]);
}

static bool array_has_str(json_object *arr, const char *s) {
        if (!arr || !json_object_is_type(arr, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                const char *v = json_object_get_string(json_object_array_get_idx(arr, i));
                if (v && strcmp(v, s) == 0)
                        return true;
        }
        return false;
}

static json_object *str_or_null(const char *s) { return s && *s ? json_object_new_string(s) : NULL; }

/* The current version's blob uuid, if the artifact has one. */
static bool current_blob(json_object *art, char out[SF_UUID_LEN]) {
        json_object *blobs, *ver;
        char key[24];

        snprintf(key, sizeof(key), "%lld", (long long)sf_json_int(art, "index", 0));
        return sf_json_int(art, "index", 0) > 0 && json_object_object_get_ex(art, "blobs", &blobs) &&
               json_object_object_get_ex(blobs, key, &ver) && sf_uuid_parse(sf_json_str(ver, "uuid"), out);
}

/* Is blob uuid created, located on this node and its file there?  *ret_doc gets the doc
 * when it exists; *ret_listed tells whether it names this node. */
static bool blob_is_local(job_t *j, const char *uuid, json_object **ret_doc, bool *ret_listed) {
        json_object *doc = NULL, *locs = NULL;
        char path[PATH_MAX];
        struct stat sb;
        const char *st;
        bool listed;

        *ret_listed = false;
        if (sf_store_get(j->ctx->store, "blob", uuid, &doc, NULL) < 0)
                return false;
        *ret_doc = doc;
        json_object_object_get_ex(doc, "locations", &locs);
        listed = array_has_str(locs, j->ctx->cfg.node);
        *ret_listed = listed;
        st = sf_json_str(doc, "state");
        return listed && st && strcmp(st, "created") == 0 &&
               sf_blob_path(j->ctx->cfg.storage, uuid, path, sizeof(path)) == 0 &&
               stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ---- document mutations (all fenced by the artifact lock) ---- */

static int mut_set_fetching(json_object *doc, void *ud) {
        const char *cur = sf_json_str(doc, "fetching_blob");

        if (cur && strcmp(cur, ud) == 0)
                return 1;
        json_object_object_add(doc, "fetching_blob", json_object_new_string(ud));
        return 0;
}

static int mut_clear_fetching(json_object *doc, void *ud) {
        (void)ud;
        if (!json_object_object_get_ex(doc, "fetching_blob", NULL))
                return 1;
        json_object_object_del(doc, "fetching_blob");
        return 0;
}

static void clear_fetching(job_t *j) {
        int r = sf_store_update(j->ctx->store, "artifact", j->auuid, &j->fence, mut_clear_fetching,
                                NULL, NULL);
        if (r < 0)
                log_warn("artifact %s: cannot clear fetching_blob: %s", j->auuid, strerror(-r));
}

typedef struct blob_fields {
        const sf_blob_fetch_result_t *res; /* NULL: only last_used */
        const char *node;
        double now;
} blob_fields_t;

static int mut_blob_fields(json_object *doc, void *ud) {
        blob_fields_t *f = ud;
        json_object *locs;

        json_object_object_add(doc, "last_used", json_object_new_double(f->now));
        if (!f->res)
                return 0;
        /* The server's current validators, so the next conditional request can get a 304. */
        json_object_object_add(doc, "modified", str_or_null(f->res->last_modified));
        json_object_object_add(doc, "etag", str_or_null(f->res->etag));
        if (!f->node)
                return 0;
        json_object_object_add(doc, "size", json_object_new_int64((int64_t)f->res->size));
        json_object_object_add(doc, "sha512", json_object_new_string(f->res->sha512));
        json_object_object_add(doc, "fetched_at", json_object_new_double(f->now));
        if (!json_object_object_get_ex(doc, "locations", &locs) ||
            !json_object_is_type(locs, json_type_array)) {
                locs = json_object_new_array();
                json_object_object_add(doc, "locations", locs);
        }
        if (!array_has_str(locs, f->node))
                json_object_array_add(locs, json_object_new_string(f->node));
        if (!json_object_object_get_ex(doc, "reference_count", NULL))
                json_object_object_add(doc, "reference_count", json_object_new_int(0));
        return 0;
}

static int mut_drop_location(json_object *doc, void *ud) {
        json_object *locs, *keep;

        if (!json_object_object_get_ex(doc, "locations", &locs) || !array_has_str(locs, ud))
                return 1;
        keep = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(locs); i++) {
                json_object *v = json_object_array_get_idx(locs, i);
                if (strcmp(json_object_get_string(v), ud) != 0)
                        json_object_array_add(keep, json_object_get(v));
        }
        json_object_object_add(doc, "locations", keep);
        return 0;
}

typedef struct version {
        const char *buuid;
        uint64_t size;
        int64_t index;  /* out: the version now current */
        int dropped;    /* out: old versions removed */
} version_t;

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static int mut_add_version(json_object *doc, void *ud) {
        version_t *v = ud;
        json_object *blobs, *ver;
        const char *st = sf_json_str(doc, "state");
        int64_t top = sf_json_int(doc, "index", 0), keep, keys[1024];
        size_t n = 0;
        char key[24];

        if (st && (strcmp(st, "deleted") == 0 || strcmp(st, "error") == 0))
                return -ECANCELED;
        if (!json_object_object_get_ex(doc, "blobs", &blobs) ||
            !json_object_is_type(blobs, json_type_object)) {
                blobs = json_object_new_object();
                json_object_object_add(doc, "blobs", blobs);
        }
        json_object_object_foreach(blobs, k, val) {
                int64_t i = strtoll(k, NULL, 10);
                const char *u = sf_json_str(val, "uuid");
                if (u && strcmp(u, v->buuid) == 0) {
                        /* Already recorded by an attempt that died before finishing. */
                        v->index = i;
                        return mut_clear_fetching(doc, NULL);
                }
                if (i > top)
                        top = i;
                if (n < SF_ARRAY_SIZE(keys))
                        keys[n++] = i;
        }
        v->index = top + 1;
        snprintf(key, sizeof(key), "%lld", (long long)v->index);
        ver = json_object_new_object();
        json_object_object_add(ver, "uuid", json_object_new_string(v->buuid));
        json_object_object_add(ver, "size", json_object_new_int64((int64_t)v->size));
        json_object_object_add(ver, "reference_count", json_object_new_int(0));
        json_object_object_add(ver, "depends_on", NULL);
        json_object_object_add(blobs, key, ver);
        json_object_object_add(doc, "index", json_object_new_int64(v->index));
        json_object_object_del(doc, "fetching_blob");

        /* Keep the newest max_versions (the new one included).  The dropped blobs' files
         * and docs stay on disk: there is no reaper yet (docs/architecture.md "Not done
         * yet"), so an instance still using an old version is never pulled from. */
        if (n < SF_ARRAY_SIZE(keys))
                keys[n++] = v->index;
        qsort(keys, n, sizeof(keys[0]), cmp_i64);
        keep = sf_json_int(doc, "max_versions", DEFAULT_MAX_VERSIONS);
        if (keep < 1)
                keep = DEFAULT_MAX_VERSIONS;
        for (size_t i = 0; i + (size_t)keep < n; i++) {
                snprintf(key, sizeof(key), "%lld", (long long)keys[i]);
                json_object_object_del(blobs, key);
                v->dropped++;
        }
        return 0;
}

/* ---- steps ---- */

static void on_progress(void *ud) { sf_work_progress(ud); }

static int set_artifact_error(job_t *j, const char *msg) {
        int r = sf_obj_set_state(j->ctx, "artifact", j->auuid, "error", msg, &j->fence, NULL);

        if (r < 0)
                log_warn("artifact %s: cannot record error: %s", j->auuid, strerror(-r));
        sf_work_error(j->w, "%s", msg);
        return SF_WORK_FAIL;
}

/* The blob doc: written in state initial with all its fields, then moved to created, so
 * its events read like every other object's. */
static int commit_blob(job_t *j, const char *buuid, const sf_blob_fetch_result_t *res) {
        _cleanup_json_ json_object *doc = json_object_new_object();
        blob_fields_t f = {.res = res, .node = j->ctx->cfg.node, .now = sf_now()};
        json_object *locs = json_object_new_array();
        int r;

        json_object_array_add(locs, json_object_new_string(j->ctx->cfg.node));
        json_object_object_add(doc, "uuid", json_object_new_string(buuid));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "state_updated", json_object_new_double(f.now));
        json_object_object_add(doc, "namespace", json_object_new_string(BLOB_NS));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "size", json_object_new_int64((int64_t)res->size));
        json_object_object_add(doc, "modified", str_or_null(res->last_modified));
        json_object_object_add(doc, "etag", str_or_null(res->etag));
        json_object_object_add(doc, "fetched_at", json_object_new_double(f.now));
        json_object_object_add(doc, "sha512", json_object_new_string(res->sha512));
        json_object_object_add(doc, "locations", locs);
        json_object_object_add(doc, "reference_count", json_object_new_int(0));
        json_object_object_add(doc, "last_used", json_object_new_double(f.now));
        json_object_object_add(doc, "depends_on", NULL);
        json_object_object_add(doc, "transcodes", json_object_new_object());

        r = sf_store_put(j->ctx->store, "blob", buuid, 0, doc, &j->fence, NULL);
        if (r == 0)
                sf_event_emit(j->ctx, "blob", buuid, BLOB_NS, "audit", "db record created", NULL, -1);
        else if (r == -ESTALE) /* an earlier attempt wrote it: refresh it with this download */
                r = sf_store_update(j->ctx->store, "blob", buuid, &j->fence, mut_blob_fields, &f, NULL);
        if (r < 0)
                return r;
        return sf_obj_set_state(j->ctx, "blob", buuid, "created", NULL, &j->fence, NULL);
}

/* Blob buuid (complete on this node) becomes the artifact's newest version. */
static int commit_version(job_t *j, const char *buuid, uint64_t size, const char *sha512,
                          double t0) {
        _cleanup_json_ json_object *extra = json_object_new_object();
        version_t v = {.buuid = buuid, .size = size};
        char msg[128];
        int r;

        r = sf_store_update(j->ctx->store, "artifact", j->auuid, &j->fence, mut_add_version, &v, NULL);
        if (r == -ECANCELED || r == -ENOENT) {
                log_info("artifact %s went away during the fetch; blob %s left unreferenced", j->auuid,
                         buuid);
                return SF_WORK_DONE;
        }
        if (r == 0)
                r = sf_obj_set_state(j->ctx, "artifact", j->auuid, "created", NULL, &j->fence, NULL);
        if (r < 0) {
                sf_work_error(j->w, "recording artifact %s version: %s", j->auuid,
                              r == -ENOLCK ? "lost the artifact lock" : strerror(-r));
                return SF_WORK_RETRY;
        }
        json_object_object_add(extra, "blob_uuid", json_object_new_string(buuid));
        json_object_object_add(extra, "index", json_object_new_int64(v.index));
        json_object_object_add(extra, "sha512", json_object_new_string(sha512));
        json_object_object_add(extra, "url", json_object_new_string(j->url));
        snprintf(msg, sizeof(msg), "fetched image, %llu bytes", (unsigned long long)size);
        sf_event_emit(j->ctx, "artifact", j->auuid, j->ns, "status", msg, extra, sf_now() - t0);
        if (v.dropped > 0) {
                snprintf(msg, sizeof(msg), "dropped %d old version(s) beyond max_versions", v.dropped);
                sf_event_emit(j->ctx, "artifact", j->auuid, j->ns, "status", msg, NULL, -1);
        }
        log_info("artifact %s: version %lld = blob %s (%llu bytes)", j->auuid, (long long)v.index,
                 buuid, (unsigned long long)size);
        return SF_WORK_DONE;
}

/* Which blob this attempt writes.  A blob recorded in fetching_blob by an earlier attempt
 * is reused (it may even be complete: then *ret_done gets its doc); otherwise one derived
 * from the intent.  It is recorded before any byte is written, so a crash never leaves a
 * file that no document names. */
static int choose_blob(job_t *j, json_object *art, char buuid[SF_UUID_LEN], json_object **ret_done) {
        _cleanup_json_ json_object *bdoc = NULL;
        const char *fb = sf_json_str(art, "fetching_blob"), *st;
        json_object *blobs;
        bool listed, usable = false;
        int r;

        if (fb && !sf_uuid_parse(fb, buuid))
                fb = NULL;
        if (fb) {
                if (blob_is_local(j, buuid, &bdoc, &listed)) {
                        *ret_done = json_object_get(bdoc);
                        return 0;
                }
                st = bdoc ? sf_json_str(bdoc, "state") : NULL;
                usable = !bdoc || (st && (strcmp(st, "initial") == 0 || strcmp(st, "created") == 0));
        }
        if (!fb)
                derive_uuid(j->w->intent->id, j->auuid, buuid);
        else if (!usable) /* its doc went elsewhere (error, deleted): start afresh */
                sf_uuid_new(buuid);
        /* Never write over a file an existing version points at. */
        if (json_object_object_get_ex(art, "blobs", &blobs)) {
                json_object_object_foreach(blobs, k, val) {
                        const char *u = sf_json_str(val, "uuid");
                        (void)k;
                        if (u && strcmp(u, buuid) == 0)
                                sf_uuid_new(buuid);
                }
        }
        r = sf_store_update(j->ctx->store, "artifact", j->auuid, &j->fence, mut_set_fetching, buuid,
                            NULL);
        return r;
}

static bool transient_status(long status) { return status == 408 || status == 429 || status >= 500; }

static int fetch_failed(job_t *j, int r, const sf_blob_fetch_result_t *res, int64_t index,
                        bool cached) {
        char msg[512], ev[600];
        /* The limits are policy, not luck: another attempt would end the same way. */
        bool http = r == -EREMOTEIO, permanent = r == -EPROTONOSUPPORT || r == -EINVAL || r == -EACCES ||
                                                 r == -EFBIG || r == -ETIME;

        if (http)
                snprintf(msg, sizeof(msg), "image fetch failed: HTTP %ld for %s", res->http_status,
                         j->url);
        else
                snprintf(msg, sizeof(msg), "image fetch failed: %s (%s)", res->error, j->url);
        clear_fetching(j); /* nothing of this attempt is left on disk */
        if (!http && !permanent) {
                sf_work_error(j->w, "%s", msg);
                return SF_WORK_RETRY;
        }
        if (index > 0) {
                /* Versions exist: the artifact stays usable; only this node may lack it. */
                snprintf(ev, sizeof(ev), "%s; keeping version %lld", msg, (long long)index);
                sf_event_emit(j->ctx, "artifact", j->auuid, j->ns, "status", ev, NULL, -1);
                log_warn("artifact %s: %s", j->auuid, ev);
                if (cached)
                        return SF_WORK_DONE;
                sf_work_error(j->w, "%s", msg);
                return SF_WORK_FAIL;
        }
        if (http && transient_status(res->http_status)) {
                sf_work_error(j->w, "%s", msg);
                return SF_WORK_RETRY;
        }
        return set_artifact_error(j, msg);
}

static int fetch_locked(job_t *j) {
        sf_work_t *w = j->w;
        sf_store_t *s = j->ctx->store;
        _cleanup_json_ json_object *art = NULL, *cur = NULL, *done = NULL;
        char cur_uuid[SF_UUID_LEN] = "", buuid[SF_UUID_LEN], dest[PATH_MAX], ev[256];
        sf_blob_fetch_result_t res = {0};
        sf_blob_fetch_limits_t limits = {.timeout_s = j->ctx->cfg.download_timeout_s,
                                         .max_bytes = j->ctx->cfg.download_max_bytes,
                                         .stop = w->stop};
        sf_netpolicy_t policy;
        double t0 = sf_now();
        bool cached = false, listed = false;
        const char *st, *cur_sha;
        int64_t index;
        int r;

        r = sf_store_get(s, "artifact", j->auuid, &art, NULL);
        if (r == -ENOENT) {
                log_info("artifact %s is gone; nothing to fetch", j->auuid);
                return SF_WORK_DONE;
        }
        if (r < 0) {
                sf_work_error(w, "reading artifact %s: %s", j->auuid, strerror(-r));
                return SF_WORK_RETRY;
        }
        st = sf_json_str(art, "state");
        if (st && strcmp(st, "deleted") == 0)
                return SF_WORK_DONE;
        if (st && strcmp(st, "error") == 0) {
                sf_work_error(w, "artifact %s is in state error", j->auuid);
                return SF_WORK_FAIL;
        }
        snprintf(j->ns, sizeof(j->ns), "%s", sf_json_str(art, "namespace") ? sf_json_str(art, "namespace") : "");
        j->url = sf_json_str(art, "source_url");
        if (!sf_blob_url_ok(j->url)) {
                snprintf(ev, sizeof(ev), "image fetch failed: unsupported source URL %.160s (only http and https)",
                         j->url ? j->url : "(none)");
                return set_artifact_error(j, ev);
        }
        index = sf_json_int(art, "index", 0);
        if (current_blob(art, cur_uuid)) {
                cached = blob_is_local(j, cur_uuid, &cur, &listed);
                if (!cached && listed) {
                        log_warn("blob %s: listed on %s but its file is missing; dropping the location",
                                 cur_uuid, j->ctx->cfg.node);
                        sf_store_update(s, "blob", cur_uuid, &j->fence, mut_drop_location,
                                        j->ctx->cfg.node, NULL);
                }
        }

        r = choose_blob(j, art, buuid, &done);
        if (r < 0) {
                sf_work_error(w, "recording the blob to fetch for artifact %s: %s", j->auuid, strerror(-r));
                return SF_WORK_RETRY;
        }
        if (done) /* an earlier attempt stored and recorded it, then died */
                return commit_version(j, buuid, (uint64_t)sf_json_int(done, "size", 0),
                                      sf_json_str(done, "sha512") ? sf_json_str(done, "sha512") : "", t0);

        r = sf_blob_path(j->ctx->cfg.storage, buuid, dest, sizeof(dest));
        if (r == 0)
                r = ensure_blob_dir(j->ctx->cfg.storage, buuid);
        if (r < 0) {
                sf_work_error(w, "blob store %s/blobs: %s", j->ctx->cfg.storage, strerror(-r));
                return SF_WORK_RETRY;
        }
        if (sf_netpolicy_init(&policy, &j->ctx->cfg) < 0) {
                clear_fetching(j);
                sf_work_error(w, "SF_DOWNLOAD_ALLOW is malformed");
                return SF_WORK_RETRY;
        }
        limits.policy = &policy;
        log_info("artifact %s: fetching %s%s", j->auuid, j->url, cached ? " (conditional)" : "");
        r = sf_blob_fetch_url(j->url, dest, cached ? sf_json_str(cur, "etag") : NULL,
                              cached ? sf_json_str(cur, "modified") : NULL, &limits, &res, on_progress, w);
        if (r < 0)
                return fetch_failed(j, r, &res, index, cached);

        cur_sha = cached ? sf_json_str(cur, "sha512") : NULL;
        if (res.not_modified || (cur_sha && strcmp(cur_sha, res.sha512) == 0)) {
                blob_fields_t f = {.res = res.not_modified ? NULL : &res, .now = sf_now()};

                if (!cached) {
                        clear_fetching(j);
                        sf_work_error(w, "image fetch: HTTP 304 to an unconditional request");
                        return SF_WORK_RETRY;
                }
                if (!res.not_modified)
                        unlink(dest); /* same bytes as the current version */
                r = sf_store_update(s, "blob", cur_uuid, &j->fence, mut_blob_fields, &f, NULL);
                if (r < 0)
                        log_warn("blob %s: cannot update last_used: %s", cur_uuid, strerror(-r));
                clear_fetching(j);
                snprintf(ev, sizeof(ev), "image unchanged (%s), using version %lld",
                         res.not_modified ? "HTTP 304" : "same sha512", (long long)index);
                sf_event_emit(j->ctx, "artifact", j->auuid, j->ns, "status", ev, NULL, sf_now() - t0);
                /* Normally already created; converges an artifact left in initial. */
                r = sf_obj_set_state(j->ctx, "artifact", j->auuid, "created", NULL, &j->fence, NULL);
                if (r < 0 && r != -EINVAL) {
                        sf_work_error(w, "artifact %s: %s", j->auuid, strerror(-r));
                        return SF_WORK_RETRY;
                }
                return SF_WORK_DONE;
        }

        r = commit_blob(j, buuid, &res);
        if (r < 0) {
                sf_work_error(w, "recording blob %s: %s", buuid,
                              r == -ENOLCK ? "lost the artifact lock" : strerror(-r));
                return SF_WORK_RETRY;
        }
        return commit_version(j, buuid, res.size, res.sha512, t0);
}

static int lock_artifact(sf_ctx_t *ctx, const char *auuid, int wait_ms, sf_lock_t **ret) {
        char name[96];

        snprintf(name, sizeof(name), "artifact/%s", auuid);
        return sf_lock_acquire_worker(ctx->store, name, ctx->cfg.node, LOCK_TTL_MS, wait_ms, ret);
}

int sf_blob_handle_fetch(sf_work_t *w) {
        job_t j = {.w = w, .ctx = w->ctx, .auuid = w->intent->object_uuid};
        sf_lock_t *lock = NULL;
        int r, res;

        r = lock_artifact(w->ctx, j.auuid, LOCK_WAIT_MS, &lock);
        if (r == -EBUSY) {
                /* another fetch of the same artifact (a long download, maybe): not a failure */
                sf_work_error(w, "artifact %s is being fetched by someone else", j.auuid);
                w->wait_ms = 2000;
                return SF_WORK_WAIT;
        }
        if (r < 0) {
                sf_work_error(w, "locking artifact %s: %s", j.auuid, strerror(-r));
                return SF_WORK_RETRY;
        }
        j.fence = sf_lock_fence(lock);
        res = fetch_locked(&j);
        sf_lock_release(w->ctx->store, lock);
        return res;
}

void sf_blob_fetch_failed(sf_work_t *w, const char *message) {
        const char *auuid = w->intent->object_uuid, *st;
        _cleanup_json_ json_object *art = NULL;
        _cleanup_free_ char *msg = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        int64_t index;

        /* If somebody holds the lock, that fetch decides the artifact's fate. */
        if (lock_artifact(w->ctx, auuid, LOCK_WAIT_MS, &lock) < 0) {
                log_warn("artifact %s: fetch failed (%s); lock busy, leaving its state alone", auuid,
                         message);
                goto cleanup;
        }
        fence = sf_lock_fence(lock);
        if (sf_store_get(w->ctx->store, "artifact", auuid, &art, NULL) < 0)
                goto cleanup;
        st = sf_json_str(art, "state");
        if (st && (strcmp(st, "error") == 0 || strcmp(st, "deleted") == 0))
                goto cleanup;
        index = sf_json_int(art, "index", 0);
        msg = strncmp(message, "image fetch failed", 18) == 0 ? strdup(message)
                                                              : sf_strdupf("image fetch failed: %s", message);
        if (!msg)
                goto cleanup;
        if (index > 0) {
                /* A cached version is still good: keep serving it rather than break users. */
                _cleanup_free_ char *ev = sf_strdupf("%s; keeping version %lld", msg, (long long)index);
                sf_event_emit(w->ctx, "artifact", auuid, sf_json_str(art, "namespace"), "status",
                              ev ? ev : msg, NULL, -1);
                goto cleanup;
        }
        sf_obj_set_state(w->ctx, "artifact", auuid, "error", msg, &fence, NULL);
cleanup:
        sf_lock_release(w->ctx->store, lock);
}

void sf_blob_tick(sf_ctx_t *ctx, void *user) {
        int n = 0;

        (void)user;
        if (sf_intent_redrive(ctx, ctx->cfg.node, "blob", ctx->cfg.redrive_after_s, &n) == 0 && n > 0)
                log_info("re-drove %d pending blob intent(s)", n);
}

const sf_worker_t *sf_blob_worker(void) {
        static const sf_handler_t handlers[] = {{
                .kind = "blob.fetch",
                .fn = sf_blob_handle_fetch,
                .on_fail = sf_blob_fetch_failed,
                /* WAIT only happens behind another fetch of the same artifact, which may
                 * legitimately run for a long download. */
                .deadline_s = 3600,
        }};
        static const sf_worker_t worker = {
                .name = "blob",
                .handlers = handlers,
                .nhandlers = SF_ARRAY_SIZE(handlers),
                .tick = sf_blob_tick,
                .tick_ms = 5000,
        };
        return &worker;
}
