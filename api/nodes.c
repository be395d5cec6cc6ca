/* Node endpoints (api.md §2.10, system only): what the heartbeat records. */
#include "api.h"
#include "keys.h"

#include "event.h"
#include "intent.h"
#include "lock.h"
#include "object.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *node_view(json_object *doc) {
        json_object *v = json_object_new_object();
        int64_t lastseen = sf_json_int(doc, "lastseen", 0);
        const char *state = sf_json_str(doc, "state") ?: "created";

        /* The heartbeats mark silent nodes missing; if none runs, the view still tells. */
        if (strcmp(state, "created") == 0 && sf_now() - (double)lastseen > sf_api_ctx()->cfg.node_checkin_max_s)
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

/* ---- node delete ---- */

#define NODE_LOCK_TTL_MS 30000 /* as the workers hold instance locks */
#define NODE_LOCK_WAIT_MS 2000

/* Move one instance of a deleted node to error, under the instance's lock: taking it
 * issues a newer fencing token, so a late write from the deleted node's worker is refused.
 * <state> -> <state>-error (with the reason) -> error, as a failed create does.  1 if it
 * was moved, 0 if there was nothing to do (finished, moved elsewhere, or a state the
 * machine cannot leave that way), -EBUSY if the lock stayed held (left for the next
 * DELETE), or another negative errno. */
static int node_fail_instance(sf_ctx_t *ctx, const char *node, const char *uuid) {
        _cleanup_json_ json_object *inst = NULL;
        char lockname[64], to[48], msg[160];
        const char *state;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        int r;

        /* Finished ones need no lock (the common case: a node's old instances). */
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        state = sf_json_str(inst, "state") ?: "";
        if (strcmp(state, "deleted") == 0 || strcmp(state, "error") == 0)
                return 0;
        json_object_put(inst);
        inst = NULL;
        snprintf(lockname, sizeof(lockname), "instance/%s", uuid);
        r = sf_lock_acquire_worker(ctx->store, lockname, ctx->cfg.node, NODE_LOCK_TTL_MS, NODE_LOCK_WAIT_MS, &lock);
        if (r < 0)
                return r;
        fence = sf_lock_fence(lock);
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r < 0)
                goto cleanup;
        state = sf_json_str(inst, "state") ?: "";
        /* Moved elsewhere meanwhile, or already finished: nothing to do. */
        if (strcmp(sf_json_str(inst, "node") ?: "", node) != 0 || strcmp(state, "deleted") == 0 ||
            strcmp(state, "error") == 0)
                goto cleanup;
        snprintf(msg, sizeof(msg), "node %s was deleted", node);
        if (strlen(state) < 6 || strcmp(state + strlen(state) - 6, "-error") != 0) {
                snprintf(to, sizeof(to), "%s-error", state);
                r = sf_obj_set_state(ctx, "instance", uuid, to, msg, &fence, NULL);
                if (r < 0)
                        goto cleanup;
        }
        r = sf_obj_set_state(ctx, "instance", uuid, "error", NULL, &fence, NULL);
        if (r == 0)
                r = 1;
cleanup:
        sf_lock_release(ctx->store, lock);
        return r == -ENOENT || r == -EINVAL ? 0 : r;
}

/* Every instance placed on node goes to error; *ret_busy counts those left locked. */
static int node_fail_instances(sf_ctx_t *ctx, const char *node, int *ret_failed, int *ret_busy) {
        char **uuids = NULL;
        int r, failed = 0, busy = 0;

        r = sf_store_index(ctx->store, "instance", "node", node, &uuids, NULL);
        if (r < 0)
                return r;
        for (char **p = uuids; *p; p++) {
                r = node_fail_instance(ctx, node, *p);
                if (r == -EBUSY) {
                        busy++;
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                failed += r;
                r = 0;
        }
        sf_strv_free(uuids);
        if (r < 0)
                return r;
        *ret_failed = failed;
        *ret_busy = busy;
        return 0;
}

/* Its queue is drained: every intent still pending for one of its workers fails (nobody
 * will run it; its redrive ran on the node itself).  *ret_n = how many. */
static int node_drain_intents(sf_ctx_t *ctx, const char *node, int *ret_n) {
        _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx->store, "ZRANGE " SF_KEY_INTENTS_PENDING " 0 -1");
        char prefix[160], msg[160];
        int n = 0;

        if (!ids || ids->type != REDIS_REPLY_ARRAY)
                return -EIO;
        sf_intent_subject(node, "", prefix, sizeof(prefix)); /* "sf.intent.<node>." */
        snprintf(msg, sizeof(msg), "node %s was deleted", node);
        for (size_t i = 0; i < ids->elements; i++) {
                const char *id = ids->element[i]->str;
                _cleanup_reply_ redisReply *sub = id ? sf_store_cmd(ctx->store, "HGET " SF_KEY_INTENT " subject", id)
                                                     : NULL;

                if (!sub || sub->type != REDIS_REPLY_STRING || strncmp(sub->str, prefix, strlen(prefix)) != 0)
                        continue;
                if (sf_intent_finish(ctx->store, id, SF_INTENT_FAILED, msg) == 0)
                        n++;
        }
        *ret_n = n;
        return 0;
}

/* DELETE /nodes/<node> (api.md §2.10, system only): the node becomes `deleted` for good
 * (its heartbeat no longer makes it schedulable: docs/architecture.md "Node delete"), then
 * its instances go to error and the intents queued for it fail.  Repeating it finishes what a crash or a held lock left. */
int sf_api_node_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *after = NULL, *extra = NULL;
        const char *node = req->params[0];
        int r, failed = 0, busy = 0, drained = 0;

        if (system_node(req, resp, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        r = sf_obj_set_state(ctx, "node", node, "deleted", NULL, NULL, NULL);
        if (r < 0 && r != -EINVAL)
                return r;
        r = node_fail_instances(ctx, node, &failed, &busy);
        if (r < 0)
                return r;
        r = node_drain_intents(ctx, node, &drained);
        if (r < 0)
                return r;
        extra = json_object_new_object();
        if (!extra)
                return -ENOMEM;
        json_object_object_add(extra, "instances_failed", json_object_new_int(failed));
        json_object_object_add(extra, "instances_busy", json_object_new_int(busy));
        json_object_object_add(extra, "intents_failed", json_object_new_int(drained));
        sf_event_emit(ctx, "node", node, NULL, "audit", "node deleted", extra, -1);
        r = sf_store_get(ctx->store, "node", node, &after, NULL);
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, node_view(after));
}
