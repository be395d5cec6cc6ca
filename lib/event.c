#include "event.h"
#include "keys.h"

#include "log.h"
#include "sf.pb-c.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Push one record onto a (object, event type) list.  Timestamps are unique per object
 * (api.md §5.1): bump by 10 us on collision.  Then trim: the cap, then (bounded, so a
 * write never stalls Redis) the oldest records past the retention; the list expires when
 * even its newest record is past it, so objects that fall silent leave nothing behind.
 * KEYS[1] list, KEYS[2] object's last timestamp; KEYS[3], KEYS[4] the same for the
 * namespace's audit mirror (optional).  ARGV[1] now, ARGV[2] the record after its
 * timestamp, ARGV[3] cap, ARGV[4] retention s (-1 forever), ARGV[5] the mirror's record.
 * Returns the object's stored timestamp, so the bus copy carries the same one. */
static const char PUSH_LUA[] =
        "local keep, ret = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
        "local function push(list, lastkey, rest)\n"
        "  local ts = tonumber(ARGV[1])\n"
        "  local last = redis.call('GET', lastkey)\n"
        "  if last and tonumber(last) >= ts then ts = tonumber(last) + 0.00001 end\n"
        "  redis.call('SET', lastkey, string.format('%.6f', ts))\n"
        "  redis.call('LPUSH', list, string.format('{\"timestamp\": %.6f, ', ts) .. rest)\n"
        "  redis.call('LTRIM', list, 0, keep - 1)\n"
        "  if ret < 0 then redis.call('PERSIST', list) return ts end\n"
        "  local cutoff = tonumber(ARGV[1]) - ret\n"
        "  for i = 1, 100 do\n"
        "    local oldest = redis.call('LINDEX', list, -1)\n"
        "    local t = oldest and tonumber(string.match(oldest, '^{\"timestamp\": ([%d%.]+)'))\n"
        "    if not t or t >= cutoff then break end\n"
        "    redis.call('RPOP', list)\n"
        "  end\n"
        "  redis.call('EXPIRE', list, ret + 1)\n"
        "  return ts\n"
        "end\n"
        "local ts = push(KEYS[1], KEYS[2], ARGV[2])\n"
        "if KEYS[3] then push(KEYS[3], KEYS[4], ARGV[5]) end\n"
        "return string.format('%.6f', ts)\n";

const char *const SF_EVENT_TYPES[SF_CONFIG_EVENT_TYPES] = {"audit", "mutate", "status", "usage",
                                                           "resources", "prune", "historic"};

/* api.md §5 defaults until sf_event_retention_set. */
static int64_t retention_s[SF_CONFIG_EVENT_TYPES] = {90 * 86400, 90 * 86400, 7 * 86400, 30 * 86400,
                                                     7 * 86400,  30 * 86400, 90 * 86400};

void sf_event_retention_set(const int64_t secs[SF_CONFIG_EVENT_TYPES]) {
        for (int i = 0; i < SF_CONFIG_EVENT_TYPES; i++)
                if (secs[i] == -1 || secs[i] > 0)
                        retention_s[i] = secs[i];
}

static int type_index(const char *type) {
        for (int i = 0; type && i < SF_CONFIG_EVENT_TYPES; i++)
                if (strcmp(type, SF_EVENT_TYPES[i]) == 0)
                        return i;
        return -1;
}

bool sf_event_type_valid(const char *type) { return type_index(type) >= 0; }

static void subject_token(const char *in, char *out, size_t len) {
        sf_config_node_token(in && *in ? in : "_", out, len);
}

/* The stored record after its timestamp: {"type": ..., "fqdn": ..., "duration": ...,
 * "message": ..., "extra": ...} without its '{' (the script writes the timestamp first). */
