#include "intent.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void sf_intent_subject(const char *node, const char *worker, char *out, size_t len) {
        char tok[80];

        sf_config_node_token(node, tok, sizeof(tok));
        snprintf(out, len, "sf.intent.%s.%s", tok, worker);
}

int sf_intent_submit(sf_ctx_t *ctx, const char *node, const char *worker, const char *kind,
                     const char *objtype, const char *uuid, const char *ns,
                     const char *const *args, char ret_id[SF_UUID_LEN]) {
        Sf__Intent in = SF__INTENT__INIT;
        Sf__Intent__ArgsEntry entries[16], *eptrs[16];
        char id[SF_UUID_LEN], subject[256], created[24];
        size_t nargs = 0, len;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        int pr;

        sf_uuid_new(id);
        for (; args && args[2 * nargs] && nargs < 16; nargs++) {
                sf__intent__args_entry__init(&entries[nargs]);
                entries[nargs].key = (char *)args[2 * nargs];
                entries[nargs].value = (char *)(args[2 * nargs + 1] ? args[2 * nargs + 1] : "");
                eptrs[nargs] = &entries[nargs];
        }
        in.id = id;
        in.kind = (char *)kind;
        in.object_type = (char *)objtype;
        in.object_uuid = (char *)uuid;
        in.node = (char *)node;
        in.worker = (char *)worker;
        in.ns = (char *)(ns ? ns : "");
        in.created_us = sf_now_us();
        in.n_args = nargs;
        in.args = eptrs;
        len = sf__intent__get_packed_size(&in);
        buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        sf__intent__pack(&in, buf);
        sf_intent_subject(node, worker, subject, sizeof(subject));
        snprintf(created, sizeof(created), "%lld", (long long)in.created_us);

        /* 1. Record (the truth). */
        {
                _cleanup_free_ char *object = sf_strdupf("%s/%s", objtype, uuid);
                char key[64];
                const char *argv[] = {
                        "EVAL",
                        "redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'subject', ARGV[2],"
                        " 'state', 'pending', 'attempts', 0, 'created_us', ARGV[3],"
                        " 'seen_us', ARGV[3], 'kind', ARGV[4], 'object', ARGV[5])\n"
                        "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])\n"
                        "return 1",
                        "2", key, "sf:intents:pending", (const char *)buf, subject, created, kind,
                        object, id};
                size_t lens[SF_ARRAY_SIZE(argv)];

                snprintf(key, sizeof(key), "sf:intent:%s", id);
                for (size_t i = 0; i < SF_ARRAY_SIZE(argv); i++)
                        lens[i] = i == 5 ? len : strlen(argv[i]);
                if (!object)
                        return -ENOMEM;
                r = sf_store_cmdargv(ctx->store, (int)SF_ARRAY_SIZE(argv), argv, lens);
        }
        if (!r || r->type == REDIS_REPLY_ERROR) {
                log_err("intent %s: not recorded: %s", kind, r ? r->str : "redis down");
                return -EIO;
        }
        /* 2. Trigger.  If the bus is down the record stays pending and is re-driven. */
        pr = ctx->bus ? sf_bus_publish(ctx->bus, subject, id, buf, len) : -ENOTCONN;
        if (pr < 0)
                log_warn("intent %s %s: publish failed (%s); the reconciler will re-drive it",
                         kind, id, strerror(-pr));
        if (ret_id)
                memcpy(ret_id, id, SF_UUID_LEN);
        return 0;
}

int sf_intent_load(sf_store_t *s, const char *id, Sf__Intent **ret, char ret_state[16],
                   int *ret_attempts) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HMGET sf:intent:%s payload state attempts", id);
        Sf__Intent *in;

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
                return -EIO;
        if (r->element[0]->type != REDIS_REPLY_STRING)
                return -ENOENT;
        in = sf__intent__unpack(NULL, r->element[0]->len, (const uint8_t *)r->element[0]->str);
        if (!in)
                return -EBADMSG;
        if (ret_state)
                snprintf(ret_state, 16, "%s",
                         r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
        if (ret_attempts)
                *ret_attempts = r->element[2]->type == REDIS_REPLY_STRING ? atoi(r->element[2]->str) : 0;
        if (ret)
                *ret = in;
        else
                sf__intent__free_unpacked(in, NULL);
        return 0;
}

