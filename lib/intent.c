#include "intent.h"
#include "keys.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void sf_intent_subject(const char *node, const char *worker, char *out, size_t len) {
        char tok[80];

        sf_config_node_token(node, tok, sizeof(tok));
        snprintf(out, len, "sf.intent.%s.%s", tok, worker);
}

/* KEYS[1] the new record, KEYS[2] the pending zset, KEYS[3] the open key of (subject,
 * object, kind, args).  ARGV: payload, subject, created_us, kind, object, new id.
 * If that key names a pending intent, it is reused: it gets a new message generation
 * (so the copy published now supersedes older ones) and, if a worker already started
 * it, a note to run once more (its handler may have read the object before our change).
 * Returns {id, msgid, payload or false, subject or false}.  It reads the open intent's
 * record by a key it builds itself, which standalone Redis allows (sf is not clustered). */
static const char SUBMIT_LUA[] =
        "local cur = redis.call('GET', KEYS[3])\n"
        "if cur then\n"
        "  local rk = '" SF_KEY_INTENT_PREFIX "' .. cur\n"
        "  local f = redis.call('HMGET', rk, 'state', 'attempts', 'payload', 'subject')\n"
        "  if f[1] == 'pending' and f[3] then\n"
        "    if tonumber(f[2] or '0') > 0 then redis.call('HSET', rk, 'rerun', 1) end\n"
        "    local mid = cur .. '.' .. redis.call('HINCRBY', rk, 'gen', 1)\n"
        "    redis.call('HSET', rk, 'msgid', mid)\n"
        "    return {cur, mid, f[3], f[4]}\n"
        "  end\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'subject', ARGV[2],"
        " 'state', 'pending', 'attempts', 0, 'created_us', ARGV[3],"
        " 'seen_us', ARGV[3], 'kind', ARGV[4], 'object', ARGV[5], 'msgid', ARGV[6],"
        " 'gen', 0, 'open', KEYS[3])\n"
        "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])\n"
        "redis.call('SET', KEYS[3], ARGV[6])\n"
        "return {ARGV[6], ARGV[6], false, false}\n";

/* The key that makes (node and worker, object, kind, args) have one open intent. */
static char *open_key(const char *subject, const char *objtype, const char *uuid, const char *kind,
                      const char *const *args) {
        char *k = sf_strdupf(SF_KEY_INTENT_OPEN, subject, objtype, uuid, kind);

        for (size_t i = 0; k && args && args[2 * i] && i < 16; i++) {
                char *n = sf_strdupf("%s:%s=%s", k, args[2 * i], args[2 * i + 1] ? args[2 * i + 1] : "");
                free(k);
                k = n;
        }
        return k;
}

int sf_intent_submit(sf_ctx_t *ctx, const char *node, const char *worker, const char *kind,
                     const char *objtype, const char *uuid, const char *ns,
                     const char *const *args, char ret_id[SF_UUID_LEN]) {
        Sf__Intent in = SF__INTENT__INIT;
        Sf__Intent__ArgsEntry entries[16], *eptrs[16];
        char id[SF_UUID_LEN], subject[256], created[24], key[64];
        size_t nargs = 0, len;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ char *object = NULL, *okey = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        const void *pub;
        size_t publen;
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
        snprintf(key, sizeof(key), SF_KEY_INTENT, id);
        object = sf_strdupf("%s/%s", objtype, uuid);
        okey = open_key(subject, objtype, uuid, kind, args);
        if (!object || !okey)
                return -ENOMEM;

        /* 1. Record (the truth), or find the open one for the same object and kind. */
        {
                const char *argv[] = {"EVAL", SUBMIT_LUA, "3", key, SF_KEY_INTENTS_PENDING, okey,
                                      (const char *)buf, subject, created, kind, object, id};
                size_t lens[SF_ARRAY_SIZE(argv)];

                for (size_t i = 0; i < SF_ARRAY_SIZE(argv); i++)
                        lens[i] = i == 6 ? len : strlen(argv[i]);
                r = sf_store_cmdargv(ctx->store, (int)SF_ARRAY_SIZE(argv), argv, lens);
        }
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
                log_err("intent %s: not recorded: %s", kind,
                        r && r->type == REDIS_REPLY_ERROR ? r->str : "redis down");
                return r ? sf_store_reply_errno(r) ?: -EIO : -EIO;
        }
        pub = buf;
        publen = len;
        if (r->element[2]->type == REDIS_REPLY_STRING) {
                /* Reused: publish the stored intent on its own subject. */
                pub = r->element[2]->str;
                publen = r->element[2]->len;
                snprintf(subject, sizeof(subject), "%s",
                         r->element[3]->type == REDIS_REPLY_STRING ? r->element[3]->str : subject);
                log_debug("intent %s %s/%s: %s is still open; re-published", kind, objtype, uuid,
                          r->element[0]->str);
        }
        /* 2. Trigger.  If the bus is down the record stays pending and is re-driven. */
        pr = ctx->bus ? sf_bus_publish(ctx->bus, subject, r->element[1]->str, pub, publen) : -ENOTCONN;
        if (pr < 0)
                log_warn("intent %s %s: publish failed (%s); the reconciler will re-drive it",
                         kind, r->element[0]->str, strerror(-pr));
        if (ret_id)
                snprintf(ret_id, SF_UUID_LEN, "%s", r->element[0]->str);
        return 0;
}

