/* POST /auth and the namespace/key endpoints (api.md §2.2, §3). */
#include "api.h"
#include "authguard.h"

#include "event.h"
#include "log.h"
#include "object.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <string.h>

bool sf_api_trusted_by(const sf_caller_t *caller, json_object *ns) {
        json_object *trust, *full;

        if (caller->system || strcmp(sf_json_str(ns, "name") ?: "", caller->ns) == 0)
                return true;
        if (!json_object_object_get_ex(ns, "trust", &trust) ||
            !json_object_object_get_ex(trust, "full", &full) || !json_object_is_type(full, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(full); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(full, i)) ?: "", caller->ns) == 0)
                        return true;
        return false;
}

int sf_api_ns_ensure(sf_ctx_t *ctx, const char *ns) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *trust = json_object_new_object(),
                                   *full = json_object_new_array();
        int r;

        json_object_object_add(doc, "uuid", json_object_new_string(ns));
        json_object_object_add(doc, "name", json_object_new_string(ns));
        json_object_object_add(doc, "namespace", json_object_new_string(ns));
        json_object_object_add(doc, "state", json_object_new_string("created"));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(doc, "keys", json_object_new_object());
        json_object_array_add(full, json_object_new_string("system"));
        json_object_object_add(trust, "full", json_object_get(full));
        json_object_object_add(doc, "trust", json_object_get(trust));
        json_object_object_add(doc, "metadata", json_object_new_object());
        r = sf_obj_create(ctx, "namespace", ns, doc);
        if (r == -EEXIST) {
                /* A deleted namespace of that name is gone for good: the new one starts
                 * empty (no keys, trusts or metadata of the old). */
                _cleanup_json_ json_object *old = NULL;
                if (sf_store_get(ctx->store, "namespace", ns, &old, NULL) == 0 &&
                    strcmp(sf_json_str(old, "state") ?: "", "deleted") == 0 &&
                    sf_store_purge(ctx->store, "namespace", ns) == 0)
                        r = sf_obj_create(ctx, "namespace", ns, doc);
        }
        return r == -EEXIST ? 0 : r;
}

typedef struct {
        const char *keyname;
        const char *hash; /* NULL: delete */
        bool must_exist;  /* set only a key that is already there (PUT: update, not add) */
        char nonce[SF_AUTH_NONCE_LEN + 1];
} key_change_t;

static int apply_key(json_object *doc, void *ud) {
        key_change_t *c = ud;
        json_object *keys, *k;

        if (!json_object_object_get_ex(doc, "keys", &keys)) {
                keys = json_object_new_object();
                json_object_object_add(doc, "keys", keys);
        }
        if (!c->hash) {
                if (!json_object_object_get_ex(keys, c->keyname, NULL))
                        return -ENOENT;
                json_object_object_del(keys, c->keyname);
                return 0;
        }
        /* Checked inside the update, so a concurrent delete cannot be undone by an update. */
        if (c->must_exist && !json_object_object_get_ex(keys, c->keyname, NULL))
                return -ENOENT;
        k = json_object_new_object();
        json_object_object_add(k, "hash", json_object_new_string(c->hash));
        json_object_object_add(k, "nonce", json_object_new_string(c->nonce));
        json_object_object_add(keys, c->keyname, k);
        return 0;
}

/* Adds or replaces (must_exist: only replaces) a key, with a fresh nonce: the key's
 * outstanding tokens die. -ENOENT when must_exist and there is no such key. */
static int ns_store_key(sf_ctx_t *ctx, const char *ns, const char *keyname, const char *secret, bool must_exist) {
        _cleanup_free_ char *hash = NULL;
        key_change_t c = {.keyname = keyname, .must_exist = must_exist};
        int r;

        r = sf_auth_hash_key(secret, &hash);
        if (r < 0)
                return r;
        c.hash = hash;
        sf_auth_nonce(c.nonce);
        return sf_store_update(ctx->store, "namespace", ns, NULL, apply_key, &c, NULL);
}

