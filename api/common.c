/* sf-api: per-thread context, authentication, lookups, views, events, capabilities. */
#include "api.h"
#include "authguard.h"
#include "cache.h"
#include "json.h"

#include "event.h"
#include "log.h"
#include "state.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static sf_config_t api_cfg;
static sf_bus_t *api_bus;
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

/* Runs when an MHD pool thread exits: its Redis connection goes with it. */
static void ctx_free(void *p) {
        sf_ctx_t *c = p;

        if (!c)
                return;
        sf_store_free(c->store);
        free(c);
}

static void ctx_key_init(void) { pthread_key_create(&ctx_key, ctx_free); }

int sf_api_init(const sf_config_t *cfg, sf_bus_t *bus) {
        api_cfg = *cfg;
        api_bus = bus;
        pthread_once(&ctx_once, ctx_key_init);
        return sf_authguard_init(cfg);
}

sf_ctx_t *sf_api_ctx(void) {
        sf_ctx_t *c;

        pthread_once(&ctx_once, ctx_key_init);
        c = pthread_getspecific(ctx_key);
        if (c)
                return c;
        /* MHD runs handlers on several threads; hiredis contexts are per thread. */
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->cfg = api_cfg;
        c->bus = api_bus;
        if (sf_store_connect(api_cfg.redis_host, api_cfg.redis_port, &c->store) < 0) {
                free(c);
                return NULL;
        }
        pthread_setspecific(ctx_key, c);
        return c;
}

/* The token's namespace and key against the namespace's stored reply (HMGET rev doc):
 * the namespace exists and is created, the key exists and its nonce is the token's. */
static int auth_check_namespace(const sf_auth_claims_t *claims, const redisReply *nsr) {
        json_object *ns, *keys, *key;
        const char *text, *nonce;
        size_t len;

        if (sf_store_reply_obj(nsr, "namespace", claims->ns, NULL, &text, &len) < 0 ||
            sf_cache_namespace_doc(claims->ns, text, len, &ns) < 0 ||
            strcmp(sf_json_str(ns, "state") ?: "", "created") != 0)
                return -EACCES;
        /* Deleting or re-posting a key rotates its nonce: outstanding tokens die. */
        if (!json_object_object_get_ex(ns, "keys", &keys) ||
            !json_object_object_get_ex(keys, claims->keyname, &key) ||
            !(nonce = sf_json_str(key, "nonce")) || strcmp(nonce, claims->nonce) != 0)
                return -EACCES;
        return 0;
}

/* Authenticate, reading the namespace and n more objects (rev doc) in one round trip:
 * *ret_replies gets the n objects' replies (sf_store_replies_free, n + 1 long: [0] is
 * the namespace's).  The token check is memoised; the namespace is read every time. */
static int auth_and_read(sf_http_req_t *req, sf_http_resp_t *resp, sf_caller_t *caller, size_t n,
                         const char *const *types, const char *const *uuids, redisReply ***ret_replies) {
        sf_ctx_t *ctx = sf_api_ctx();
        sf_auth_claims_t claims;
        const char *msg = NULL, *t[2], *u[2];
        redisReply **rep = NULL;
        int r;

        if (!ctx)
                return sf_http_error(resp, 500, "server error: state store unavailable"), -EIO;
        if (n > 1)
                return -EINVAL;
        r = sf_cache_token_verify(ctx->cfg.auth_secret, req->authorization, &claims, &msg);
        if (r == -EACCES)
                return sf_http_error(resp, 401, "%s", msg ? msg : ""), r;
        if (r < 0)
                return sf_http_error(resp, 500, "server error: token check failed"), r;
        t[0] = "namespace", u[0] = claims.ns;
        if (n)
                t[1] = types[0], u[1] = uuids[0];
        if (sf_store_read_many(ctx->store, n + 1, t, u, true, &rep) < 0 ||
            auth_check_namespace(&claims, rep[0]) < 0) {
                sf_store_replies_free(rep, n + 1);
                return sf_http_error(resp, 401, "%s", ""), -EACCES;
        }
        snprintf(caller->ns, sizeof(caller->ns), "%s", claims.ns);
        snprintf(caller->keyname, sizeof(caller->keyname), "%s", claims.keyname);
        caller->system = strcmp(claims.ns, "system") == 0;
        caller->exp = claims.exp;
        if (ret_replies)
                *ret_replies = rep;
        else
                sf_store_replies_free(rep, n + 1);
        return 0;
}

