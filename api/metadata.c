/* Metadata on instances, networks, interfaces, namespaces and nodes (api.md §2.2-§2.10):
 * GET/POST .../metadata, PUT/DELETE .../metadata/<key>.  Stored in the object's
 * document ("metadata"), written with the same CAS as every other field. */
#include "api.h"

#include "event.h"
#include "object.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <string.h>

/* Resolve the object the route names; fills resp on failure. */
static int resolve(sf_http_req_t *req, sf_http_resp_t *resp, const char *type, json_object **ret) {
        sf_ctx_t *ctx = sf_api_ctx();
        char uuid[SF_UUID_LEN];
        sf_caller_t caller;
        json_object *doc = NULL;

        if (sf_api_auth(req, resp, &caller) < 0)
                return -EACCES;
        if (strcmp(type, "instance") == 0 || strcmp(type, "network") == 0)
                return sf_api_lookup(ctx, &caller, type, req->params[0], resp, ret);
        if (strcmp(type, "node") == 0) {
                /* Nodes are the operator's: system only, by name. */
                if (!caller.system) {
                        sf_http_error(resp, 401, "unauthorized");
                        return -EACCES;
                }
                if (!req->params[0] || !*req->params[0] || strchr(req->params[0], ':') ||
                    sf_store_get(ctx->store, "node", req->params[0], &doc, NULL) < 0) {
                        json_object_put(doc);
                        sf_http_error(resp, 404, "node not found");
                        return -ENOENT;
                }
                *ret = doc;
                return 0;
        }
        if (strcmp(type, "networkinterface") == 0) {
                if (!sf_uuid_parse(req->params[0], uuid) ||
                    sf_store_get(ctx->store, type, uuid, &doc, NULL) < 0 ||
                    !sf_api_owns(&caller, sf_json_str(doc, "namespace"))) {
                        json_object_put(doc);
                        sf_http_error(resp, 404, "interface not found");
                        return -ENOENT;
                }
                *ret = doc;
                return 0;
        }
        /* namespace: visible if the caller is trusted by it */
        if (!sf_name_valid_with(req->params[0], sf_api_name_extra("namespace")) ||
            sf_store_get(ctx->store, "namespace", req->params[0], &doc, NULL) < 0 ||
            strcmp(sf_json_str(doc, "state") ?: "", "created") != 0) {
                json_object_put(doc);
                sf_http_error(resp, 404, "namespace not found");
                return -ENOENT;
        }
        if (!sf_api_trusted_by(&caller, doc)) {
                json_object_put(doc);
                sf_http_error(resp, 404, "namespace not found");
                return -ENOENT;
        }
        *ret = doc;
        return 0;
}

static bool truthy(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:
                return false;
        case json_type_boolean:
                return json_object_get_boolean(v);
        case json_type_int:
                return json_object_get_int64(v) != 0;
        case json_type_double:
                return json_object_get_double(v) != 0.0;
        case json_type_string:
                return json_object_get_string_len(v) > 0;
        case json_type_array:
                return json_object_array_length(v) > 0;
        case json_type_object:
                return json_object_object_length(v) > 0;
        }
        return false;
}

typedef struct {
        const char *key;
        json_object *value; /* NULL: delete */
} meta_change_t;

static int apply_meta(json_object *doc, void *ud) {
        meta_change_t *c = ud;
        json_object *m;

        if (!json_object_object_get_ex(doc, "metadata", &m) || !json_object_is_type(m, json_type_object)) {
                m = json_object_new_object();
                json_object_object_add(doc, "metadata", m);
        }
        if (!c->value) {
                if (!json_object_object_get_ex(m, c->key, NULL))
                        return 1; /* deleting a missing key is not an error */
                json_object_object_del(m, c->key);
                return 0;
        }
        json_object_object_add(m, c->key, json_object_get(c->value));
        return 0;
}