static char *record_rest(sf_ctx_t *ctx, const char *type, const char *message, json_object *extra,
                         double duration) {
        _cleanup_json_ json_object *rest = json_object_new_object();
        const char *text;

        if (!rest)
                return NULL;
        json_object_object_add(rest, "type", json_object_new_string(type));
        json_object_object_add(rest, "fqdn", json_object_new_string(ctx->cfg.node));
        json_object_object_add(rest, "duration", duration >= 0 ? json_object_new_double(duration) : NULL);
        json_object_object_add(rest, "message", json_object_new_string(message));
        json_object_object_add(rest, "extra", extra ? json_object_get(extra) : json_object_new_object());
        text = json_object_to_json_string_ext(rest, JSON_C_TO_STRING_PLAIN);
        return text ? strdup(text + 1) : NULL;
}

/* The namespace's copy of an audit event: the same record, extra naming the object. */
static char *mirror_rest(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *message,
                         json_object *extra, double duration) {
        _cleanup_json_ json_object *x = NULL;

        if (extra && json_object_is_type(extra, json_type_object))
                json_object_deep_copy(extra, &x, NULL);
        if (!x)
                x = json_object_new_object();
        if (!x)
                return NULL;
        json_object_object_add(x, "object_type", json_object_new_string(objtype));
        json_object_object_add(x, "object_uuid", json_object_new_string(uuid));
        return record_rest(ctx, "audit", message, x, duration);
}

/* Store one event (and its namespace mirror) in one script; *ret_ts gets the timestamp
 * stored (perhaps bumped past the object's last one). */
static int event_store(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns, const char *type,
                       const char *message, json_object *extra, double duration, double now, double *ret_ts) {
        _cleanup_free_ char *rest = record_rest(ctx, type, message, extra, duration), *mirror = NULL;
        char ts[32], key[256], lastkey[256], keep[16], ret[24], nskey[256], nslast[256];
        int ti = type_index(type);
        bool mirrored = ti == 0 && ns && *ns && strcmp(objtype, "namespace") != 0;
        _cleanup_reply_ redisReply *r = NULL;

        if (!rest)
                return -ENOMEM;
        if (ti < 0)
                return -EINVAL;
        snprintf(ts, sizeof(ts), "%.6f", now);
        snprintf(key, sizeof(key), SF_KEY_EVENTS, objtype, uuid, type);
        snprintf(lastkey, sizeof(lastkey), SF_KEY_EVENTTS, objtype, uuid);
        snprintf(keep, sizeof(keep), "%d", SF_EVENTS_KEEP);
        snprintf(ret, sizeof(ret), "%lld", (long long)retention_s[ti]);
        if (mirrored) {
                mirror = mirror_rest(ctx, objtype, uuid, message, extra, duration);
                if (!mirror)
                        return -ENOMEM;
                snprintf(nskey, sizeof(nskey), SF_KEY_EVENTS, "namespace", ns, type);
                snprintf(nslast, sizeof(nslast), SF_KEY_EVENTTS, "namespace", ns);
                r = sf_store_cmd_once(ctx->store, "EVAL %s 4 %s %s %s %s %s %s %s %s %s", PUSH_LUA, key, lastkey,
                                      nskey, nslast, ts, rest, keep, ret, mirror);
        } else {
                r = sf_store_cmd_once(ctx->store, "EVAL %s 2 %s %s %s %s %s %s", PUSH_LUA, key, lastkey, ts, rest,
                                      keep, ret);
        }
        if (!r || r->type == REDIS_REPLY_ERROR) {
                log_warn("event %s/%s: not stored: %s", objtype, uuid, r ? r->str : "redis down");
                return -EIO;
        }
        *ret_ts = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : now;
        return 0;
}