int sf_api_auth(sf_http_req_t *req, sf_http_resp_t *resp, sf_caller_t *caller) {
        return auth_and_read(req, resp, caller, 0, NULL, NULL, NULL);
}

int sf_api_find(sf_http_req_t *req, sf_http_resp_t *resp, const char *type, sf_caller_t *caller,
                json_object **ret_doc) {
        int r = sf_api_auth(req, resp, caller);

        if (r < 0)
                return r;
        return sf_api_lookup(sf_api_ctx(), caller, type, req->params[0], resp, ret_doc);
}

bool sf_api_owns(const sf_caller_t *caller, const char *ns) {
        return caller->system || (ns && strcmp(caller->ns, ns) == 0);
}

int sf_api_lookup(sf_ctx_t *ctx, const sf_caller_t *caller, const char *type, const char *ref,
                  sf_http_resp_t *resp, json_object **ret_doc) {
        char uuid[SF_UUID_LEN];
        json_object *found = NULL;
        char **ids = NULL;
        int r, matches = 0;

        if (sf_uuid_parse(ref, uuid)) {
                r = sf_store_get(ctx->store, type, uuid, ret_doc, NULL);
                if (r == -ENOENT)
                        return sf_http_error(resp, 404, "%s not found", type), r;
                if (r < 0)
                        return r;
                /* Ownership failures are 404, never 403 (api.md §1.5). */
                if (!sf_api_owns(caller, sf_json_str(*ret_doc, "namespace"))) {
                        json_object_put(*ret_doc);
                        *ret_doc = NULL;
                        return sf_http_error(resp, 404, "%s not found", type), -ENOENT;
                }
                return 0;
        }
        r = sf_store_index(ctx->store, type, "name", ref, &ids, NULL);
        if (r < 0)
                return r;
        for (char **p = ids; *p; p++) {
                json_object *doc = NULL;
                if (sf_store_get(ctx->store, type, *p, &doc, NULL) < 0)
                        continue;
                if (strcmp(sf_json_str(doc, "name") ?: "", ref) != 0 ||
                    !sf_state_active(type, sf_json_str(doc, "state")) ||
                    !sf_api_owns(caller, sf_json_str(doc, "namespace"))) {
                        json_object_put(doc);
                        continue;
                }
                matches++;
                if (found)
                        json_object_put(doc);
                else
                        found = doc;
        }
        sf_strv_free(ids);
        if (matches > 1) {
                json_object_put(found);
                return sf_http_error(resp, 400, "multiple %ss have the name \"%s\" in namespace \"%s\"",
                                     type, ref, caller->ns),
                       -EINVAL;
        }
        if (!found)
                return sf_http_error(resp, 404, "%s not found", type), -ENOENT;
        *ret_doc = found;
        return 0;
}

/* ---- views ---- */

static void copy(json_object *to, json_object *from, const char *key) {
        json_object *v = NULL;

        json_object_object_get_ex(from, key, &v);
        json_object_object_add(to, key, v ? json_object_get(v) : NULL);
}

static json_object *metadata_of(json_object *doc) {
        json_object *m;

        if (json_object_object_get_ex(doc, "metadata", &m) && json_object_is_type(m, json_type_object))
                return json_object_get(m);
        return json_object_new_object();
}

static json_object *view_start(json_object *doc, int version) {
        json_object *v = json_object_new_object();

        copy(v, doc, "uuid");
        copy(v, doc, "state");
        json_object_object_add(v, "metadata", metadata_of(doc));
        json_object_object_add(v, "version", json_object_new_int(version));
        return v;
}

