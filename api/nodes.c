/* Node endpoints (api.md §2.10, system only): what the heartbeat records. */
#include "api.h"
#include "keys.h"

#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_LIVE_S 120 /* NODE_CHECKIN_MAXIMUM: older check-ins read as "missing" */

static json_object *node_view(json_object *doc) {
        json_object *v = json_object_new_object();
        int64_t lastseen = sf_json_int(doc, "lastseen", 0);
        const char *state = sf_json_str(doc, "state") ?: "created";

        if (strcmp(state, "created") == 0 && sf_now() - (double)lastseen > NODE_LIVE_S)
                state = "missing";
        json_object_object_add(v, "name", json_object_new_string(sf_json_str(doc, "name") ?: ""));
        json_object_object_add(v, "ip", sf_json_str(doc, "ip") ? json_object_new_string(sf_json_str(doc, "ip")) : NULL);
        json_object_object_add(v, "state", json_object_new_string(state));
        json_object_object_add(v, "lastseen", json_object_new_int64(lastseen));
        json_object_object_add(v, "version", json_object_new_string("3"));
        json_object_object_add(v, "release", json_object_new_string("sf"));
        json_object_object_add(v, "is_etcd_master", json_object_new_boolean(false));
        json_object_object_add(v, "is_hypervisor", json_object_new_boolean(sf_json_bool(doc, "is_hypervisor", false)));
        json_object_object_add(v, "is_network_node", json_object_new_boolean(sf_json_bool(doc, "is_network_node", false)));
        json_object_object_add(v, "is_eventlog_node", json_object_new_boolean(true));
        json_object_object_add(v, "is_cluster_maintainer", NULL);
        return v;
}

int sf_api_nodes_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        sf_caller_t caller;
        char **names = NULL;
        json_object *list;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (!caller.system)
                return sf_http_error(resp, 401, "unauthorized");
        r = sf_store_index(ctx->store, "node", "all", NULL, &names, NULL);
        if (r < 0)
                return r;
        list = json_object_new_array();
        for (char **p = names; *p; p++) {
                _cleanup_json_ json_object *doc = NULL;
                if (sf_store_get(ctx->store, "node", *p, &doc, NULL) == 0)
                        json_object_array_add(list, node_view(doc));
        }
        sf_strv_free(names);
        return sf_http_json(resp, 200, list);
}

/* The node params[0] names, for a system caller; else fills 401/404 and fails.
 * v0.7.2 answered 200 with nulls for an unknown node (a bug): 404 as [dev] does. */
static int system_node(sf_http_req_t *req, sf_http_resp_t *resp, json_object **ret) {
        sf_caller_t caller;

        if (sf_api_auth(req, resp, &caller) < 0)
                return -EACCES;
        if (!caller.system)
                return sf_http_error(resp, 401, "unauthorized"), -EACCES;
        if (sf_store_get(sf_api_ctx()->store, "node", req->params[0], ret, NULL) < 0)
                return sf_http_error(resp, 404, "node not found"), -ENOENT;
        return 0;
}

int sf_api_node_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;

        if (system_node(req, resp, &doc) < 0)
                return 0;
        return sf_http_json(resp, 200, node_view(doc));
}

int sf_api_node_events(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;

        if (system_node(req, resp, &doc) < 0)
                return 0;
        return sf_api_events(req, resp, "node", req->params[0]);
}

/* One lock as upstream shows it ({node, pid, operation}) plus what sf adds: the fencing
 * token and the time left.  The value is "<token>:<holder>", a worker's holder
 * "<node>/<pid>". */
static json_object *lock_view(const char *name, const char *value, long long pttl_ms) {
        json_object *v = json_object_new_object();
        const char *holder = strchr(value, ':'), *slash;
        char node[256] = "";
        long long pid = 0;

        holder = holder ? holder + 1 : "";
        slash = strrchr(holder, '/');
        if (slash) {
                snprintf(node, sizeof(node), "%.*s", (int)(slash - holder), holder);
                pid = atoll(slash + 1);
        } else {
                snprintf(node, sizeof(node), "%s", holder);
        }
        json_object_object_add(v, "node", json_object_new_string(node));
        json_object_object_add(v, "pid", pid > 0 ? json_object_new_int64(pid) : NULL);
        json_object_object_add(v, "operation", json_object_new_string(name));
        json_object_object_add(v, "fence_token", json_object_new_int64(atoll(value)));
        json_object_object_add(v, "ttl_ms", json_object_new_int64(pttl_ms));
        return v;
}

/* GET /admin/locks (api.md §2.12, system only): every lock held now, by key. */
int sf_api_admin_locks(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        json_object *out;
        sf_caller_t caller;
        char cursor[32] = "0";

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (!caller.system)
                return sf_http_error(resp, 401, "unauthorized");
        out = json_object_new_object();
        do {
                _cleanup_reply_ redisReply *r =
                        sf_store_cmd(ctx->store, "SCAN %s MATCH " SF_KEY_LOCK_PREFIX "* COUNT 200", cursor);
                redisReply *keys;

                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
                        json_object_put(out);
                        return -EIO;
                }
                snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
                keys = r->element[1];
                for (size_t i = 0; i < keys->elements; i++) {
                        const char *key = keys->element[i]->str;
                        _cleanup_reply_ redisReply *val = sf_store_cmd(ctx->store, "GET %s", key);
                        _cleanup_reply_ redisReply *ttl = sf_store_cmd(ctx->store, "PTTL %s", key);

                        if (!val || val->type != REDIS_REPLY_STRING)
                                continue; /* released meanwhile */
                        json_object_object_add(out, key,
                                               lock_view(key + strlen(SF_KEY_LOCK_PREFIX), val->str,
                                                         ttl && ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1));
                }
        } while (strcmp(cursor, "0") != 0);
        return sf_http_json(resp, 200, out);
}