int sf_api_ns_set_key(sf_ctx_t *ctx, const char *ns, const char *keyname, const char *secret) {
        return ns_store_key(ctx, ns, keyname, secret, false);
}

/* POST /auth past the rate limit, on the offload pool: the namespace lookup (Redis) and a
 * bcrypt per key. Checks in upstream's order (api.md §2.2). */
static int auth_key_check(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *ns = NULL;
        const char *nsname = NULL, *key = NULL, *match = NULL;
        _cleanup_free_ char *token = NULL;
        json_object *keys, *out, *kv;
        int r;

        if (!ctx)
                return sf_http_error(resp, 500, "server error: state store unavailable");
        if (sf_http_body_str(req, "namespace", &nsname) < 0)
                return -EINVAL; /* checked by sf_api_auth_post */
        if (!sf_name_valid_with(nsname, sf_api_name_extra("namespace")) || sf_store_get(ctx->store, "namespace", nsname, &ns, NULL) < 0)
                return sf_http_error(resp, 404, "namespace not found");
        if (!json_object_object_get_ex(req->body, "key", &kv) || !kv)
                return sf_http_error(resp, 400, "missing key in request");
        if (!json_object_is_type(kv, json_type_string))
                return sf_http_error(resp, 400, "key is not a string");
        key = json_object_get_string(kv);
        if (strcmp(sf_json_str(ns, "state") ?: "", "created") != 0)
                return sf_http_error(resp, 404, "namespace not found");
        if (json_object_object_get_ex(ns, "keys", &keys)) {
                json_object_object_foreach(keys, name, val) {
                        const char *hash = sf_json_str(val, "hash");
                        if (hash && sf_auth_verify_key(key, hash) == 0) {
                                match = name;
                                r = sf_auth_token_issue(ctx->cfg.auth_secret, ctx->cfg.zone, nsname, name,
                                                        sf_json_str(val, "nonce") ?: "", 900, &token);
                                if (r < 0)
                                        return r;
                                break;
                        }
                }
        }
        if (!match) {
                /* Counted, and written as one audit event per window (authguard.h). */
                sf_authguard_failed(nsname, req->remote_addr);
                return sf_http_error(resp, 401, "unauthorized");
        }
        out = json_object_new_object();
        json_object_object_add(out, "access_token", json_object_new_string(token));
        json_object_object_add(out, "token_type", json_object_new_string("Bearer"));
        json_object_object_add(out, "expires_in", json_object_new_int(900));
        return sf_http_json(resp, 200, out);
}

/* On the request thread only what needs no I/O: the rate limit and the first body checks.
 * Everything else waits for the offload pool (auth_key_check), so a flood of POST /auth
 * never holds a request thread on Redis or bcrypt. */
int sf_api_auth_post(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"namespace", "key", NULL};
        const char *nsname = NULL;

        if (sf_authguard_admit(req, resp) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_http_body_str(req, "namespace", &nsname) < 0 || !*nsname)
                return sf_http_error(resp, 400, "missing namespace in request");
        return sf_http_offload(req, resp, auth_key_check);
}

int sf_api_namespaces_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        sf_caller_t caller;
        json_object *list;
        char **names = NULL;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        r = sf_store_index(ctx->store, "namespace", "all", NULL, &names, NULL);
        if (r < 0)
                return r;
        list = json_object_new_array();
        for (char **p = names; *p; p++) {
                _cleanup_json_ json_object *doc = NULL;
                if (sf_store_get(ctx->store, "namespace", *p, &doc, NULL) < 0)
                        continue;
                if (strcmp(sf_json_str(doc, "state") ?: "", "created") != 0 || !sf_api_trusted_by(&caller, doc))
                        continue;
                json_object_array_add(list, sf_view_namespace(doc));
        }
        sf_strv_free(names);
        return sf_http_json(resp, 200, list);
}