int sf_intent_load(sf_store_t *s, const char *id, Sf__Intent **ret, char ret_state[16],
                   int *ret_attempts) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HMGET " SF_KEY_INTENT " payload state attempts", id);
        Sf__Intent *in;

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
                return r && r->type == REDIS_REPLY_ERROR ? sf_store_reply_errno(r) : -EIO;
        if (r->element[0]->type == REDIS_REPLY_NIL)
                return -ENOENT;
        if (r->element[0]->type != REDIS_REPLY_STRING)
                return -EIO;
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

/* KEYS[1] the record.  ARGV[1] the message's id ("" for none), ARGV[2] now (us).
 * Returns false without a record, else {payload, state, attempts, run}: what
 * sf_intent_load, sf_intent_current, sf_intent_attempt and sf_intent_touch did in four
 * round trips.  A record without msgid (older than message generations) runs any copy. */
static const char BEGIN_LUA[] =
        "local f = redis.call('HMGET', KEYS[1], 'payload', 'state', 'attempts', 'msgid')\n"
        "if not f[1] then return false end\n"
        "if f[2] ~= 'pending' then return {f[1], f[2] or '', f[3] or '0', -1} end\n"
        "if ARGV[1] ~= '' and f[4] and f[4] ~= ARGV[1] then return {f[1], f[2], f[3] or '0', 0} end\n"
        "local a = redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
        "redis.call('HSET', KEYS[1], 'seen_us', ARGV[2])\n"
        "return {f[1], f[2], tostring(a), 1}\n";

int sf_intent_begin(sf_store_t *s, const char *id, const char *msgid, Sf__Intent **ret, char ret_state[16],
                    int *ret_attempts, int *ret_run) {
        char key[64], now[24];
        const char *argv[] = {"EVAL", BEGIN_LUA, "1", key, msgid ? msgid : "", now};
        _cleanup_reply_ redisReply *r = NULL;
        Sf__Intent *in;

        snprintf(key, sizeof(key), SF_KEY_INTENT, id);
        snprintf(now, sizeof(now), "%lld", (long long)sf_now_us());
        /* Once: a re-sent script after a lost reply would count one attempt twice. */
        r = sf_store_cmdargv_once(s, (int)SF_ARRAY_SIZE(argv), argv, NULL);
        if (!r || r->type == REDIS_REPLY_ERROR)
                return r ? sf_store_reply_errno(r) ?: -EIO : -EIO;
        if (r->type == REDIS_REPLY_NIL)
                return -ENOENT;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING ||
            r->element[3]->type != REDIS_REPLY_INTEGER)
                return -EIO;
        in = sf__intent__unpack(NULL, r->element[0]->len, (const uint8_t *)r->element[0]->str);
        if (!in)
                return -EBADMSG;
        snprintf(ret_state, 16, "%s", r->element[1]->str);
        *ret_attempts = atoi(r->element[2]->str);
        *ret_run = (int)r->element[3]->integer;
        *ret = in;
        return 0;
}

int sf_intent_attempt(sf_store_t *s, const char *id, int delta, int *ret_attempts) {
        /* Once: a re-sent HINCRBY after a lost reply would count one attempt twice. */
        _cleanup_reply_ redisReply *r = sf_store_cmd_once(s, "HINCRBY " SF_KEY_INTENT " attempts %d", id, delta);

        if (!r || r->type != REDIS_REPLY_INTEGER)
                return -EIO;
        if (ret_attempts)
                *ret_attempts = (int)r->integer;
        return 0;
}

int sf_intent_touch(sf_store_t *s, const char *id) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HSET " SF_KEY_INTENT " seen_us %lld", id,
                                                     (long long)sf_now_us());
        return r && r->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
}

/* KEYS: record, pending zset.  ARGV: state, error, now, id.  Returns 2 (and keeps the
 * intent pending, the run not counted) when a submit asked for one more run meanwhile. */
