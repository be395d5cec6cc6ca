/* Network endpoints (api.md §2.4). */
#include "api.h"
#include "keys.h"
#include "json.h"

#include "intent.h"
#include "ipam.h"
#include "log.h"
#include "object.h"
#include "state.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <string.h>

#define FLOATING_NET "floating"

/* A VXLAN id nobody holds: random, claimed with SET NX (api.md §7.3). */
static int alloc_vxid(sf_ctx_t *ctx, const char *uuid, uint32_t *ret) {
        for (int attempt = 0; attempt < 100; attempt++) {
                uint32_t id;
                sf_random_bytes(&id, sizeof(id));
                id = 1 + id % 16777215u;
                /* Idempotent: a re-sent claim (lost reply) finds its own uuid and succeeds. */
                _cleanup_reply_ redisReply *r = sf_store_cmd(
                        ctx->store, "EVAL %s 1 " SF_KEY_VXID " %s",
                        "if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end "
                        "if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end return 0",
                        id, uuid);
                if (!r || r->type != REDIS_REPLY_INTEGER)
                        return -EIO;
                if (r->integer == 1) {
                        *ret = id;
                        return 0;
                }
        }
        return -ENOSPC;
}

/* Give back what a network create claimed before it failed (only what is still ours). */
static void network_claims_release(sf_ctx_t *ctx, const char *uuid, uint32_t vxid) {
        freeReplyObject(sf_store_cmd(
                ctx->store, "EVAL %s 1 " SF_KEY_VXID " %s",
                "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1", vxid,
                uuid));
        sf_ipam_release_owner(ctx->store, FLOATING_NET, uuid);
        sf_ipam_drop(ctx->store, uuid);
}

int sf_api_networks_post(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"netblock", "provide_dhcp", "provide_nat", "name",
                                              "namespace", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        const char *netblock = NULL, *name = NULL, *ns = NULL, *err = NULL;
        char uuid[SF_UUID_LEN], fgw[16] = "", canon[32], addr[16];
        _cleanup_json_ json_object *doc = NULL;
        bool dhcp = false, nat = false;
        sf_caller_t caller;
        sf_cidr_t c, fc;
        uint32_t vxid;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        r = sf_http_body_str(req, "netblock", &netblock);
        if (r < 0)
                return sf_http_error(resp, 400, "cannot parse netblock: %s",
                                     r == -ENOENT ? "no netblock specified" : "not a string");
        if (sf_cidr_parse(netblock, &c, &err) < 0) {
                if (strstr(err, "size of"))
                        return sf_http_error(resp, 400, "%s", err);
                return sf_http_error(resp, 400, "cannot parse netblock: %s", netblock);
        }
        /* Guests on it could not reach the egress addresses (and NAT would be ambiguous). */
        if (sf_cidr_parse(ctx->cfg.floating_network, &fc, NULL) == 0 && sf_cidr_overlaps(&c, &fc))
                return sf_http_error(resp, 400, "netblock %s overlaps the floating network %s", netblock,
                                     ctx->cfg.floating_network);
        if (sf_http_body_bool(req, "provide_dhcp", false, &dhcp) < 0 ||
            sf_http_body_bool(req, "provide_nat", false, &nat) < 0)
                return sf_http_error(resp, 400, "provide_dhcp and provide_nat must be booleans");
        r = sf_http_body_str(req, "name", &name);
        if (r == -EINVAL)
                return sf_http_error(resp, 400, "network name is not a string");
        if (name && sf_api_name_check(resp, "network", name) < 0)
                return 0;
        r = sf_http_body_str(req, "namespace", &ns);
        if (r == -EINVAL)
                return sf_http_error(resp, 400, "namespace is not a string");
        if (!ns)
                ns = caller.ns;
        if (strcmp(ns, caller.ns) != 0 && !caller.system)
                return sf_http_error(resp, 401, "only admins can create resources in a different namespace");
        {
                _cleanup_json_ json_object *nsdoc = NULL;
                if (sf_store_get(ctx->store, "namespace", ns, &nsdoc, NULL) < 0 ||
                    strcmp(sf_json_str(nsdoc, "state") ?: "", "created") != 0)
                        return sf_http_error(resp, 404, "namespace not found");
        }
        if (nat && sf_cidr_parse(ctx->cfg.floating_network, &fc, &err) < 0)
                return sf_http_error(resp, 500, "server error: bad floating network");

        /* Everything is valid: claim a VXLAN id and an egress address, and give both back
         * if anything after fails (a crash in between leaves them named by our uuid). */
        sf_uuid_new(uuid);
        r = alloc_vxid(ctx, uuid, &vxid);
        if (r < 0)
                return r == -ENOSPC ? sf_http_error(resp, 507, "no free VXLAN ids") : r;
        if (nat) {
                sf_ipam_init(ctx->store, FLOATING_NET, &fc);
                r = sf_ipam_reserve(ctx->store, FLOATING_NET, &fc, NULL, uuid, fgw);
                if (r == -ENOSPC)
                        sf_http_error(resp, 507, "No free addresses on floating network");
                if (r < 0)
                        goto release;
        }
        sf_cidr_addr(&c, 0, addr);
        snprintf(canon, sizeof(canon), "%s/%d", addr, c.prefix);
        doc = json_object_new_object();
        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "name", name ? json_object_new_string(name) : NULL);
        json_object_object_add(doc, "namespace", json_object_new_string(ns));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "netblock", json_object_new_string(canon));
        json_object_object_add(doc, "provide_dhcp", json_object_new_boolean(dhcp));
        json_object_object_add(doc, "provide_nat", json_object_new_boolean(nat));
        json_object_object_add(doc, "floating_gateway", fgw[0] ? json_object_new_string(fgw) : NULL);
        json_object_object_add(doc, "vxid", json_object_new_int64(vxid));
        json_object_object_add(doc, "node", json_object_new_string(ctx->cfg.network_node));
        r = sf_ipam_init(ctx->store, uuid, &c);
        if (r == 0)
                r = sf_obj_create(ctx, "network", uuid, doc);
        if (r < 0)
                goto release;
        /* From here the record names the claims: a failed publish is re-driven, not undone. */
        r = sf_intent_submit(ctx, ctx->cfg.network_node, "network", "network.create", "network", uuid, ns, NULL,
                             NULL);
        if (r < 0)
                return r;
        return sf_http_json(resp, 200, sf_view_network(doc));