/* The bus copy of a stored event, with the timestamp Redis stored. */
static int event_publish(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns, const char *type,
                         const char *message, json_object *extra, double duration, double stored) {
        Sf__Event ev = SF__EVENT__INIT;
        char subject[512], t_ns[80], t_uuid[80];
        uint8_t *buf;
        size_t len;

        if (!ctx->bus)
                return 0;
        ev.object_type = (char *)objtype;
        ev.object_uuid = (char *)uuid;
        ev.ns = (char *)(ns ? ns : "");
        ev.type = (char *)type;
        /* The stored timestamp (perhaps bumped), so both copies name one event. */
        ev.timestamp = stored;
        ev.fqdn = ctx->cfg.node;
        ev.has_duration = duration >= 0;
        ev.duration = duration >= 0 ? duration : 0;
        ev.message = (char *)message;
        ev.extra_json = (char *)(extra ? json_object_to_json_string_ext(extra, JSON_C_TO_STRING_PLAIN) : "{}");
        len = sf__event__get_packed_size(&ev);
        buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        sf__event__pack(&ev, buf);
        subject_token(ns, t_ns, sizeof(t_ns));
        subject_token(uuid, t_uuid, sizeof(t_uuid));
        snprintf(subject, sizeof(subject), "sf.event.%s.%s.%s", t_ns, objtype, t_uuid);
        if (sf_bus_publish_async(ctx->bus, subject, buf, len) < 0)
                log_warn("event %s/%s: not published", objtype, uuid);
        free(buf);
        return 0;
}

int sf_event_emit(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns,
                  const char *type, const char *message, json_object *extra, double duration) {
        double now = sf_now(), stored = now;
        int r;

        r = event_store(ctx, objtype, uuid, ns, type, message, extra, duration, now, &stored);
        if (r < 0)
                return r;
        return event_publish(ctx, objtype, uuid, ns, type, message, extra, duration, stored);
}

/* PUSH_LUA as the `then_` of a write (sf_store_update_then): k = {list, lastkey[,
 * mirror list, mirror lastkey]}, a = {now, rest, cap, retention, mirror rest}. */
static const char THEN_LUA[] =
        "local function push(list, lastkey, rest, now, keep, ret)\n"
        "  local ts = now\n"
        "  local last = redis.call('GET', lastkey)\n"
        "  if last and tonumber(last) >= ts then ts = tonumber(last) + 0.00001 end\n"
        "  redis.call('SET', lastkey, string.format('%.6f', ts))\n"
        "  redis.call('LPUSH', list, string.format('{\"timestamp\": %.6f, ', ts) .. rest)\n"
        "  redis.call('LTRIM', list, 0, keep - 1)\n"
        "  if ret < 0 then redis.call('PERSIST', list) return ts end\n"
        "  local cutoff = now - ret\n"
        "  for i = 1, 100 do\n"
        "    local oldest = redis.call('LINDEX', list, -1)\n"
        "    local t = oldest and tonumber(string.match(oldest, '^{\"timestamp\": ([%d%.]+)'))\n"
        "    if not t or t >= cutoff then break end\n"
        "    redis.call('RPOP', list)\n"
        "  end\n"
        "  redis.call('EXPIRE', list, ret + 1)\n"
        "  return ts\n"
        "end\n"
        "local function then_(k, a)\n"
        "  local now, keep, ret = tonumber(a[1]), tonumber(a[3]), tonumber(a[4])\n"
        "  local ts = push(k[1], k[2], a[2], now, keep, ret)\n"
        "  if k[3] then push(k[3], k[4], a[5], now, keep, ret) end\n"
        "  return string.format('%.6f', ts)\n"
        "end\n";

void sf_event_write_done(sf_event_write_t *ev) {
        free(ev->rest);
        free(ev->mirror);
        free(ev->ns);
        ev->rest = ev->mirror = ev->ns = NULL;
}

