#include "object.h"
#include "keys.h"

#include "event.h"
#include "ipam.h"
#include "log.h"
#include "state.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int sf_obj_create(sf_ctx_t *ctx, const char *type, const char *uuid, json_object *doc) {
        _cleanup_free_ char *stored_ts = NULL;
        /* Mirrored onto the namespace's events (every audit event is), and stored in the
         * record's own script (sf_event_write_then). */
        sf_event_write_t ev = {.ctx = ctx, .objtype = type, .uuid = uuid, .type = "audit",
                               .message = "db record created", .duration = -1};
        int r;

        r = sf_store_put_then(ctx->store, type, uuid, 0, doc, NULL, sf_event_write_then, &ev, NULL, &stored_ts);
        if (r == 0 && stored_ts)
                sf_event_write_publish(&ev, stored_ts);
        sf_event_write_done(&ev);
        if (r == -ESTALE)
                return -EEXIST;
        return r;
}

typedef struct {
        const char *type, *to, *error_message;
        char from[32];
        double now;
} state_change_t;

static int apply_state(json_object *doc, void *ud) {
        state_change_t *c = ud;
        const char *cur = sf_json_str(doc, "state");

        snprintf(c->from, sizeof(c->from), "%s", cur ? cur : "");
        if (cur && strcmp(cur, c->to) == 0 && !c->error_message)
                return 1;
        if (!sf_state_ok(c->type, cur, c->to))
                return -EINVAL;
        json_object_object_add(doc, "state", json_object_new_string(c->to));
        json_object_object_add(doc, "state_updated", json_object_new_double(c->now));
        if (c->error_message)
                json_object_object_add(doc, "error_message", json_object_new_string(c->error_message));
        return 0;
}

/* A write that leaves the state as it was (an error message added) carries no event. */
static bool state_unchanged(json_object *doc, void *ud) {
        const state_change_t *c = ud;

        (void)doc;
        return strcmp(c->from, c->to) == 0;
}

int sf_obj_set_state(sf_ctx_t *ctx, const char *type, const char *uuid, const char *to,
                     const char *error_message, const sf_fence_t *fence, json_object **ret_doc) {
        state_change_t c = {.type = type, .to = to, .error_message = error_message, .now = sf_now()};
        _cleanup_json_ json_object *doc = NULL, *extra = json_object_new_object();
        _cleanup_free_ char *stored_ts = NULL;
        sf_event_write_t ev = {.ctx = ctx, .objtype = type, .uuid = uuid, .type = "mutate",
                               .message = "set attribute", .extra = extra, .duration = -1,
                               .skip = state_unchanged, .skip_ud = &c};
        int r;

        if (!extra)
                return -ENOMEM;
        json_object_object_add(extra, "attribute", json_object_new_string("state"));
        json_object_object_add(extra, "value", json_object_new_string(to));
        json_object_object_add(extra, "update_time", json_object_new_double(c.now));
        if (error_message)
                json_object_object_add(extra, "message", json_object_new_string(error_message));
        /* The record and its event in one script (sf_event_write_then). */
        r = sf_store_update_then(ctx->store, type, uuid, fence, apply_state, &c, sf_event_write_then, &ev, &doc,
                                 &stored_ts);
        if (r == -EINVAL)
                log_warn("%s %s: refused transition %s -> %s", type, uuid, c.from[0] ? c.from : "(none)",
                         to);
        if (r == 0 && stored_ts)
                sf_event_write_publish(&ev, stored_ts);
        sf_event_write_done(&ev);
        if (r < 0)
                return r;
        if (ret_doc)
                *ret_doc = json_object_get(doc);
        return 0;
}

typedef struct {
        const char *field;
        json_object *value;
} field_change_t;

static int apply_field(json_object *doc, void *ud) {
        field_change_t *c = ud;

        json_object_object_add(doc, c->field, json_object_get(c->value));
        return 0;
}

int sf_obj_set_field(sf_ctx_t *ctx, const char *type, const char *uuid, const char *field,
                     json_object *value, const sf_fence_t *fence) {
        field_change_t c = {.field = field, .value = value};
        _cleanup_json_ json_object *extra = json_object_new_object();
        _cleanup_free_ char *stored_ts = NULL;
        sf_event_write_t ev = {.ctx = ctx, .objtype = type, .uuid = uuid, .type = "mutate",
                               .message = "set attribute", .extra = extra, .duration = -1};
        int r = -ENOMEM;

        if (extra) {
                json_object_object_add(extra, "attribute", json_object_new_string(field));
                json_object_object_add(extra, "value", json_object_get(value));
                /* The record and its event in one script (sf_event_write_then). */
                r = sf_store_update_then(ctx->store, type, uuid, fence, apply_field, &c, sf_event_write_then, &ev,
                                         NULL, &stored_ts);
                if (r == 0 && stored_ts)
                        sf_event_write_publish(&ev, stored_ts);
                sf_event_write_done(&ev);
        }
        json_object_put(value);
        return r;
}