release:
        network_claims_release(ctx, uuid, vxid);
        return resp->status ? 0 : r;
}

static json_object *list_view(sf_ctx_t *ctx, json_object *doc) {
        json_object *v = sf_view_network(doc);

        (void)ctx;
        /* [dev] name; v0.7.2's list reported vxlan_id 0 (a bug): report the real one. */
        json_object_object_add(v, "vxlan_id", json_object_new_int64(sf_json_int(doc, "vxid", 0)));
        return v;
}

int sf_api_networks_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        return sf_api_list(req, resp, "network", list_view);
}

int sf_api_network_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;

        if (sf_api_find(req, resp, "network", &caller, &doc) < 0)
                return 0;
        return sf_http_json(resp, 200, sf_view_network(doc));
}

/* Ask for one network's delete: with live interfaces it waits in delete-wait for them,
 * either way its node gets network.delete.  *ret_active: live interfaces (optional). */
static int network_request_delete(sf_ctx_t *ctx, json_object *doc, int *ret_active) {
        const char *uuid = sf_json_str(doc, "uuid"), *state = sf_json_str(doc, "state") ?: "";
        int r, active = 0;

        r = sf_obj_network_live_interfaces(ctx->store, uuid, &active);
        if (r < 0)
                return r;
        if (active > 0 && strcmp(state, "created") == 0)
                sf_obj_set_state(ctx, "network", uuid, "delete-wait", NULL, NULL, NULL);
        r = sf_intent_submit(ctx, sf_json_str(doc, "node") ?: ctx->cfg.network_node, "network",
                             "network.delete", "network", uuid, sf_json_str(doc, "namespace"), NULL, NULL);
        if (r == 0 && ret_active)
                *ret_active = active;
        return r;
}