int sf_event_write_then(json_object *doc, void *userdata, sf_store_then_t *then) {
        sf_event_write_t *ev = userdata;
        const char *ns = sf_json_str(doc, "namespace");
        int ti = type_index(ev->type);
        bool mirrored;

        sf_event_write_done(ev);
        if (ev->skip && ev->skip(doc, ev->skip_ud))
                return 1;
        if (ti < 0)
                return -EINVAL;
        mirrored = ti == 0 && ns && *ns && strcmp(ev->objtype, "namespace") != 0;
        ev->ns = ns ? strdup(ns) : NULL;
        ev->rest = record_rest(ev->ctx, ev->type, ev->message, ev->extra, ev->duration);
        if (mirrored)
                ev->mirror = mirror_rest(ev->ctx, ev->objtype, ev->uuid, ev->message, ev->extra, ev->duration);
        if ((ns && !ev->ns) || !ev->rest || (mirrored && !ev->mirror))
                return -ENOMEM;
        ev->now = sf_now();
        snprintf(ev->now_s, sizeof(ev->now_s), "%.6f", ev->now);
        snprintf(ev->key, sizeof(ev->key), SF_KEY_EVENTS, ev->objtype, ev->uuid, ev->type);
        snprintf(ev->lastkey, sizeof(ev->lastkey), SF_KEY_EVENTTS, ev->objtype, ev->uuid);
        snprintf(ev->keep, sizeof(ev->keep), "%d", SF_EVENTS_KEEP);
        snprintf(ev->ret, sizeof(ev->ret), "%lld", (long long)retention_s[ti]);
        *then = (sf_store_then_t){.lua = THEN_LUA, .nkeys = 2, .nargs = 4};
        then->keys[0] = ev->key;
        then->keys[1] = ev->lastkey;
        then->args[0] = ev->now_s;
        then->args[1] = ev->rest;
        then->args[2] = ev->keep;
        then->args[3] = ev->ret;
        if (mirrored) {
                snprintf(ev->nskey, sizeof(ev->nskey), SF_KEY_EVENTS, "namespace", ns, ev->type);
                snprintf(ev->nslast, sizeof(ev->nslast), SF_KEY_EVENTTS, "namespace", ns);
                then->keys[then->nkeys++] = ev->nskey;
                then->keys[then->nkeys++] = ev->nslast;
                then->args[then->nargs++] = ev->mirror;
        }
        return 0;
}

int sf_event_write_publish(sf_event_write_t *ev, const char *stored_ts) {
        double ts = stored_ts ? strtod(stored_ts, NULL) : ev->now;

        return event_publish(ev->ctx, ev->objtype, ev->uuid, ev->ns, ev->type, ev->message, ev->extra, ev->duration,
                             ts);
}

/* Read one list's newest `want` records younger than their type's retention into all
 * (the newest `want` of the merge can only come from each list's newest `want`). */
static int list_read(sf_store_t *s, const char *key, const char *type_filter, double now, int want,
                     json_object *all) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "LRANGE %s 0 %d", key, want - 1);

        if (!r || r->type != REDIS_REPLY_ARRAY)
                return -EIO;
        for (size_t i = 0; i < r->elements; i++) {
                json_object *ev = json_tokener_parse(r->element[i]->str);
                int ti = type_index(sf_json_str(ev, "type"));
                json_object *t = NULL;

                /* Unknown types (never written) and filtered-out ones are skipped. */
                if (!ev || ti < 0 || (type_filter && strcmp(type_filter, SF_EVENT_TYPES[ti]) != 0) ||
                    !json_object_object_get_ex(ev, "timestamp", &t) ||
                    (retention_s[ti] >= 0 && json_object_get_double(t) < now - (double)retention_s[ti])) {
                        json_object_put(ev);
                        continue;
                }
                json_object_array_add(all, ev);
        }
        return 0;
}

static int newest_first(const void *a, const void *b) {
        double ta = json_object_get_double(json_object_object_get(*(json_object *const *)a, "timestamp"));
        double tb = json_object_get_double(json_object_object_get(*(json_object *const *)b, "timestamp"));

        return ta < tb ? 1 : ta > tb ? -1 : 0;
}