json_object *sf_view_interface(json_object *doc) {
        json_object *v = view_start(doc, SF_VERSION_INTERFACE);
        const char *keys[] = {"network_uuid", "instance_uuid", "macaddr", "ipv4", "order", "model",
                              "floating"};

        for (size_t i = 0; i < SF_ARRAY_SIZE(keys); i++)
                copy(v, doc, keys[i]);
        return v;
}

json_object *sf_view_network(json_object *doc) {
        json_object *v = view_start(doc, SF_VERSION_NETWORK);
        const char *keys[] = {"name", "namespace", "netblock", "provide_dhcp", "provide_nat",
                              "floating_gateway", "vxid"};

        for (size_t i = 0; i < SF_ARRAY_SIZE(keys); i++)
                copy(v, doc, keys[i]);
        return v;
}

json_object *sf_view_namespace(json_object *doc) {
        json_object *v = json_object_new_object(), *keys, *names = json_object_new_array();

        copy(v, doc, "name");
        copy(v, doc, "state");
        json_object_object_add(v, "metadata", metadata_of(doc));
        json_object_object_add(v, "version", json_object_new_int(SF_VERSION_NAMESPACE));
        if (json_object_object_get_ex(doc, "keys", &keys)) {
                json_object_object_foreach(keys, k, val) {
                        (void)val;
                        json_object_array_add(names, json_object_new_string(k));
                }
        }
        json_object_object_add(v, "keys", names);
        copy(v, doc, "trust");
        return v;
}

/* The instance view; with deps, also the interfaces it was rendered from (*ret_cacheable
 * false if one could not be read for certain: the view then must not be kept). */
static json_object *view_instance(sf_ctx_t *ctx, json_object *doc, sf_view_dep_t *deps, size_t *ret_ndeps,
                                  bool *ret_cacheable) {
        json_object *v = view_start(doc, SF_VERSION_INSTANCE), *ifaces, *list = json_object_new_array(),
                    *disks, *dl = json_object_new_array();
        const char *keys[] = {"cpus", "disk_spec", "memory", "name", "namespace", "ssh_key", "user_data",
                              "video", "uefi", "configdrive", "nvram_template", "secure_boot",
                              "machine_type", "side_channels", "agent_state", "agent_start_time",
                              "agent_system_boot_time", "error_message"};
        const char *tail[] = {"console_port", "node", "power_state", "vdi_port", "vdi_tls_port"};
        json_object *rp;

        for (size_t i = 0; i < SF_ARRAY_SIZE(keys); i++)
                copy(v, doc, keys[i]);
        if (json_object_object_get_ex(doc, "requested_placement", &rp) && rp)
                copy(v, doc, "requested_placement");
        for (size_t i = 0; i < SF_ARRAY_SIZE(tail); i++)
                copy(v, doc, tail[i]);
        if (json_object_object_get_ex(doc, "interfaces", &ifaces)) {
                for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                        _cleanup_json_ json_object *idoc = NULL;
                        const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));
                        uint64_t rev = 0;
                        int r = iu ? sf_store_get(ctx->store, "networkinterface", iu, &idoc, &rev) : -EINVAL;

                        if (r == 0)
                                json_object_array_add(list, sf_view_interface(idoc));
                        if (!deps)
                                continue;
                        if ((r < 0 && r != -ENOENT) || *ret_ndeps >= SF_MAX_NICS || strlen(iu) >= SF_UUID_LEN) {
                                *ret_cacheable = false;
                                continue;
                        }
                        snprintf(deps[*ret_ndeps].uuid, SF_UUID_LEN, "%s", iu);
                        deps[(*ret_ndeps)++].rev = r == 0 ? rev : 0;
                }
        }
        json_object_object_add(v, "interfaces", list);
        if (json_object_object_get_ex(doc, "disks", &disks)) {
                for (size_t i = 0; i < json_object_array_length(disks); i++) {
                        json_object *d = json_object_array_get_idx(disks, i), *o = json_object_new_object();
                        copy(o, d, "device");
                        copy(o, d, "bus");
                        copy(o, d, "size");
                        copy(o, d, "blob_uuid");
                        copy(o, d, "snapshot_ignores");
                        json_object_array_add(dl, o);
                }
        }
        json_object_object_add(v, "disks", dl);
        return v;
}