int sf_api_namespaces_post(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"namespace", "key_name", "key", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        const char *ns = NULL, *key_name = NULL;
        _cleanup_json_ json_object *doc = NULL;
        json_object *kv = NULL;
        sf_caller_t caller;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (!caller.system)
                return sf_http_error(resp, 401, "unauthorized");
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_http_body_str(req, "namespace", &ns) < 0 || !*ns)
                return sf_http_error(resp, 400, "no namespace specified");
        if (sf_api_name_check(resp, "namespace", ns) < 0)
                return 0;
        r = sf_http_body_str(req, "key_name", &key_name);
        if (r == -EINVAL)
                return sf_http_error(resp, 400, "key name is not a string");
        if (key_name) {
                if (strcmp(key_name, "service_key") == 0 || strncmp(key_name, "_service_key", 12) == 0)
                        return sf_http_error(resp, 403, "illegal key name");
                if (sf_api_name_check(resp, "key", key_name) < 0)
                        return 0;
                if (!json_object_object_get_ex(req->body, "key", &kv) || !kv)
                        return sf_http_error(resp, 400, "no key specified");
                if (!json_object_is_type(kv, json_type_string) || !*json_object_get_string(kv))
                        return sf_http_error(resp, 400, "key is not a string");
        }
        r = sf_api_ns_ensure(ctx, ns);
        if (r == 0 && key_name)
                r = sf_api_ns_set_key(ctx, ns, key_name, json_object_get_string(kv));
        if (r == 0)
                r = sf_store_get(ctx->store, "namespace", ns, &doc, NULL);
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, sf_view_namespace(doc));
}

/* The namespace in params[0] if the caller is trusted by it; else fills 404. */
static int trusted_ns(sf_http_req_t *req, sf_http_resp_t *resp, sf_caller_t *caller,
                      json_object **ret) {
        sf_ctx_t *ctx = sf_api_ctx();
        json_object *doc = NULL;

        if (sf_api_auth(req, resp, caller) < 0)
                return -EACCES;
        if (!sf_name_valid_with(req->params[0], sf_api_name_extra("namespace")) ||
            sf_store_get(ctx->store, "namespace", req->params[0], &doc, NULL) < 0 ||
            strcmp(sf_json_str(doc, "state") ?: "", "created") != 0 || !sf_api_trusted_by(caller, doc)) {
                json_object_put(doc);
                sf_http_error(resp, 404, "namespace not found");
                return -ENOENT;
        }
        *ret = doc;
        return 0;
}

int sf_api_namespace_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        return sf_http_json(resp, 200, sf_view_namespace(doc));
}

/* GET /auth/namespaces/<ns>/events: its own events and its objects' audit events. */
int sf_api_namespace_events(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        return sf_api_events(req, resp, "namespace", req->params[0]);
}

int sf_api_namespace_keys_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;
        json_object *view, *keys;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        view = sf_view_namespace(doc);
        json_object_object_get_ex(view, "keys", &keys);
        keys = json_object_get(keys);
        json_object_put(view);
        return sf_http_json(resp, 200, keys);
}

/* POST (add or rotate) and PUT (rotate only: upstream's client update_namespace_key) of
 * /auth/namespaces/<ns>/keys, body {key_name, key}. */
static int keys_write(sf_http_req_t *req, sf_http_resp_t *resp, bool must_exist) {
        static const char *const allowed[] = {"key_name", "key", NULL};
        _cleanup_json_ json_object *doc = NULL;
        const char *key_name = NULL, *key = NULL;
        sf_caller_t caller;
        int r;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_http_body_str(req, "key_name", &key_name) < 0 || !*key_name)
                return sf_http_error(resp, 400, "no key name specified");
        if (sf_http_body_str(req, "key", &key) < 0 || !*key)
                return sf_http_error(resp, 400, "no key specified");
        if (strncmp(key_name, "_service_key", 12) == 0 || strcmp(key_name, "service_key") == 0)
                return sf_http_error(resp, 403, "illegal key name");
        if (sf_api_name_check(resp, "key", key_name) < 0)
                return 0;
        r = ns_store_key(sf_api_ctx(), req->params[0], key_name, key, must_exist);
        if (r == -ENOENT && must_exist)
                return sf_http_error(resp, 404, "key name not found in namespace");
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, json_object_new_string(key_name));
}