int sf_event_list(sf_store_t *s, const char *objtype, const char *uuid, const char *type_filter,
                  int limit, json_object **ret_array) {
        _cleanup_json_ json_object *all = json_object_new_array();
        double now = sf_now();
        char key[256];
        int want = limit > 0 && limit < SF_EVENTS_KEEP ? limit : SF_EVENTS_KEEP;
        json_object *out;
        size_t n;
        int r = 0;

        if (!all)
                return -ENOMEM;
        if (type_filter && !sf_event_type_valid(type_filter))
                return -EINVAL;
        for (int i = 0; i < SF_CONFIG_EVENT_TYPES && r == 0; i++) {
                if (type_filter && strcmp(type_filter, SF_EVENT_TYPES[i]) != 0)
                        continue;
                snprintf(key, sizeof(key), SF_KEY_EVENTS, objtype, uuid, SF_EVENT_TYPES[i]);
                r = list_read(s, key, type_filter, now, want, all);
        }
        /* Records written before the per-type lists. */
        if (r == 0) {
                snprintf(key, sizeof(key), SF_KEY_EVENTS_OLD, objtype, uuid);
                /* all types in one list: a filtered read may need all of it */
                r = list_read(s, key, type_filter, now, type_filter ? SF_EVENTS_KEEP : want, all);
        }
        if (r < 0)
                return r;
        json_object_array_sort(all, newest_first);
        out = json_object_new_array();
        if (!out)
                return -ENOMEM;
        n = json_object_array_length(all);
        for (size_t i = 0; i < n && (limit <= 0 || (int)i < limit); i++)
                json_object_array_add(out, json_object_get(json_object_array_get_idx(all, i)));
        *ret_array = out;
        return 0;
}

/* PUSH_LUA for several records of one object and type: ARGV[1] now, ARGV[2] cap,
 * ARGV[3] retention, then per record its rest and its mirror's ("" without a mirror).
 * Returns the stored timestamps.  What PUSH_LUA does per record is done once per list
 * here (one GET and SET of the last timestamp, one LPUSH of all records, one trim),
 * with the same result: the same timestamps (each past the previous one, as stored
 * with %.6f) and the same list. */
static const char PUSH_MANY_LUA[] =
        "local now, keep, ret = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
        "local function push_all(list, lastkey, recs)\n"
        "  local last = redis.call('GET', lastkey)\n"
        "  last = last and tonumber(last)\n"
        "  local vals, tss = {}, {}\n"
        "  for i, rest in ipairs(recs) do\n"
        "    local ts = now\n"
        "    if last and last >= ts then ts = last + 0.00001 end\n"
        "    last = tonumber(string.format('%.6f', ts))\n"
        "    tss[i] = ts\n"
        "    vals[i] = string.format('{\"timestamp\": %.6f, ', ts) .. rest\n"
        "  end\n"
        "  redis.call('SET', lastkey, string.format('%.6f', tss[#tss]))\n"
        "  redis.call('LPUSH', list, unpack(vals))\n"
        "  redis.call('LTRIM', list, 0, keep - 1)\n"
        "  if ret < 0 then redis.call('PERSIST', list) return tss end\n"
        "  local cutoff = now - ret\n"
        "  for i = 1, 100 * #recs do\n"
        "    local oldest = redis.call('LINDEX', list, -1)\n"
        "    local t = oldest and tonumber(string.match(oldest, '^{\"timestamp\": ([%d%.]+)'))\n"
        "    if not t or t >= cutoff then break end\n"
        "    redis.call('RPOP', list)\n"
        "  end\n"
        "  redis.call('EXPIRE', list, ret + 1)\n"
        "  return tss\n"
        "end\n"
        "local recs, mrecs, out = {}, {}, {}\n"
        "for i = 4, #ARGV, 2 do\n"
        "  recs[#recs + 1] = ARGV[i]\n"
        "  if KEYS[3] and ARGV[i + 1] ~= '' then mrecs[#mrecs + 1] = ARGV[i + 1] end\n"
        "end\n"
        "if #recs > 0 then\n"
        "  for i, ts in ipairs(push_all(KEYS[1], KEYS[2], recs)) do out[i] = string.format('%.6f', ts) end\n"
        "end\n"
        "if #mrecs > 0 then push_all(KEYS[3], KEYS[4], mrecs) end\n"
        "return out\n";