int sf_api_network_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"namespace", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *after = NULL;
        const char *ns = NULL, *state, *uuid;
        sf_caller_t caller;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (strcmp(req->params[0], "floating") == 0)
                return sf_http_error(resp, 403, "you cannot delete the floating network");
        if (sf_api_lookup(ctx, &caller, "network", req->params[0], resp, &doc) < 0)
                return 0;
        sf_http_body_str(req, "namespace", &ns);
        if (ns && strcmp(ns, sf_json_str(doc, "namespace") ?: "") != 0)
                return sf_http_error(resp, 404, "network not in namespace");
        state = sf_json_str(doc, "state") ?: "";
        uuid = sf_json_str(doc, "uuid");
        if (strcmp(state, "deleted") == 0)
                return sf_http_json(resp, 200, NULL);
        r = network_request_delete(ctx, doc, NULL);
        if (r < 0)
                return r;
        if (sf_store_get(ctx->store, "network", uuid, &after, NULL) < 0)
                return -EIO;
        return sf_http_json(resp, 200, sf_view_network(after));
}

/* DELETE /networks (api.md §2.6): every network of one namespace.  A network that still
 * has interfaces is left alone unless clean_wait (then it waits in delete-wait for them);
 * if any was left, the answer is upstream's 403 whose error is {"deleted", "unable"}. */
int sf_api_networks_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"confirm", "namespace", "clean_wait", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *deleted = json_object_new_array(), *unable = json_object_new_array();
        const char *ns = NULL;
        bool clean_wait = false;
        sf_caller_t caller;
        char **uuids = NULL;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_api_delete_all_target(req, resp, &caller, &ns) < 0)
                return 0;
        if (sf_http_body_bool(req, "clean_wait", false, &clean_wait) < 0)
                return sf_http_error(resp, 400, "clean_wait must be a boolean");
        r = sf_store_index(ctx->store, "network", "ns", ns, &uuids, NULL);
        if (r < 0)
                return r;
        for (char **p = uuids; *p && r >= 0; p++) {
                _cleanup_json_ json_object *doc = NULL;
                int active = 0;

                r = sf_store_get(ctx->store, "network", *p, &doc, NULL);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r < 0 || strcmp(sf_json_str(doc, "state") ?: "", "deleted") == 0 ||
                    strcmp(sf_json_str(doc, "name") ?: "", FLOATING_NET) == 0)
                        continue;
                r = sf_obj_network_live_interfaces(ctx->store, *p, &active);
                if (r < 0)
                        break;
                if (active > 0 && !clean_wait) {
                        json_object_array_add(unable, json_object_new_string(*p));
                        continue;
                }
                r = network_request_delete(ctx, doc, NULL);
                if (r == 0)
                        json_object_array_add(deleted, json_object_new_string(*p));
        }
        sf_strv_free(uuids);
        if (r < 0)
                return r;
        if (json_object_array_length(unable) > 0) {
                _cleanup_json_ json_object *env = json_object_new_object(), *err = json_object_new_object();
                _cleanup_free_ char *text = NULL;

                json_object_object_add(err, "deleted", json_object_get(deleted));
                json_object_object_add(err, "unable", json_object_get(unable));
                json_object_object_add(env, "error", json_object_get(err));
                json_object_object_add(env, "status", json_object_new_int(403));
                text = sf_json_dumps(env);
                if (!text)
                        return -ENOMEM;
                return sf_http_raw(resp, 403, "application/json", text, strlen(text));
        }
        return sf_http_json(resp, 200, json_object_get(deleted));
}

int sf_api_network_events(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;

        if (sf_api_find(req, resp, "network", &caller, &doc) < 0)
                return 0;
        return sf_api_events(req, resp, "network", sf_json_str(doc, "uuid"));
}

int sf_api_network_interfaces(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_reply_ redisReply *m = NULL;
        sf_caller_t caller;
        json_object *list;

        if (sf_api_find(req, resp, "network", &caller, &doc) < 0)
                return 0;
        m = sf_store_cmd(ctx->store, "SMEMBERS " SF_KEY_NETIFACES, sf_json_str(doc, "uuid"));
        if (!m || m->type != REDIS_REPLY_ARRAY)
                return -EIO;
        list = json_object_new_array();
        for (size_t i = 0; i < m->elements; i++) {
                _cleanup_json_ json_object *d = NULL;
                if (sf_store_get(ctx->store, "networkinterface", m->element[i]->str, &d, NULL) == 0)
                        json_object_array_add(list, sf_view_interface(d));
        }
        return sf_http_json(resp, 200, list);
}