int sf_intent_attempt(sf_store_t *s, const char *id, int delta, int *ret_attempts) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HINCRBY sf:intent:%s attempts %d", id, delta);

        if (!r || r->type != REDIS_REPLY_INTEGER)
                return -EIO;
        if (ret_attempts)
                *ret_attempts = (int)r->integer;
        return 0;
}

int sf_intent_touch(sf_store_t *s, const char *id) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HSET sf:intent:%s seen_us %lld", id,
                                                     (long long)sf_now_us());
        return r && r->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
}

int sf_intent_finish(sf_store_t *s, const char *id, const char *state, const char *error) {
        char now[24], key[64];
        const char *argv[] = {
                "EVAL",
                "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'error', ARGV[2], 'finished_us', ARGV[3])\n"
                "redis.call('ZREM', KEYS[2], ARGV[4])\n"
                "redis.call('EXPIRE', KEYS[1], 86400)\n"
                "return 1",
                "2", key, "sf:intents:pending", state, error ? error : "", now, id};
        _cleanup_reply_ redisReply *r = NULL;

        snprintf(now, sizeof(now), "%lld", (long long)sf_now_us());
        snprintf(key, sizeof(key), "sf:intent:%s", id);
        r = sf_store_cmdargv(s, (int)SF_ARRAY_SIZE(argv), argv, NULL);
        return r && r->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
}

static int redrive(sf_ctx_t *ctx, const char *node, const char *worker, int older_than_s, bool fresh,
                   int *ret_n) {
        _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx->store, "ZRANGE sf:intents:pending 0 -1");
        int64_t cutoff = sf_now_us() - (int64_t)older_than_s * 1000000;
        char prefix[256] = "", msgid[80];
        int n = 0;

        if (!ids || ids->type != REDIS_REPLY_ARRAY)
                return -EIO;
        if (node) {
                sf_intent_subject(node, worker ? worker : "", prefix, sizeof(prefix));
        }
        for (size_t i = 0; i < ids->elements; i++) {
                const char *id = ids->element[i]->str;
                _cleanup_reply_ redisReply *r =
                        sf_store_cmd(ctx->store, "HMGET sf:intent:%s payload subject seen_us state", id);
                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
                        continue;
                if (r->element[0]->type != REDIS_REPLY_STRING) {
                        /* The record vanished: nothing to drive. */
                        freeReplyObject(sf_store_cmd(ctx->store, "ZREM sf:intents:pending %s", id));
                        continue;
                }
                if (r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING)
                        continue;
                if (node && strncmp(r->element[1]->str, prefix, strlen(prefix)) != 0)
                        continue;
                if (strtoll(r->element[2]->str, NULL, 10) > cutoff)
                        continue;
                /* A fresh message id gets past the dedupe window: the handler keys on the
                 * intent id inside the payload, so a second copy has no second effect. */
                if (fresh)
                        snprintf(msgid, sizeof(msgid), "%s.%lld", id, (long long)sf_now_us());
                else
                        snprintf(msgid, sizeof(msgid), "%s", id);
                if (!ctx->bus || sf_bus_publish(ctx->bus, r->element[1]->str, msgid, r->element[0]->str,
                                                r->element[0]->len) < 0)
                        continue;
                sf_intent_touch(ctx->store, id);
                log_info("reconciler: re-drove intent %s on %s", id, r->element[1]->str);
                n++;
        }
        if (ret_n)
                *ret_n = n;
        return 0;
}

const char *sf_intent_arg(const Sf__Intent *in, const char *key) {
        for (size_t i = 0; i < in->n_args; i++)
                if (strcmp(in->args[i]->key, key) == 0)
                        return in->args[i]->value;
        return NULL;
}

int sf_intent_redrive(sf_ctx_t *ctx, const char *node, const char *worker, int older_than_s,
                      int *ret_n) {
        return redrive(ctx, node, worker, older_than_s, false, ret_n);
}

int sf_intent_recover(sf_ctx_t *ctx, const char *node, const char *worker, int *ret_n) {
        return redrive(ctx, node, worker, 0, true, ret_n);
}