json_object *sf_view_instance(sf_ctx_t *ctx, json_object *doc) {
        return view_instance(ctx, doc, NULL, NULL, NULL);
}

/* ---- cached views ---- */

static void view_set_field(char *dst, size_t dstlen, bool *ret_has, const char *v, bool *cacheable) {
        *ret_has = v != NULL;
        if (v && strlen(v) >= dstlen)
                *cacheable = false;
        snprintf(dst, dstlen, "%s", v ? v : "");
}

/* Render the instance stored as text at rev into a new view (a reference for the caller;
 * kept in the view cache too unless an interface could not be read for certain).
 * -EBADMSG for a corrupt document. */
static int view_render_instance(sf_ctx_t *ctx, const char *uuid, uint64_t rev, const char *text,
                                const sf_view_t **ret) {
        _cleanup_json_ json_object *doc = NULL, *view = NULL;
        sf_view_dep_t deps[SF_MAX_NICS];
        size_t ndeps = 0;
        bool cacheable = true;
        sf_view_t *v;
        int r;

        r = sf_store_doc_parse(text, "instance", uuid, &doc);
        if (r < 0)
                return r;
        view = view_instance(ctx, doc, deps, &ndeps, &cacheable);
        if (!view)
                return -ENOMEM;
        r = sf_view_new(sf_json_dumps(view), &v);
        if (r < 0)
                return r;
        v->rev = rev;
        v->ndeps = ndeps;
        memcpy(v->deps, deps, sizeof(deps[0]) * ndeps);
        snprintf(v->type, sizeof(v->type), "instance");
        view_set_field(v->uuid, sizeof(v->uuid), &cacheable, uuid, &cacheable);
        view_set_field(v->ns, sizeof(v->ns), &v->has_ns, sf_json_str(doc, "namespace"), &cacheable);
        view_set_field(v->state, sizeof(v->state), &v->has_state, sf_json_str(doc, "state"), &cacheable);
        if (cacheable)
                sf_cache_view_put(v);
        *ret = v;
        return 0;
}

/* Are the interfaces a cached view was rendered from still at the same revisions?  One
 * round trip for every view of vs[0..n) (those with deps); stale[i] set for the others. */
static int view_deps_check(sf_ctx_t *ctx, const sf_view_t *const *vs, size_t n, bool *stale) {
        size_t total = 0, k = 0;
        const char **types = NULL, **uuids = NULL;
        redisReply **rep = NULL;
        int r = 0;

        for (size_t i = 0; i < n; i++)
                total += vs[i] ? vs[i]->ndeps : 0;
        if (!total)
                return 0;
        types = calloc(total, sizeof(*types));
        uuids = calloc(total, sizeof(*uuids));
        if (!types || !uuids) {
                r = -ENOMEM;
                goto cleanup;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t d = 0; vs[i] && d < vs[i]->ndeps; d++, k++)
                        types[k] = "networkinterface", uuids[k] = vs[i]->deps[d].uuid;
        r = sf_store_read_many(ctx->store, total, types, uuids, false, &rep);
        if (r < 0)
                goto cleanup;
        k = 0;
        for (size_t i = 0; i < n; i++) {
                for (size_t d = 0; vs[i] && d < vs[i]->ndeps; d++, k++) {
                        uint64_t rev = 0;
                        int rr = sf_store_reply_obj(rep[k], "networkinterface", uuids[k], &rev, NULL, NULL);

                        if (rr == -ENOENT)
                                rev = 0;
                        else if (rr < 0)
                                rev = UINT64_MAX; /* don't know: render again */
                        if (rev != vs[i]->deps[d].rev)
                                stale[i] = true;
                }
        }
cleanup:
        sf_store_replies_free(rep, total);
        free(types);
        free(uuids);
        return r;
}

/* The view of the instance whose stored reply (rev doc) is r: from the view cache when its
 * revision and its interfaces' are unchanged, else rendered (and kept). */