int sf_obj_network_live_interfaces(sf_store_t *s, const char *netuuid, int *ret) {
        _cleanup_reply_ redisReply *m = sf_store_cmd(s, "SMEMBERS " SF_KEY_NETIFACES, netuuid);
        int n = 0;

        if (!m || m->type != REDIS_REPLY_ARRAY)
                return -EIO;
        for (size_t i = 0; i < m->elements; i++) {
                _cleanup_json_ json_object *d = NULL;
                int r = sf_store_get(s, "networkinterface", m->element[i]->str, &d, NULL);
                /* Unreadable is not gone: a teardown must not follow a guess. */
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r == 0 && strcmp(sf_json_str(d, "state") ?: "", "deleted") != 0)
                        n++;
        }
        *ret = n;
        return 0;
}

int sf_obj_release_interface(sf_ctx_t *ctx, const char *iface_uuid, char *ret_network) {
        _cleanup_json_ json_object *d = NULL;
        const char *nu, *ip, *mac;
        int r;

        if (ret_network)
                ret_network[0] = 0;
        r = sf_store_get(ctx->store, "networkinterface", iface_uuid, &d, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        nu = sf_json_str(d, "network_uuid");
        ip = sf_json_str(d, "ipv4");
        mac = sf_json_str(d, "macaddr");
        (void)ip;
        /* By owner: also frees an address reserved just before a crash, not yet recorded. */
        if (nu && (r = sf_ipam_release_owner(ctx->store, nu, iface_uuid)) < 0)
                return r;
        if (mac) {
                _cleanup_reply_ redisReply *rr = sf_store_cmd(
                        ctx->store, "EVAL %s 1 " SF_KEY_MAC " %s",
                        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1",
                        mac, iface_uuid);
                if (!rr)
                        return -EIO;
        }
        if (ret_network && nu)
                snprintf(ret_network, SF_UUID_LEN, "%s", nu);
        r = sf_obj_set_state(ctx, "networkinterface", iface_uuid, "deleted", NULL, NULL, NULL);
        return r == -EINVAL ? 0 : r;
}

int sf_obj_purge_deleted(sf_ctx_t *ctx, int older_than_s, int *ret_n) {
        static const char *const types[] = {"networkinterface", "instance", "network"};
        double cutoff = sf_now() - older_than_s;
        int n = 0;

        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
                char **ids = NULL;
                int r = sf_store_index(ctx->store, types[t], "all", NULL, &ids, NULL);
                if (r < 0)
                        return r;
                for (char **p = ids; *p; p++) {
                        _cleanup_json_ json_object *doc = NULL;
                        json_object *ts;
                        r = sf_store_get(ctx->store, types[t], *p, &doc, NULL);
                        if (r < 0 && r != -ENOENT) {
                                /* Redis unsure: purge nothing more on a guess. */
                                sf_strv_free(ids);
                                return r;
                        }
                        if (r < 0 || strcmp(sf_json_str(doc, "state") ?: "", "deleted") != 0 ||
                            !json_object_object_get_ex(doc, "state_updated", &ts) ||
                            json_object_get_double(ts) > cutoff)
                                continue;
                        if (strcmp(types[t], "networkinterface") == 0 && sf_json_str(doc, "network_uuid"))
                                freeReplyObject(sf_store_cmd(ctx->store, "SREM " SF_KEY_NETIFACES " %s",
                                                             sf_json_str(doc, "network_uuid"), *p));
                        if (strcmp(types[t], "network") == 0)
                                freeReplyObject(sf_store_cmd(ctx->store, "DEL " SF_KEY_NETIFACES, *p));
                        freeReplyObject(sf_store_cmd(ctx->store, "DEL " SF_KEY_EVENTTS, types[t], *p));
                        if (sf_store_purge(ctx->store, types[t], *p) == 0)
                                n++;
                }
                sf_strv_free(ids);
        }
        if (ret_n)
                *ret_n = n;
        return 0;
}