int sf_api_namespace_keys_post(sf_http_req_t *req, sf_http_resp_t *resp) {
        return keys_write(req, resp, false);
}

int sf_api_namespace_keys_put(sf_http_req_t *req, sf_http_resp_t *resp) {
        return keys_write(req, resp, true);
}

int sf_api_namespace_key_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        key_change_t c = {.keyname = req->params[1], .hash = NULL};
        sf_caller_t caller;
        int r;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        if (!req->params[1] || !*req->params[1])
                return sf_http_error(resp, 400, "no key name specified");
        r = sf_store_update(sf_api_ctx()->store, "namespace", req->params[0], NULL, apply_key, &c, NULL);
        if (r == -ENOENT)
                return sf_http_error(resp, 404, "key name not found in namespace");
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, NULL);
}

/* Is state one of the '|'-separated states in set? */
static bool state_in(const char *state, const char *set) {
        size_t n = strlen(state);

        for (const char *p = set; p && *p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
                if (strncmp(p, state, n) == 0 && (p[n] == '|' || p[n] == 0))
                        return true;
        return false;
}

/* Does namespace ns own a `type` object in a state outside `gone` ("a|b|c")?  An index or
 * record that cannot be read is an error: never delete on a guess. */
static int ns_has_live(sf_ctx_t *ctx, const char *type, const char *ns, const char *gone, bool *ret) {
        char **uuids = NULL;
        bool live = false;
        int r;

        r = sf_store_index(ctx->store, type, "ns", ns, &uuids, NULL);
        if (r < 0)
                return r;
        for (char **p = uuids; *p && !live; p++) {
                _cleanup_json_ json_object *doc = NULL;

                r = sf_store_get(ctx->store, type, *p, &doc, NULL);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                live = !state_in(sf_json_str(doc, "state") ?: "", gone);
        }
        sf_strv_free(uuids);
        if (r < 0)
                return r;
        *ret = live;
        return 0;
}

/* The namespace's image artifacts go with it (api.md §2.2). */
static int ns_delete_artifacts(sf_ctx_t *ctx, const char *ns) {
        char **uuids = NULL;
        int r;

        r = sf_store_index(ctx->store, "artifact", "ns", ns, &uuids, NULL);
        if (r < 0)
                return r;
        for (char **p = uuids; *p; p++) {
                r = sf_obj_set_state(ctx, "artifact", *p, "deleted", NULL, NULL, NULL);
                if (r < 0 && r != -ENOENT && r != -EINVAL)
                        break;
                r = 0;
        }
        sf_strv_free(uuids);
        return r;
}

/* DELETE /auth/namespaces/<ns> (api.md §2.2): system only; never `system`, nor while the
 * namespace has instances (other than deleted/error) or networks (other than
 * deleted/delete-wait/error).  Its artifacts are deleted, then the namespace: its tokens
 * stop working at once (every request checks the namespace is `created`). */
int sf_api_namespace_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL;
        const char *ns = req->params[0];
        sf_caller_t caller;
        bool live = false;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (!caller.system)
                return sf_http_error(resp, 401, "unauthorized");
        if (!sf_name_valid_with(ns, sf_api_name_extra("namespace")))
                return sf_http_error(resp, 404, "namespace not found");
        r = sf_store_get(ctx->store, "namespace", ns, &doc, NULL);
        if (r == -ENOENT || (r == 0 && strcmp(sf_json_str(doc, "state") ?: "", "created") != 0))
                return sf_http_error(resp, 404, "namespace not found");
        if (r < 0)
                return r;
        if (strcmp(ns, "system") == 0)
                return sf_http_error(resp, 403, "you cannot delete the system namespace");
        r = ns_has_live(ctx, "instance", ns, "deleted|error", &live);
        if (r < 0)
                return r;
        if (live)
                return sf_http_error(resp, 400, "you cannot delete a namespace with instances");
        r = ns_has_live(ctx, "network", ns, "deleted|delete-wait|error", &live);
        if (r < 0)
                return r;
        if (live)
                return sf_http_error(resp, 400, "you cannot delete a namespace with networks");
        r = ns_delete_artifacts(ctx, ns);
        if (r < 0)
                return r;
        r = sf_obj_set_state(ctx, "namespace", ns, "deleted", NULL, NULL, NULL);
        if (r < 0 && r != -EINVAL)
                return r;
        return sf_http_json(resp, 200, NULL);
}