static int instance_view_from_reply(sf_ctx_t *ctx, const char *uuid, const redisReply *r,
                                    const sf_view_t **ret) {
        const sf_view_t *v;
        const char *text;
        uint64_t rev;
        bool stale = false;
        int rr;

        rr = sf_store_reply_obj(r, "instance", uuid, &rev, &text, NULL);
        if (rr < 0)
                return rr;
        if (sf_cache_view_get("instance", uuid, rev, &v) == 0) {
                if (view_deps_check(ctx, &v, 1, &stale) == 0 && !stale) {
                        *ret = v;
                        return 0;
                }
                sf_view_unref(v);
        }
        return view_render_instance(ctx, uuid, rev, text, ret);
}

int sf_api_get_cached(sf_http_req_t *req, sf_http_resp_t *resp, const char *type,
                      const char *const *allowed) {
        sf_ctx_t *ctx = sf_api_ctx();
        char uuid[SF_UUID_LEN];
        const char *types[1] = {type}, *uuids[1] = {uuid};
        redisReply **rep = NULL;
        sf_caller_t caller;
        const sf_view_t *v = NULL;
        char *body;
        size_t len;
        int r;

        if (strcmp(type, "instance") != 0 || req->nparams < 1 || !sf_uuid_parse(req->params[0], uuid))
                return 1;
        if (auth_and_read(req, resp, &caller, 1, types, uuids, &rep) < 0)
                return 0;
        r = instance_view_from_reply(ctx, uuid, rep[1], &v);
        sf_store_replies_free(rep, 2);
        if (r == -ENOENT)
                return sf_http_error(resp, 404, "%s not found", type);
        if (r < 0) /* as sf_api_find's callers always did: nothing filled in */
                return 0;
        /* Ownership failures are 404, never 403 (api.md §1.5). */
        if (!sf_api_owns(&caller, v->has_ns ? v->ns : NULL)) {
                sf_view_unref(v);
                return sf_http_error(resp, 404, "%s not found", type);
        }
        if (sf_http_check_keys(req, resp, allowed) < 0) {
                sf_view_unref(v);
                return 0;
        }
        len = v->len;
        body = malloc(len + 2);
        if (body) {
                memcpy(body, v->text, len);
                body[len] = '\n';
                body[len + 1] = 0;
        }
        sf_view_unref(v);
        return body ? sf_http_json_text(resp, 200, body, len + 1) : -ENOMEM;
}

/* ---- lists ---- */

typedef struct text_buf {
        char *p;
        size_t len, cap;
} text_buf_t;

static int text_append(text_buf_t *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *np;

                while (b->len + n + 1 > cap)
                        cap *= 2;
                np = realloc(b->p, cap);
                if (!np)
                        return -ENOMEM;
                b->p = np;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
        return 0;
}

/* The instance list as JSON text: revisions of all in one round trip, the cached views
 * whose interfaces are unchanged in one more, and only the others read and rendered.
 * -EIO if a pipelined read failed (the caller then reads one by one). */