int sf_event_emit_many(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns, const char *type,
                       size_t n, const char *const *messages, json_object *const *extras) {
        int ti = type_index(type);
        bool mirrored = ti == 0 && ns && *ns && strcmp(objtype, "namespace") != 0;
        char ts[32], key[256], lastkey[256], keep[16], ret[24], nskey[256], nslast[256], nkeys[4];
        size_t argc = 0, nargs = 10 + 2 * n;
        const char **argv = NULL;
        char **owned = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        double now = sf_now();
        int rc = 0;

        if (ti < 0)
                return -EINVAL;
        if (n == 0)
                return 0;
        argv = calloc(nargs, sizeof(*argv));
        owned = calloc(2 * n, sizeof(*owned));
        if (!argv || !owned) {
                rc = -ENOMEM;
                goto cleanup;
        }
        snprintf(ts, sizeof(ts), "%.6f", now);
        snprintf(key, sizeof(key), SF_KEY_EVENTS, objtype, uuid, type);
        snprintf(lastkey, sizeof(lastkey), SF_KEY_EVENTTS, objtype, uuid);
        snprintf(keep, sizeof(keep), "%d", SF_EVENTS_KEEP);
        snprintf(ret, sizeof(ret), "%lld", (long long)retention_s[ti]);
        snprintf(nskey, sizeof(nskey), SF_KEY_EVENTS, "namespace", ns ? ns : "", type);
        snprintf(nslast, sizeof(nslast), SF_KEY_EVENTTS, "namespace", ns ? ns : "");
        snprintf(nkeys, sizeof(nkeys), "%d", mirrored ? 4 : 2);
        argv[argc++] = "EVAL";
        argv[argc++] = PUSH_MANY_LUA;
        argv[argc++] = nkeys;
        argv[argc++] = key;
        argv[argc++] = lastkey;
        if (mirrored) {
                argv[argc++] = nskey;
                argv[argc++] = nslast;
        }
        argv[argc++] = ts;
        argv[argc++] = keep;
        argv[argc++] = ret;
        for (size_t i = 0; i < n; i++) {
                owned[2 * i] = record_rest(ctx, type, messages[i], extras ? extras[i] : NULL, -1);
                owned[2 * i + 1] = mirrored ? mirror_rest(ctx, objtype, uuid, messages[i], extras ? extras[i] : NULL, -1)
                                            : strdup("");
                if (!owned[2 * i] || !owned[2 * i + 1]) {
                        rc = -ENOMEM;
                        goto cleanup;
                }
                argv[argc++] = owned[2 * i];
                argv[argc++] = owned[2 * i + 1];
        }
        r = sf_store_cmdargv_once(ctx->store, (int)argc, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
                log_warn("events %s/%s: not stored: %s", objtype, uuid, r && r->str ? r->str : "redis down");
                rc = -EIO;
                goto cleanup;
        }
        for (size_t i = 0; ctx->bus && i < n; i++) {
                Sf__Event ev = SF__EVENT__INIT;
                char subject[512], t_ns[80], t_uuid[80];
                uint8_t *buf;
                size_t len;

                ev.object_type = (char *)objtype;
                ev.object_uuid = (char *)uuid;
                ev.ns = (char *)(ns ? ns : "");
                ev.type = (char *)type;
                ev.timestamp = i < r->elements && r->element[i]->type == REDIS_REPLY_STRING
                                       ? strtod(r->element[i]->str, NULL)
                                       : now;
                ev.fqdn = ctx->cfg.node;
                ev.message = (char *)messages[i];
                ev.extra_json = (char *)(extras && extras[i]
                                                 ? json_object_to_json_string_ext(extras[i], JSON_C_TO_STRING_PLAIN)
                                                 : "{}");
                len = sf__event__get_packed_size(&ev);
                buf = malloc(len ? len : 1);
                if (!buf) {
                        rc = -ENOMEM;
                        goto cleanup;
                }
                sf__event__pack(&ev, buf);
                subject_token(ns, t_ns, sizeof(t_ns));
                subject_token(uuid, t_uuid, sizeof(t_uuid));
                snprintf(subject, sizeof(subject), "sf.event.%s.%s.%s", t_ns, objtype, t_uuid);
                if (sf_bus_publish_async(ctx->bus, subject, buf, len) < 0)
                        log_warn("event %s/%s: not published", objtype, uuid);
                free(buf);
        }
cleanup:
        for (size_t i = 0; owned && i < 2 * n; i++)
                free(owned[i]);
        free(owned);
        free(argv);
        return rc;
}