typedef struct {
        const char *external;
        bool add; /* else remove */
} trust_change_t;

static bool list_has_name(json_object *list, const char *name) {
        for (size_t i = 0; i < json_object_array_length(list); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(list, i)) ?: "", name) == 0)
                        return true;
        return false;
}

/* trust.full becomes: system (always first, never removed), the other entries, and the
 * external namespace added or removed. */
static int apply_trust(json_object *doc, void *ud) {
        trust_change_t *c = ud;
        json_object *trust, *full = NULL, *kept = json_object_new_array();

        if (!json_object_object_get_ex(doc, "trust", &trust) || !json_object_is_type(trust, json_type_object)) {
                trust = json_object_new_object();
                json_object_object_add(doc, "trust", trust);
        }
        json_object_object_get_ex(trust, "full", &full);
        json_object_array_add(kept, json_object_new_string("system"));
        for (size_t i = 0; full && json_object_is_type(full, json_type_array) && i < json_object_array_length(full);
             i++) {
                const char *n = json_object_get_string(json_object_array_get_idx(full, i));
                if (n && !(!c->add && strcmp(n, c->external) == 0) && !list_has_name(kept, n))
                        json_object_array_add(kept, json_object_new_string(n));
        }
        if (c->add && !list_has_name(kept, c->external))
                json_object_array_add(kept, json_object_new_string(c->external));
        json_object_object_add(trust, "full", kept);
        return 0;
}

/* POST /auth/namespaces/<ns>/trust (api.md §2.2, §3.4): external_namespace may now see what
 * ns owns where trusts count (namespace, artifacts).  The caller must be trusted by ns. */
int sf_api_namespace_trust_post(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"external_namespace", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *ext = NULL, *after = NULL;
        trust_change_t c = {.add = true};
        sf_caller_t caller;
        int r;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_http_body_str(req, "external_namespace", &c.external) < 0 || !*c.external)
                return sf_http_error(resp, 400, "no external namespace specified");
        if (!sf_name_valid_with(c.external, sf_api_name_extra("namespace")))
                return sf_http_error(resp, 404, "external namespace not found");
        r = sf_store_get(ctx->store, "namespace", c.external, &ext, NULL);
        if (r == -ENOENT || (r == 0 && strcmp(sf_json_str(ext, "state") ?: "", "created") != 0))
                return sf_http_error(resp, 404, "external namespace not found");
        if (r < 0)
                return r;
        r = sf_store_update(ctx->store, "namespace", req->params[0], NULL, apply_trust, &c, &after);
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, sf_view_namespace(after));
}

/* DELETE /auth/namespaces/<ns>/trust/<external>: removing `system` is silently ignored. */
int sf_api_namespace_trust_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *after = NULL;
        trust_change_t c = {.external = req->params[1], .add = false};
        sf_caller_t caller;
        int r;

        if (trusted_ns(req, resp, &caller, &doc) < 0)
                return 0;
        if (!c.external || !*c.external)
                return sf_http_error(resp, 400, "no external namespace specified");
        r = sf_store_update(ctx->store, "namespace", req->params[0], NULL, apply_trust, &c, &after);
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, sf_view_namespace(after));
}