static int list_instances_cached(sf_ctx_t *ctx, const sf_caller_t *caller, bool all, char **ids, size_t n,
                                 text_buf_t *out) {
        const sf_view_t **vs = calloc(n ? n : 1, sizeof(*vs));
        bool *stale = calloc(n ? n : 1, sizeof(*stale)), *skip = calloc(n ? n : 1, sizeof(*skip));
        const char **types = calloc(n ? n : 1, sizeof(*types)), **miss_ids = calloc(n ? n : 1, sizeof(*miss_ids));
        size_t *miss_idx = calloc(n ? n : 1, sizeof(*miss_idx)), nmiss = 0;
        redisReply **rep = NULL;
        bool first = true;
        int r = -ENOMEM;

        if (!vs || !stale || !skip || !types || !miss_ids || !miss_idx)
                goto cleanup;
        for (size_t i = 0; i < n; i++)
                types[i] = "instance";
        r = sf_store_read_many(ctx->store, n, types, (const char *const *)ids, false, &rep);
        if (r < 0)
                goto cleanup;
        for (size_t i = 0; i < n; i++) {
                uint64_t rev;

                /* As a one-by-one read would: an unreadable object is left out. */
                if (sf_store_reply_obj(rep[i], "instance", ids[i], &rev, NULL, NULL) < 0)
                        skip[i] = true;
                else if (sf_cache_view_get("instance", ids[i], rev, &vs[i]) < 0)
                        stale[i] = true;
        }
        sf_store_replies_free(rep, n);
        rep = NULL;
        r = view_deps_check(ctx, vs, n, stale);
        if (r < 0)
                goto cleanup;
        for (size_t i = 0; i < n; i++) {
                if (skip[i] || !stale[i])
                        continue;
                sf_view_unref(vs[i]);
                vs[i] = NULL;
                miss_idx[nmiss] = i;
                miss_ids[nmiss++] = ids[i];
        }
        r = sf_store_read_many(ctx->store, nmiss, types, miss_ids, true, &rep);
        if (r < 0)
                goto cleanup;
        for (size_t k = 0; k < nmiss; k++) {
                size_t i = miss_idx[k];
                const char *text;
                uint64_t rev;

                if (sf_store_reply_obj(rep[k], "instance", ids[i], &rev, &text, NULL) < 0 ||
                    view_render_instance(ctx, ids[i], rev, text, &vs[i]) < 0)
                        skip[i] = true;
        }
        /* Sized once: the answer may be megabytes. */
        out->cap = 4;
        for (size_t i = 0; i < n; i++) {
                if (!skip[i] && (!sf_api_owns(caller, vs[i]->has_ns ? vs[i]->ns : NULL) ||
                                 (!all && !sf_state_active("instance", vs[i]->has_state ? vs[i]->state : NULL))))
                        skip[i] = true;
                if (!skip[i])
                        out->cap += vs[i]->len + 2;
        }
        out->p = malloc(out->cap);
        r = out->p ? text_append(out, "[", 1) : -ENOMEM;
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (skip[i])
                        continue;
                if (!first)
                        r = text_append(out, ", ", 2);
                if (r == 0)
                        r = text_append(out, vs[i]->text, vs[i]->len);
                first = false;
        }
        if (r == 0)
                r = text_append(out, "]\n", 2);
cleanup:
        sf_store_replies_free(rep, nmiss);
        for (size_t i = 0; vs && i < n; i++)
                sf_view_unref(vs[i]);
        free(vs);
        free(stale);
        free(skip);
        free(types);
        free(miss_ids);
        free(miss_idx);
        return r;
}

/* GET /instances from the list cache when nothing of the instances, their interfaces or
 * the caller's namespace changed since it was made; else made and kept.  1 if the cache
 * cannot be used (generations unreadable, or a pipelined read failed): read one by one. */
static int list_instances(sf_ctx_t *ctx, sf_http_resp_t *resp, const sf_caller_t *caller, bool all,
                          const redisReply *nsrep) {
        /* Namespaces too: a trust lives in the trusting namespace's document. */
        static const char *const gen_types[SF_LIST_GENS] = {"instance", "networkinterface", "namespace"};
        const sf_list_t *l;
        text_buf_t out = {0};
        const char *nstext;
        char **ids = NULL;
        uint64_t gens[SF_LIST_GENS];
        size_t nslen, n = 0;
        int r;

        /* The generations first: whatever is read after them is at least that new. */
        if (sf_store_reply_obj(nsrep, "namespace", caller->ns, NULL, &nstext, &nslen) < 0 ||
            sf_store_gens(ctx->store, SF_LIST_GENS, gen_types, gens) < 0)
                return 1;
        if (sf_cache_list_get("instance", caller->ns, caller->system, all, gens, nstext, nslen, &l) == 0)
                return sf_http_json_borrowed(resp, 200, l->text, l->len, sf_list_release, (void *)l);
        /* system sees every namespace; others only their own (api.md §1.5). */
        r = caller->system ? sf_store_index(ctx->store, "instance", "all", NULL, &ids, &n)
                           : sf_store_index(ctx->store, "instance", "ns", caller->ns, &ids, &n);
        if (r < 0)
                return r;
        r = list_instances_cached(ctx, caller, all, ids, n, &out);
        sf_strv_free(ids);
        if (r < 0) {
                free(out.p);
                return 1;
        }
        r = sf_cache_list_put("instance", caller->ns, caller->system, all, gens, nstext, nslen, out.p, out.len, &l);
        if (r < 0)
                return r;
        return sf_http_json_borrowed(resp, 200, l->text, l->len, sf_list_release, (void *)l);
}

