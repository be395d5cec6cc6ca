#include "event.h"
#include "keys.h"

#include "log.h"
#include "sf.pb-c.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Timestamps are unique per object (api.md §5.1): bump by 10 us on collision.
 * KEYS[1] list; ARGV[1] ts, ARGV[2] rest of the record (JSON after the timestamp). */
static const char PUSH_LUA[] =
        "local ts = tonumber(ARGV[1])\n"
        "local last = redis.call('GET', KEYS[2])\n"
        "if last and tonumber(last) >= ts then ts = tonumber(last) + 0.00001 end\n"
        "redis.call('SET', KEYS[2], string.format('%.6f', ts))\n"
        "redis.call('LPUSH', KEYS[1], string.format('{\"timestamp\": %.6f, ', ts) .. ARGV[2])\n"
        "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)\n"
        "return 1\n";

static const char *const TYPES[] = {"audit", "mutate", "status", "usage",
                                    "resources", "prune", "historic"};

bool sf_event_type_valid(const char *type) {
        for (size_t i = 0; i < SF_ARRAY_SIZE(TYPES); i++)
                if (strcmp(type, TYPES[i]) == 0)
                        return true;
        return false;
}

static void subject_token(const char *in, char *out, size_t len) {
        sf_config_node_token(in && *in ? in : "_", out, len);
}

int sf_event_emit(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns,
                  const char *type, const char *message, json_object *extra, double duration) {
        _cleanup_json_ json_object *rest = json_object_new_object();
        char ts[32], key[256], lastkey[256], keep[16];
        double now = sf_now();
        const char *text;
        _cleanup_reply_ redisReply *r = NULL;

        if (!rest)
                return -ENOMEM;
        json_object_object_add(rest, "type", json_object_new_string(type));
        json_object_object_add(rest, "fqdn", json_object_new_string(ctx->cfg.node));
        json_object_object_add(rest, "duration",
                               duration >= 0 ? json_object_new_double(duration) : NULL);
        json_object_object_add(rest, "message", json_object_new_string(message));
        json_object_object_add(rest, "extra", extra ? json_object_get(extra) : json_object_new_object());
        text = json_object_to_json_string_ext(rest, JSON_C_TO_STRING_PLAIN);
        snprintf(ts, sizeof(ts), "%.6f", now);
        snprintf(key, sizeof(key), SF_KEY_EVENTS, objtype, uuid);
        snprintf(lastkey, sizeof(lastkey), SF_KEY_EVENTTS, objtype, uuid);
        snprintf(keep, sizeof(keep), "%d", SF_EVENTS_KEEP);
        /* rest is {"type":...}: drop its '{' since the script writes the timestamp first. */
        r = sf_store_cmd_once(ctx->store, "EVAL %s 2 %s %s %s %s %s", PUSH_LUA, key, lastkey, ts, text + 1,
                         keep);
        if (!r || r->type == REDIS_REPLY_ERROR) {
                log_warn("event %s/%s: not stored: %s", objtype, uuid, r ? r->str : "redis down");
                return -EIO;
        }
        if (ctx->bus) {
                Sf__Event ev = SF__EVENT__INIT;
                char subject[512], t_ns[80], t_uuid[80];
                uint8_t *buf;
                size_t len;

                ev.object_type = (char *)objtype;
                ev.object_uuid = (char *)uuid;
                ev.ns = (char *)(ns ? ns : "");
                ev.type = (char *)type;
                ev.timestamp = now;
                ev.fqdn = ctx->cfg.node;
                ev.has_duration = duration >= 0;
                ev.duration = duration >= 0 ? duration : 0;
                ev.message = (char *)message;
                ev.extra_json = (char *)(extra ? json_object_to_json_string_ext(extra, JSON_C_TO_STRING_PLAIN)
                                               : "{}");
                len = sf__event__get_packed_size(&ev);
                buf = malloc(len ? len : 1);
                if (!buf)
                        return -ENOMEM;
                sf__event__pack(&ev, buf);
                subject_token(ns, t_ns, sizeof(t_ns));
                subject_token(uuid, t_uuid, sizeof(t_uuid));
                snprintf(subject, sizeof(subject), "sf.event.%s.%s.%s", t_ns, objtype, t_uuid);
                if (sf_bus_publish(ctx->bus, subject, NULL, buf, len) < 0)
                        log_warn("event %s/%s: not published", objtype, uuid);
                free(buf);
        }
        return 0;
}

int sf_event_list(sf_store_t *s, const char *objtype, const char *uuid, const char *type_filter,
                  int limit, json_object **ret_array) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "LRANGE " SF_KEY_EVENTS " 0 %d", objtype, uuid,
                                                     SF_EVENTS_KEEP - 1);
        json_object *arr;

        if (!r || r->type != REDIS_REPLY_ARRAY)
                return -EIO;
        arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < r->elements && (limit <= 0 || (int)json_object_array_length(arr) < limit);
             i++) {
                json_object *ev = json_tokener_parse(r->element[i]->str);
                if (!ev)
                        continue;
                if (type_filter && strcmp(sf_json_str(ev, "type") ?: "", type_filter) != 0) {
                        json_object_put(ev);
                        continue;
                }
                json_object_array_add(arr, ev);
        }
        *ret_array = arr;
        return 0;
}