static const char FINISH_LUA[] =
        "if ARGV[1] == 'done' and redis.call('HGET', KEYS[1], 'rerun') == '1' then\n"
        "  redis.call('HSET', KEYS[1], 'rerun', 0)\n"
        "  redis.call('HINCRBY', KEYS[1], 'attempts', -1)\n"
        "  return 2\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'state', ARGV[1], 'error', ARGV[2], 'finished_us', ARGV[3], 'rerun', 0)\n"
        "redis.call('ZREM', KEYS[2], ARGV[4])\n"
        "local open = redis.call('HGET', KEYS[1], 'open')\n"
        "if open and redis.call('GET', open) == ARGV[4] then redis.call('DEL', open) end\n"
        "redis.call('EXPIRE', KEYS[1], 86400)\n"
        "return 1";

int sf_intent_finish(sf_store_t *s, const char *id, const char *state, const char *error) {
        char now[24], key[64];
        const char *argv[] = {"EVAL", FINISH_LUA, "2", key, SF_KEY_INTENTS_PENDING, state, error ? error : "", now, id};
        _cleanup_reply_ redisReply *r = NULL;

        snprintf(now, sizeof(now), "%lld", (long long)sf_now_us());
        snprintf(key, sizeof(key), SF_KEY_INTENT, id);
        /* Once: a re-sent finish could take the next run's "rerun" for this one's. */
        r = sf_store_cmdargv_once(s, (int)SF_ARRAY_SIZE(argv), argv, NULL);
        if (!r || r->type != REDIS_REPLY_INTEGER)
                return -EIO;
        return r->integer == 2 ? 1 : 0;
}

int sf_intent_current(sf_store_t *s, const char *id, const char *msgid) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HGET " SF_KEY_INTENT " msgid", id);

        if (!r || r->type == REDIS_REPLY_ERROR)
                return r ? sf_store_reply_errno(r) : -EIO;
        /* Records and messages from before message generations: every copy counts. */
        if (r->type != REDIS_REPLY_STRING || !msgid)
                return 1;
        return strcmp(r->str, msgid) == 0;
}

/* Re-publish pending intents last touched before now - older_than_s.  Each copy gets a
 * new message id, recorded before it is published, so the copies already in the stream
 * are superseded (workers drop them): however often this runs, one copy is live. */
static int redrive(sf_ctx_t *ctx, const char *node, const char *worker, int older_than_s, int *ret_n) {
        static const char NEXT_GEN_LUA[] =
                "if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return false end\n"
                "local mid = ARGV[1] .. '.' .. redis.call('HINCRBY', KEYS[1], 'gen', 1)\n"
                "redis.call('HSET', KEYS[1], 'msgid', mid)\n"
                "return mid";
        _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx->store, "ZRANGE " SF_KEY_INTENTS_PENDING " 0 -1");
        int64_t cutoff = sf_now_us() - (int64_t)older_than_s * 1000000;
        char prefix[256] = "";
        int n = 0;

        if (!ids || ids->type != REDIS_REPLY_ARRAY)
                return ids ? sf_store_reply_errno(ids) ?: -EIO : -EIO;
        if (node) {
                sf_intent_subject(node, worker ? worker : "", prefix, sizeof(prefix));
        }
        for (size_t i = 0; i < ids->elements; i++) {
                const char *id = ids->element[i]->str;
                _cleanup_reply_ redisReply *r =
                        sf_store_cmd(ctx->store, "HMGET " SF_KEY_INTENT " payload subject seen_us state", id);
                _cleanup_reply_ redisReply *g = NULL;
                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
                        continue;
                if (r->element[0]->type == REDIS_REPLY_NIL && r->element[3]->type == REDIS_REPLY_NIL) {
                        /* The record vanished (certainly): nothing to drive. */
                        freeReplyObject(sf_store_cmd(ctx->store, "ZREM " SF_KEY_INTENTS_PENDING " %s", id));
                        continue;
                }
                if (r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
                    r->element[2]->type != REDIS_REPLY_STRING)
                        continue;
                if (node && strncmp(r->element[1]->str, prefix, strlen(prefix)) != 0)
                        continue;
                if (strtoll(r->element[2]->str, NULL, 10) > cutoff)
                        continue;
                g = sf_store_cmd_once(ctx->store, "EVAL %s 1 " SF_KEY_INTENT " %s", NEXT_GEN_LUA, id, id);
                if (!g || g->type != REDIS_REPLY_STRING)
                        continue;
                if (!ctx->bus || sf_bus_publish(ctx->bus, r->element[1]->str, g->str, r->element[0]->str,
                                                r->element[0]->len) < 0)
                        continue;
                sf_intent_touch(ctx->store, id);
                log_info("reconciler: re-drove intent %s on %s as %s", id, r->element[1]->str, g->str);
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
        return redrive(ctx, node, worker, older_than_s, ret_n);
}

int sf_intent_recover(sf_ctx_t *ctx, const char *node, const char *worker, int *ret_n) {
        return redrive(ctx, node, worker, 0, ret_n);
}