int sf_api_list(sf_http_req_t *req, sf_http_resp_t *resp, const char *type,
                json_object *(*view)(sf_ctx_t *ctx, json_object *doc)) {
        static const char *const allowed[] = {"all", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        sf_caller_t caller;
        redisReply **nsrep = NULL;
        char **ids = NULL;
        json_object *list;
        bool all = false;
        int r;

        if (auth_and_read(req, resp, &caller, 0, NULL, NULL, &nsrep) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0) {
                sf_store_replies_free(nsrep, 1);
                return 0;
        }
        if (sf_http_body_bool(req, "all", false, &all) < 0) {
                sf_store_replies_free(nsrep, 1);
                return sf_http_error(resp, 400, "all must be a boolean");
        }
        if (view == sf_view_instance) {
                r = list_instances(ctx, resp, &caller, all, nsrep[0]);
                if (r <= 0) {
                        sf_store_replies_free(nsrep, 1);
                        return r;
                }
        }
        sf_store_replies_free(nsrep, 1);
        /* system sees every namespace; others only their own (api.md §1.5). */
        r = caller.system ? sf_store_index(ctx->store, type, "all", NULL, &ids, NULL)
                          : sf_store_index(ctx->store, type, "ns", caller.ns, &ids, NULL);
        if (r < 0)
                return r;
        list = json_object_new_array();
        for (char **p = ids; *p; p++) {
                _cleanup_json_ json_object *doc = NULL;
                if (sf_store_get(ctx->store, type, *p, &doc, NULL) < 0)
                        continue;
                if (!sf_api_owns(&caller, sf_json_str(doc, "namespace")))
                        continue;
                if (!all && !sf_state_active(type, sf_json_str(doc, "state")))
                        continue;
                json_object_array_add(list, view(ctx, doc));
        }
        sf_strv_free(ids);
        return sf_http_json(resp, 200, list);
}

/* ---- metadata rules ---- */

/* What Python's int() accepts and upstream's affinity check therefore lets through:
 * integers, finite numbers, and strings holding a (signed) integer.  Booleans are
 * refused, as upstream's later releases do (true is not a weight). */
static bool int_castable(json_object *v) {
        const char *s, *p;

        switch (json_object_get_type(v)) {
        case json_type_int:
                return true;
        case json_type_double:
                return isfinite(json_object_get_double(v));
        case json_type_string:
                s = json_object_get_string(v);
                while (*s == ' ' || *s == '\t')
                        s++;
                if (*s == '+' || *s == '-')
                        s++;
                for (p = s; *p >= '0' && *p <= '9'; p++)
                        ;
                if (p == s)
                        return false;
                while (*p == ' ' || *p == '\t')
                        p++;
                return *p == 0;
        default:
                return false;
        }
}

int sf_api_meta_validate(sf_http_resp_t *resp, const char *type, const char *key, json_object *value) {
        if (strcmp(type, "instance") != 0)
                return 0;
        if (strcmp(key, "tags") == 0 && !json_object_is_type(value, json_type_array))
                return sf_http_error(resp, 400, "value for \"tags\" key should be a JSON list"), -EINVAL;
        if (strcmp(key, "affinity") == 0) {
                if (!json_object_is_type(value, json_type_object))
                        return sf_http_error(resp, 400, "value for \"affinity\" key should be a valid JSON dictionary"),
                               -EINVAL;
                json_object_object_foreach(value, k, v) {
                        (void)k;
                        if (!int_castable(v))
                                return sf_http_error(resp, 400, "affinity dictionary values should be integers"),
                                       -EINVAL;
                }
        }
        return 0;
}

/* ---- names ---- */

const char *sf_api_name_extra(const char *what) {
        if (strcmp(what, "network") == 0)
                return "_.";
        if (strcmp(what, "namespace") == 0 || strcmp(what, "key") == 0)
                return "_";
        return "";
}

int sf_api_name_check(sf_http_resp_t *resp, const char *what, const char *name) {
        const char *extra = sf_api_name_extra(what);
        int r;

        if (sf_name_valid_with(name, extra))
                return 0;
        if (!*extra)
                r = sf_http_error(resp, 400,
                                  "%s name %s is not useable as a DNS and Linux host name. It must consist of only "
                                  "letters, numbers and hyphens, and be at most 63 characters long",
                                  what, name ? name : "");
        else
                r = sf_http_error(resp, 400,
                                  "%s name %s is invalid: it must consist of only letters, numbers, %s, and be at "
                                  "most 63 characters long",
                                  what, name ? name : "",
                                  extra[1] ? "hyphens, underscores and dots" : "hyphens and underscores");
        return r < 0 ? r : -EINVAL;
}

/* ---- events ---- */

int sf_api_events(sf_http_req_t *req, sf_http_resp_t *resp, const char *type, const char *uuid) {
        static const char *const allowed[] = {"event_type", "limit", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        json_object *list = NULL, *lim;
        const char *etype = NULL;
        int64_t limit = 100;
        int r;

        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        r = sf_http_body_str(req, "event_type", &etype);
        if (r == -EINVAL || (etype && !sf_event_type_valid(etype)))
                return sf_http_error(resp, 400, "invalid event type");
        /* The CLI sends limit as a string. */
        if (json_object_object_get_ex(req->body, "limit", &lim) && lim &&
            sf_http_body_int(req, "limit", 100, &limit) < 0)
                return sf_http_error(resp, 400, "limit is not an integer");
        if (limit < 0)
                return sf_http_error(resp, 400, "limit must not be negative");
        if (limit > SF_EVENTS_KEEP) /* no more are kept; and keeps the int conversion exact */
                limit = SF_EVENTS_KEEP;
        r = sf_event_list(ctx->store, type, uuid, etype, (int)limit, &list);
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, list);
}

/* ---- delete-all ---- */

int sf_api_delete_all_target(sf_http_req_t *req, sf_http_resp_t *resp, const sf_caller_t *caller,
                             const char **ret_ns) {
        const char *ns = NULL;
        bool confirm = false;
        int r;

        if (sf_http_body_bool(req, "confirm", false, &confirm) < 0 || !confirm)
                return sf_http_error(resp, 400, "parameter confirm is not set true"), -EINVAL;
        r = sf_http_body_str(req, "namespace", &ns);
        if (caller->system && (r < 0 || !ns || !*ns))
                return sf_http_error(resp, 400, "system user must specify parameter namespace"), -EINVAL;
        if (!caller->system && ns && strcmp(ns, caller->ns) != 0)
                return sf_http_error(resp, 401, "you cannot delete other namespaces"), -EACCES;
        *ret_ns = ns && *ns ? ns : caller->ns;
        return 0;
}

/* ---- capabilities ---- */

int sf_api_root(sf_http_req_t *req, sf_http_resp_t *resp) {
        /* Only what is implemented: clients refuse features whose string is absent. */
        static const char page[] =
                "<html><head><title>Shaken Fist REST API service</title></head><body>\n"
                "<h1>Shaken Fist REST API service</h1>\n"
                "<p>This is sf, a Shaken Fist compatible cloud.</p>\n"
                "<p>Capabilities:</p><ul>\n"
                "<li>blob-data-limit</li>\n"
                "<li>cluster-cacert</li>\n"
                "<li>events-by-type</li>\n"
                "<li>instance-get</li>\n"
                "<li>instance-screenshot</li>\n"
                "<li>interface-metadata</li>\n"
                "<li>node-get</li>\n"
                "<li>node-metadata</li>\n"
                "<li>spice-vdi-console</li>\n"
                "<li>vdi-console-helper</li>\n"
                "</ul></body></html>\n";

        (void)req;
        return sf_http_raw(resp, 200, "text/html; charset=utf-8", page, sizeof(page) - 1);
}
