/* sf-api: per-thread context, authentication, lookups, views, events, capabilities. */
#include "api.h"
#include "authguard.h"

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

int sf_api_auth(sf_http_req_t *req, sf_http_resp_t *resp, sf_caller_t *caller) {
        sf_ctx_t *ctx = sf_api_ctx();
        sf_auth_claims_t claims;
        const char *msg = NULL, *nonce;
        _cleanup_json_ json_object *ns = NULL;
        json_object *keys, *key;
        int r;

        if (!ctx)
                return sf_http_error(resp, 500, "server error: state store unavailable"), -EIO;
        r = sf_auth_token_verify(ctx->cfg.auth_secret, req->authorization, &claims, &msg);
        if (r == -EACCES)
                return sf_http_error(resp, 401, "%s", msg ? msg : ""), r;
        if (r < 0)
                return sf_http_error(resp, 500, "server error: token check failed"), r;
        r = sf_store_get(ctx->store, "namespace", claims.ns, &ns, NULL);
        if (r < 0 || strcmp(sf_json_str(ns, "state") ?: "", "created") != 0)
                return sf_http_error(resp, 401, "%s", ""), -EACCES;
        /* Deleting or re-posting a key rotates its nonce: outstanding tokens die. */
        if (!json_object_object_get_ex(ns, "keys", &keys) ||
            !json_object_object_get_ex(keys, claims.keyname, &key) ||
            !(nonce = sf_json_str(key, "nonce")) || strcmp(nonce, claims.nonce) != 0)
                return sf_http_error(resp, 401, "%s", ""), -EACCES;
        snprintf(caller->ns, sizeof(caller->ns), "%s", claims.ns);
        snprintf(caller->keyname, sizeof(caller->keyname), "%s", claims.keyname);
        caller->system = strcmp(claims.ns, "system") == 0;
        caller->exp = claims.exp;
        return 0;
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

json_object *sf_view_instance(sf_ctx_t *ctx, json_object *doc) {
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
                        if (iu && sf_store_get(ctx->store, "networkinterface", iu, &idoc, NULL) == 0)
                                json_object_array_add(list, sf_view_interface(idoc));
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

/* ---- lists ---- */

int sf_api_list(sf_http_req_t *req, sf_http_resp_t *resp, const char *type,
                json_object *(*view)(sf_ctx_t *ctx, json_object *doc)) {
        static const char *const allowed[] = {"all", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        sf_caller_t caller;
        char **ids = NULL;
        json_object *list;
        bool all = false;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_http_body_bool(req, "all", false, &all) < 0)
                return sf_http_error(resp, 400, "all must be a boolean");
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
                "<li>events-by-type</li>\n"
                "<li>instance-get</li>\n"
                "<li>interface-metadata</li>\n"
                "<li>node-get</li>\n"
                "<li>node-metadata</li>\n"
                "</ul></body></html>\n";

        (void)req;
        return sf_http_raw(resp, 200, "text/html; charset=utf-8", page, sizeof(page) - 1);
}