/* Every metadata write is an attribute write (api.md §5.1: mutate "set attribute"). */
static void meta_event(const char *type, json_object *doc, const char *key, bool deleted) {
        _cleanup_json_ json_object *extra = json_object_new_object();
        const char *uuid = sf_json_str(doc, "uuid");

        if (!extra || !uuid)
                return;
        json_object_object_add(extra, "attribute", json_object_new_string("metadata"));
        json_object_object_add(extra, "key", json_object_new_string(key));
        json_object_object_add(extra, "deleted", json_object_new_boolean(deleted));
        sf_event_emit(sf_api_ctx(), type, uuid, strcmp(type, "node") == 0 ? NULL : sf_json_str(doc, "namespace"),
                      "mutate", "set attribute", extra, -1);
}

static int meta_get(sf_http_req_t *req, sf_http_resp_t *resp, const char *type) {
        _cleanup_json_ json_object *doc = NULL;
        json_object *m;

        if (resolve(req, resp, type, &doc) < 0)
                return 0;
        if (!json_object_object_get_ex(doc, "metadata", &m) || !json_object_is_type(m, json_type_object))
                return sf_http_json(resp, 200, json_object_new_object());
        return sf_http_json(resp, 200, json_object_get(m));
}

/* POST (key in body) and PUT (key in path, a body "key" overrides: api.md §1.2). */
static int meta_set(sf_http_req_t *req, sf_http_resp_t *resp, const char *type, bool put) {
        static const char *const allowed[] = {"key", "value", NULL};
        _cleanup_json_ json_object *doc = NULL;
        const char *key = put ? req->params[1] : NULL, *body_key = NULL;
        json_object *value = NULL;
        meta_change_t c;
        int r;

        if (resolve(req, resp, type, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_http_body_str(req, "key", &body_key) == 0)
                key = body_key;
        if (!key || !*key)
                return sf_http_error(resp, 400, "no key specified");
        if (!json_object_object_get_ex(req->body, "value", &value) || !truthy(value))
                return sf_http_error(resp, 400, "no value specified");
        if (sf_api_meta_validate(resp, type, key, value) < 0)
                return 0;
        c.key = key;
        c.value = value;
        r = sf_store_update(sf_api_ctx()->store, type, sf_json_str(doc, "uuid"), NULL, apply_meta, &c, NULL);
        if (r < 0)
                return r;
        meta_event(type, doc, key, false);
        return sf_http_json(resp, 200, NULL);
}

static int meta_delete(sf_http_req_t *req, sf_http_resp_t *resp, const char *type) {
        _cleanup_json_ json_object *doc = NULL;
        meta_change_t c = {.key = req->params[1], .value = NULL};
        int r;

        if (resolve(req, resp, type, &doc) < 0)
                return 0;
        if (!c.key || !*c.key)
                return sf_http_error(resp, 400, "no key specified");
        r = sf_store_update(sf_api_ctx()->store, type, sf_json_str(doc, "uuid"), NULL, apply_meta, &c, NULL);
        if (r < 0)
                return r;
        meta_event(type, doc, c.key, true);
        return sf_http_json(resp, 200, NULL);
}

#define META_HANDLERS(name, type)                                                                  \
        int sf_api_##name##_meta_get(sf_http_req_t *req, sf_http_resp_t *resp) {                    \
                return meta_get(req, resp, type);                                                 \
        }                                                                                          \
        int sf_api_##name##_meta_post(sf_http_req_t *req, sf_http_resp_t *resp) {                   \
                return meta_set(req, resp, type, false);                                          \
        }                                                                                          \
        int sf_api_##name##_meta_put(sf_http_req_t *req, sf_http_resp_t *resp) {                    \
                return meta_set(req, resp, type, true);                                           \
        }                                                                                          \
        int sf_api_##name##_meta_delete(sf_http_req_t *req, sf_http_resp_t *resp) {                 \
                return meta_delete(req, resp, type);                                              \
        }

META_HANDLERS(instance, "instance")
META_HANDLERS(network, "network")
META_HANDLERS(interface, "networkinterface")
META_HANDLERS(namespace, "namespace")
META_HANDLERS(node, "node")
