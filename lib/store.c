#include "store.h"
#include "keys.h"

#include "event.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The documents this connection last read or wrote, by object: only ever sf_store_update's
 * first guess (never an answer to a read).  Every write is a compare-and-set on the
 * revision, so a stale guess costs one refused write and a fresh read, never a lost
 * change; and a guess on which the caller's function decides not to write is read again
 * before that decision counts. */
#define SEEN_SLOTS 16
typedef struct seen_doc {
        char key[160]; /* "<type>/<uuid>"; "" = free */
        uint64_t rev;
        char *text;
        uint64_t used; /* for eviction: the least recently used slot goes */
} seen_doc_t;

struct sf_store {
        redisContext *c;
        char host[128];
        int port;
        int timeout_ms; /* per reply */
        seen_doc_t seen[SEEN_SLOTS];
        uint64_t seen_clock;
};

/* Bump a type's generation (SF_KEY_GEN): a counter that a missing key (a new or wiped
 * Redis) restarts from the current time in microseconds, so a value once seen is never
 * seen again for other contents. */
#define GEN_BUMP_LUA \
        "local function bump(k)\n" \
        "  if redis.call('EXISTS', k) == 0 then\n" \
        "    local t = redis.call('TIME')\n" \
        "    redis.call('SET', k, t[1] .. string.format('%06d', tonumber(t[2])))\n" \
        "  end\n" \
        "  redis.call('INCR', k)\n" \
        "end\n"

/* KEYS[1] object hash, KEYS[2] fence key (or "-"), KEYS[3] the type's generation,
 * KEYS[4..] index sets.
 * ARGV[1] expected rev, ARGV[2] doc, ARGV[3] fence token ("0" = none), ARGV[4] uuid,
 * ARGV[5] the expected current document ("" = any at that rev: a write from a guess
 * checks the text too, as a record deleted and made again restarts its revisions). */
static const char PUT_LUA[] =
        GEN_BUMP_LUA
        "local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')\n"
        "if cur ~= tonumber(ARGV[1]) then return {-1, cur} end\n"
        "if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'doc') ~= ARGV[5] then return {-1, cur} end\n"
        "if ARGV[3] ~= '0' then\n"
        "  local hi = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
        "  if tonumber(ARGV[3]) < hi then return {-2, hi} end\n"
        "  redis.call('SET', KEYS[2], ARGV[3])\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'rev', cur + 1, 'doc', ARGV[2])\n"
        "for i = 4, #KEYS do redis.call('SADD', KEYS[i], ARGV[4]) end\n"
        "bump(KEYS[3])\n"
        "return {0, cur + 1}\n";

/* PUT_LUA with something more stored only if the write happens (sf_store_update_then):
 * the script is GEN_BUMP_LUA, the caller's `then_` function, then this.  KEYS[1..4] as
 * PUT_LUA's, KEYS[5..4+nt] then_'s keys, the index sets after them.  ARGV[1..5] as
 * PUT_LUA's, ARGV[6] nt, ARGV[7] na, ARGV[8..7+na] then_'s args. */
static const char PUT_THEN_BODY_LUA[] =
        "local nt, na = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
        "local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')\n"
        "if cur ~= tonumber(ARGV[1]) then return {-1, cur} end\n"
        "if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'doc') ~= ARGV[5] then return {-1, cur} end\n"
        "if ARGV[3] ~= '0' then\n"
        "  local hi = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
        "  if tonumber(ARGV[3]) < hi then return {-2, hi} end\n"
        "  redis.call('SET', KEYS[2], ARGV[3])\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'rev', cur + 1, 'doc', ARGV[2])\n"
        "redis.call('SADD', KEYS[4], ARGV[4])\n"
        "for i = 5 + nt, #KEYS do redis.call('SADD', KEYS[i], ARGV[4]) end\n"
        "bump(KEYS[3])\n"
        "local tk, ta = {}, {}\n"
        "for i = 1, nt do tk[i] = KEYS[4 + i] end\n"
        "for i = 1, na do ta[i] = ARGV[7 + i] end\n"
        "return {0, cur + 1, then_(tk, ta)}\n";

/* The hard delete of the record, in one step (so a crash never leaves an object out of
 * its indexes but still there, behind an unchanged generation).  KEYS[1] object, KEYS[2]
 * its older single event list, KEYS[3] generation, KEYS[4..] index sets; ARGV[1] uuid.
 * The per-type event lists go after it (events_purge), as they do when the record is gone. */
static const char PURGE_LUA[] =
        GEN_BUMP_LUA
        "for i = 4, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end\n"
        "redis.call('DEL', KEYS[1], KEYS[2])\n"
        "bump(KEYS[3])\n"
        "return 0\n";

/* Sent with AUTH on every (re)connect of every store of this process (sf_store_set_password). */
static char store_password[256];

void sf_store_set_password(const char *password) {
        snprintf(store_password, sizeof(store_password), "%s", password ? password : "");
}

/* AUTH on a fresh connection; -EACCES when the server refuses the password. */
static int store_auth(sf_store_t *s) {
        redisReply *r;
        int ret = 0;

        if (!store_password[0])
                return 0;
        r = redisCommand(s->c, "AUTH %s", store_password);
        if (!r) {
                log_err("redis %s:%d: no answer to AUTH: %s", s->host, s->port, s->c->errstr);
                ret = -ETIMEDOUT;
        } else if (r->type == REDIS_REPLY_ERROR) {
                log_err("redis %s:%d: AUTH refused: %s", s->host, s->port, r->str);
                ret = -EACCES;
        }
        if (r)
                freeReplyObject(r);
        return ret;
}

static int store_reconnect(sf_store_t *s) {
        struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
        int r;

        if (s->c)
                redisFree(s->c);
        s->c = redisConnectWithTimeout(s->host, s->port, tv);
        if (!s->c || s->c->err) {
                log_err("redis %s:%d: %s", s->host, s->port, s->c ? s->c->errstr : "oom");
                if (s->c)
                        redisFree(s->c);
                s->c = NULL;
                return -ECONNREFUSED;
        }
        /* AUTH is part of connecting: it gets the connect timeout, not a short command
         * timeout that a busy server would turn into "cannot connect". */
        redisSetTimeout(s->c, tv);
        r = store_auth(s);
        if (r < 0) {
                redisFree(s->c);
                s->c = NULL;
                return r;
        }
        /* A reply that never comes must not hang a worker for ever. */
        tv.tv_sec = s->timeout_ms / 1000;
        tv.tv_usec = (s->timeout_ms % 1000) * 1000;
        redisSetTimeout(s->c, tv);
        redisEnableKeepAlive(s->c);
        return 0;
}

int sf_store_connect(const char *host, int port, sf_store_t **ret) {
        sf_store_t *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        snprintf(s->host, sizeof(s->host), "%s", host);
        s->port = port;
        s->timeout_ms = 10000;
        r = store_reconnect(s);
        /* A server that accepts the connection but does not answer (stopped, busy loading)
         * is there: start disconnected, and every command tries again (and fails, meaning
         * "don't know") until it answers.  A worker restarted during a Redis stall keeps
         * running instead of exiting.  Refused connections and refused AUTH are errors. */
        if (r < 0 && r != -ETIMEDOUT) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void sf_store_free(sf_store_t *s) {
        if (!s)
                return;
        if (s->c)
                redisFree(s->c);
        for (size_t i = 0; i < SEEN_SLOTS; i++)
                free(s->seen[i].text);
        free(s);
}

static seen_doc_t *seen_find(sf_store_t *s, const char *type, const char *uuid) {
        char key[160];

        snprintf(key, sizeof(key), "%s/%s", type, uuid);
        for (size_t i = 0; i < SEEN_SLOTS; i++)
                if (s->seen[i].key[0] && strcmp(s->seen[i].key, key) == 0)
                        return &s->seen[i];
        return NULL;
}

/* Remember (rev, text) of type/uuid; text NULL forgets it. */
static void seen_note(sf_store_t *s, const char *type, const char *uuid, uint64_t rev, const char *text) {
        seen_doc_t *d = seen_find(s, type, uuid);
        char *copy = NULL;

        if (!d && !text)
                return;
        if (text && !(copy = strdup(text))) {
                if (d) {
                        free(d->text);
                        *d = (seen_doc_t){0};
                }
                return;
        }
        if (!d) {
                d = &s->seen[0];
                for (size_t i = 1; i < SEEN_SLOTS && d->key[0]; i++)
                        if (!s->seen[i].key[0] || s->seen[i].used < d->used)
                                d = &s->seen[i];
                free(d->text);
                *d = (seen_doc_t){0};
                snprintf(d->key, sizeof(d->key), "%s/%s", type, uuid);
        }
        if (!copy) {
                free(d->text);
                *d = (seen_doc_t){0};
                return;
        }
        free(d->text);
        d->text = copy;
        d->rev = rev;
        d->used = ++s->seen_clock;
}

const char *sf_store_host(const sf_store_t *s) { return s->host; }
int sf_store_port(const sf_store_t *s) { return s->port; }

/* The reply, or NULL once `tries` connections failed to answer.  A command whose reply
 * was lost may have been applied: only callers that say so get a second try. */
static redisReply *store_send_argv(sf_store_t *s, int tries, int argc, const char **argv, const size_t *lens) {
        for (int attempt = 0; attempt < tries; attempt++) {
                redisReply *r;

                if (!s->c && store_reconnect(s) < 0)
                        continue;
                r = redisCommandArgv(s->c, argc, argv, lens);
                if (r)
                        return r;
                log_warn("redis: %s; reconnecting", s->c->errstr);
                redisFree(s->c);
                s->c = NULL;
        }
        return NULL;
}

static redisReply *store_send_fmt(sf_store_t *s, int tries, const char *fmt, va_list ap) {
        for (int attempt = 0; attempt < tries; attempt++) {
                redisReply *r;
                va_list aq;

                if (!s->c && store_reconnect(s) < 0)
                        continue;
                va_copy(aq, ap);
                r = redisvCommand(s->c, fmt, aq);
                va_end(aq);
                if (r)
                        return r;
                log_warn("redis: %s; reconnecting", s->c->errstr);
                redisFree(s->c);
                s->c = NULL;
        }
        return NULL;
}

redisReply *sf_store_cmdargv(sf_store_t *s, int argc, const char **argv, const size_t *lens) {
        return store_send_argv(s, 2, argc, argv, lens);
}

redisReply *sf_store_cmdargv_once(sf_store_t *s, int argc, const char **argv, const size_t *lens) {
        return store_send_argv(s, 1, argc, argv, lens);
}

redisReply *sf_store_cmd(sf_store_t *s, const char *fmt, ...) {
        redisReply *r;
        va_list ap;

        va_start(ap, fmt);
        r = store_send_fmt(s, 2, fmt, ap);
        va_end(ap);
        return r;
}

redisReply *sf_store_cmd_once(sf_store_t *s, const char *fmt, ...) {
        redisReply *r;
        va_list ap;

        va_start(ap, fmt);
        r = store_send_fmt(s, 1, fmt, ap);
        va_end(ap);
        return r;
}

int sf_store_reply_errno(const redisReply *r) {
        static const char *const transient[] = {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"};

        if (!r)
                return -EIO; /* no answer: lost connection or timeout */
        if (r->type != REDIS_REPLY_ERROR)
                return 0;
        for (size_t i = 0; i < SF_ARRAY_SIZE(transient); i++)
                if (strncmp(r->str, transient[i], strlen(transient[i])) == 0)
                        return -EAGAIN;
        return -EIO;
}

void sf_store_set_timeout(sf_store_t *s, int ms) {
        s->timeout_ms = ms;
        if (s->c) {
                struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
                redisSetTimeout(s->c, tv);
        }
}

int sf_store_reply_obj(const redisReply *r, const char *type, const char *uuid, uint64_t *ret_rev,
                       const char **ret_doc, size_t *ret_len) {
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements > 2)
                return r && r->type == REDIS_REPLY_ERROR ? sf_store_reply_errno(r) : -EIO;
        /* Absent only on a definite nil for every field; anything else is "don't know". */
        if (r->element[0]->type == REDIS_REPLY_NIL &&
            (r->elements == 1 || r->element[1]->type == REDIS_REPLY_NIL))
                return -ENOENT;
        if (r->element[0]->type != REDIS_REPLY_STRING ||
            (r->elements == 2 && r->element[1]->type != REDIS_REPLY_STRING)) {
                log_err("store: %s/%s is half written", type, uuid);
                return -EBADMSG;
        }
        if (ret_rev)
                *ret_rev = strtoull(r->element[0]->str, NULL, 10);
        if (ret_doc)
                *ret_doc = r->elements == 2 ? r->element[1]->str : NULL;
        if (ret_len)
                *ret_len = r->elements == 2 ? r->element[1]->len : 0;
        return 0;
}

int sf_store_doc_parse(const char *text, const char *type, const char *uuid, json_object **ret_doc) {
        json_object *doc = json_tokener_parse(text);

        if (!doc || !json_object_is_type(doc, json_type_object)) {
                json_object_put(doc);
                log_err("store: %s/%s holds a corrupt document", type, uuid);
                return -EBADMSG;
        }
        *ret_doc = doc;
        return 0;
}

int sf_store_get(sf_store_t *s, const char *type, const char *uuid, json_object **ret_doc,
                 uint64_t *ret_rev) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "HMGET " SF_KEY_OBJ " rev doc", type, uuid);
        json_object *doc;
        const char *text;
        uint64_t rev;
        int ret;

        ret = sf_store_reply_obj(r, type, uuid, &rev, &text, NULL);
        if (ret == -ENOENT)
                seen_note(s, type, uuid, 0, NULL);
        if (ret < 0)
                return ret;
        ret = sf_store_doc_parse(text, type, uuid, &doc);
        if (ret < 0)
                return ret;
        seen_note(s, type, uuid, rev, text);
        if (ret_rev)
                *ret_rev = rev;
        if (ret_doc)
                *ret_doc = doc;
        else
                json_object_put(doc);
        return 0;
}

void sf_store_replies_free(redisReply **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                if (v[i])
                        freeReplyObject(v[i]);
        free(v);
}

/* Growable byte buffer for RESP requests. */
typedef struct resp_buf {
        char *p;
        size_t len, cap;
} resp_buf_t;

static int resp_put(resp_buf_t *b, const char *s, size_t n) {
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *np;

                while (b->len + n > cap)
                        cap *= 2;
                np = realloc(b->p, cap);
                if (!np)
                        return -ENOMEM;
                b->p = np;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        return 0;
}

static int resp_len(resp_buf_t *b, char kind, size_t v) {
        char num[24], *p = num + sizeof(num);

        *--p = '\n';
        *--p = '\r';
        do {
                *--p = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        *--p = kind;
        return resp_put(b, p, (size_t)(num + sizeof(num) - p));
}

/* One command in RESP (what redisFormatCommandArgv makes, without an allocation each). */
static int resp_command(resp_buf_t *b, int argc, const char *const *argv, const size_t *lens) {
        int r = resp_len(b, '*', (size_t)argc);

        for (int i = 0; r == 0 && i < argc; i++) {
                r = resp_len(b, '$', lens[i]);
                if (r == 0)
                        r = resp_put(b, argv[i], lens[i]);
                if (r == 0)
                        r = resp_put(b, "\r\n", 2);
        }
        return r;
}

/* Send the n commands in buf in one write and read the n replies: one round trip. */
static int store_pipeline_once(sf_store_t *s, const resp_buf_t *buf, size_t n, redisReply **out) {
        if (!s->c && store_reconnect(s) < 0)
                return -EIO;
        if (redisAppendFormattedCommand(s->c, buf->p, buf->len) != REDIS_OK)
                goto lost;
        for (size_t i = 0; i < n; i++) {
                void *rep = NULL;

                if (redisGetReply(s->c, &rep) != REDIS_OK || !rep)
                        goto lost;
                out[i] = rep;
        }
        return 0;
lost:
        log_warn("redis: %s; reconnecting", s->c->errstr);
        redisFree(s->c);
        s->c = NULL;
        for (size_t i = 0; i < n; i++) {
                if (out[i])
                        freeReplyObject(out[i]);
                out[i] = NULL;
        }
        return -EIO;
}

int sf_store_read_many(sf_store_t *s, size_t n, const char *const *types, const char *const *uuids,
                       bool with_doc, redisReply ***ret) {
        resp_buf_t buf = {0};
        redisReply **out = NULL;
        char prefix[192];
        const char *prefix_type = NULL;
        size_t prefix_len = 0;
        int r = -ENOMEM;

        if (!n) {
                *ret = NULL;
                return 0;
        }
        out = calloc(n, sizeof(*out));
        if (!out)
                goto cleanup;
        for (size_t i = 0; i < n; i++) {
                char key[256];
                const char *argv[4] = {"HMGET", key, "rev", "doc"};
                size_t lens[4] = {5, 0, 3, 3}, tl = strlen(types[i]), ul = strlen(uuids[i]);

                /* Lists read hundreds of keys: the "sf:obj:<type>:" prefix is formatted once
                 * per type, the uuid appended. */
                if (!prefix_type || strcmp(prefix_type, types[i]) != 0) {
                        prefix_len = (size_t)snprintf(prefix, sizeof(prefix), SF_KEY_OBJ, types[i], "");
                        prefix_type = types[i];
                }
                if (prefix_len >= sizeof(prefix) || tl >= sizeof(key) || prefix_len + ul >= sizeof(key)) {
                        r = -ENAMETOOLONG;
                        goto cleanup;
                }
                memcpy(key, prefix, prefix_len);
                memcpy(key + prefix_len, uuids[i], ul);
                lens[1] = prefix_len + ul;
                r = resp_command(&buf, with_doc ? 4 : 3, argv, lens);
                if (r < 0)
                        goto cleanup;
        }
        /* Reads only: a lost reply is asked again once, on a fresh connection. */
        r = store_pipeline_once(s, &buf, n, out);
        if (r < 0)
                r = store_pipeline_once(s, &buf, n, out);
        if (r < 0)
                goto cleanup;
        *ret = out;
        out = NULL;
cleanup:
        free(buf.p);
        sf_store_replies_free(out, n);
        return r;
}

/* sf_store_put, with then (optional: sf_store_update_then) in the same script; its
 * result (a string) into *ret_then.  expect_text (optional): the write also needs the
 * stored document to be exactly that (a guess: see sf_store_update_then). */
static int store_put(sf_store_t *s, const char *type, const char *uuid, uint64_t expect_rev, json_object *doc,
                     const sf_fence_t *fence, const sf_store_then_t *then, const char *expect_text,
                     uint64_t *ret_rev, char **ret_then) {
        const char *argv[17 + 2 * SF_STORE_THEN_MAX];
        char keybuf[4][256], revs[24], toks[24], nkeys[16], nt[8], na[8];
        const char *fields[3] = {"namespace", "name", "node"};
        const char *names[3] = {"ns", "name", "node"};
        int argc = 0, nk = 0;
        const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        _cleanup_free_ char *script = NULL;
        _cleanup_reply_ redisReply *r = NULL;

        if (then && (then->nkeys > SF_STORE_THEN_MAX || then->nargs > SF_STORE_THEN_MAX))
                return -EINVAL;
        if (then) {
                script = sf_strdupf("%s%s\n%s", GEN_BUMP_LUA, then->lua, PUT_THEN_BODY_LUA);
                if (!script)
                        return -ENOMEM;
        }
        snprintf(keybuf[0], sizeof(keybuf[0]), SF_KEY_OBJ, type, uuid);
        snprintf(keybuf[1], sizeof(keybuf[1]), SF_KEY_FENCE, fence ? fence->resource : "-");
        snprintf(keybuf[2], sizeof(keybuf[2]), SF_KEY_GEN, type);
        snprintf(keybuf[3], sizeof(keybuf[3]), SF_KEY_IDX_ALL, type);
        nk = 4;
        argv[argc++] = "EVAL";
        argv[argc++] = then ? script : PUT_LUA;
        /* Keys: object, fence, generation, all-index, [then_'s keys,] then up to three
         * field indexes. */
        char idx[3][256];
        int nidx = 0;
        for (int i = 0; i < 3; i++) {
                const char *v = sf_json_str(doc, fields[i]);
                if (v && *v)
                        snprintf(idx[nidx++], sizeof(idx[0]), SF_KEY_IDX, type, names[i], v);
        }
        snprintf(nkeys, sizeof(nkeys), "%d", nk + nidx + (then ? (int)then->nkeys : 0));
        argv[argc++] = nkeys;
        argv[argc++] = keybuf[0];
        argv[argc++] = keybuf[1];
        argv[argc++] = keybuf[2];
        argv[argc++] = keybuf[3];
        for (size_t i = 0; then && i < then->nkeys; i++)
                argv[argc++] = then->keys[i];
        for (int i = 0; i < nidx; i++)
                argv[argc++] = idx[i];
        snprintf(revs, sizeof(revs), "%llu", (unsigned long long)expect_rev);
        snprintf(toks, sizeof(toks), "%llu", (unsigned long long)(fence ? fence->token : 0));
        argv[argc++] = revs;
        argv[argc++] = text;
        argv[argc++] = toks;
        argv[argc++] = uuid;
        argv[argc++] = expect_text ? expect_text : "";
        if (then) {
                snprintf(nt, sizeof(nt), "%zu", then->nkeys);
                snprintf(na, sizeof(na), "%zu", then->nargs);
                argv[argc++] = nt;
                argv[argc++] = na;
                for (size_t i = 0; i < then->nargs; i++)
                        argv[argc++] = then->args[i];
        }
        /* Once: a lost reply may mean it was applied, and a second try would then report
         * a conflict with our own write (or, in sf_store_update, apply the change twice). */
        r = sf_store_cmdargv_once(s, argc, argv, NULL);
        if (!r)
                return -EIO;
        if (r->type == REDIS_REPLY_ERROR) {
                log_err("store put %s/%s: %s", type, uuid, r->str);
                return sf_store_reply_errno(r);
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
                return -EIO;
        if (r->element[0]->integer == -1) {
                seen_note(s, type, uuid, 0, NULL);
                return -ESTALE;
        }
        if (r->element[0]->integer == -2)
                return -ENOLCK;
        seen_note(s, type, uuid, (uint64_t)r->element[1]->integer, text);
        if (ret_rev)
                *ret_rev = (uint64_t)r->element[1]->integer;
        if (ret_then && r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING)
                *ret_then = strdup(r->element[2]->str);
        return 0;
}

int sf_store_put(sf_store_t *s, const char *type, const char *uuid, uint64_t expect_rev,
                 json_object *doc, const sf_fence_t *fence, uint64_t *ret_rev) {
        return store_put(s, type, uuid, expect_rev, doc, fence, NULL, NULL, ret_rev, NULL);
}

int sf_store_put_then(sf_store_t *s, const char *type, const char *uuid, uint64_t expect_rev, json_object *doc,
                      const sf_fence_t *fence, sf_store_then_fn then_fn, void *then_ud, uint64_t *ret_rev,
                      char **ret_then) {
        sf_store_then_t then = {0};
        int t = then_fn(doc, then_ud, &then);

        if (t < 0)
                return t;
        return store_put(s, type, uuid, expect_rev, doc, fence, t == 0 ? &then : NULL, NULL, ret_rev, ret_then);
}

/* The first guess of sf_store_update: the document this connection last read or wrote,
 * if any.  1 with *ret_doc and *ret_rev set, 0 without a guess. */
static int seen_guess(sf_store_t *s, const char *type, const char *uuid, json_object **ret_doc, uint64_t *ret_rev,
                      char **ret_text) {
        seen_doc_t *d = seen_find(s, type, uuid);
        json_object *doc;
        char *text;

        if (!d || !d->text)
                return 0;
        doc = json_tokener_parse(d->text);
        if (!doc || !json_object_is_type(doc, json_type_object) || !(text = strdup(d->text))) {
                json_object_put(doc);
                return 0;
        }
        d->used = ++s->seen_clock;
        *ret_doc = doc;
        *ret_rev = d->rev;
        *ret_text = text;
        return 1;
}

/* One write of sf_store_update(_then): fn applied to doc, and if it wants a write, doc
 * written at rev with what then_fn adds.  Returns fn's result (0 written, 1 nothing to
 * do) or a negative errno; *ret_wrote says whether it came from the write (-ESTALE: a
 * conflict) rather than from fn or then_fn. */
static int update_once(sf_store_t *s, const char *type, const char *uuid, const sf_fence_t *fence,
                       sf_store_mutate_fn fn, void *userdata, sf_store_then_fn then_fn, void *then_ud,
                       json_object *doc, uint64_t rev, const char *expect_text, char **ret_then, bool *ret_wrote) {
        sf_store_then_t then = {0};
        int r = fn(doc, userdata), t = 1;

        *ret_wrote = false;
        if (r != 0)
                return r;
        if (then_fn && (t = then_fn(doc, then_ud, &then)) < 0)
                return t;
        *ret_wrote = true;
        return store_put(s, type, uuid, rev, doc, fence, t == 0 ? &then : NULL, expect_text, NULL, ret_then);
}

int sf_store_update_then(sf_store_t *s, const char *type, const char *uuid, const sf_fence_t *fence,
                         sf_store_mutate_fn fn, void *userdata, sf_store_then_fn then_fn, void *then_ud,
                         json_object **ret_doc, char **ret_then) {
        for (int attempt = 0; attempt < 100; attempt++) {
                _cleanup_json_ json_object *doc = NULL;
                _cleanup_free_ char *guess = NULL;
                uint64_t rev;
                bool wrote;
                int r;

                /* First try: the document as this connection last saw it (no read).  Only
                 * a write validates a guess (same revision and the very same text: a
                 * record deleted and made again restarts its revisions); whatever fn
                 * decided on it, and a conflict, are decided again on a fresh read. */
                if (attempt == 0 && seen_guess(s, type, uuid, &doc, &rev, &guess) == 1) {
                        r = update_once(s, type, uuid, fence, fn, userdata, then_fn, then_ud, doc, rev, guess,
                                        ret_then, &wrote);
                        if (r == 0 && wrote)
                                goto done;
                        if (wrote && r != -ESTALE)
                                return r;
                        json_object_put(doc);
                        doc = NULL;
                }
                r = sf_store_get(s, type, uuid, &doc, &rev);
                if (r < 0)
                        return r;
                r = update_once(s, type, uuid, fence, fn, userdata, then_fn, then_ud, doc, rev, NULL, ret_then,
                                &wrote);
                if (r == -ESTALE && wrote) {
                        /* Somebody else wrote first: back off a random little while (so one
                         * writer cannot starve), re-read, re-apply. */
                        uint32_t rnd = 0;
                        sf_random_bytes(&rnd, sizeof(rnd));
                        struct timespec ts = {0, (long)(rnd % (uint32_t)(attempt + 1)) * 200000L};
                        nanosleep(&ts, NULL);
                        continue;
                }
                if (r < 0)
                        return r;
        done:
                if (ret_doc)
                        *ret_doc = json_object_get(doc);
                return 0;
        }
        return -ESTALE;
}

int sf_store_update(sf_store_t *s, const char *type, const char *uuid, const sf_fence_t *fence,
                    sf_store_mutate_fn fn, void *userdata, json_object **ret_doc) {
        return sf_store_update_then(s, type, uuid, fence, fn, userdata, NULL, NULL, ret_doc, NULL);
}

int sf_store_index(sf_store_t *s, const char *type, const char *index, const char *value,
                   char ***ret, size_t *ret_n) {
        _cleanup_reply_ redisReply *r = NULL;
        char **v;

        if (strcmp(index, "all") == 0)
                r = sf_store_cmd(s, "SMEMBERS " SF_KEY_IDX_ALL, type);
        else
                r = sf_store_cmd(s, "SMEMBERS " SF_KEY_IDX, type, index, value);
        if (!r || r->type != REDIS_REPLY_ARRAY)
                return r && r->type == REDIS_REPLY_ERROR ? sf_store_reply_errno(r) : -EIO;
        v = calloc(r->elements + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < r->elements; i++) {
                v[i] = strdup(r->element[i]->str);
                if (!v[i]) {
                        sf_strv_free(v);
                        return -ENOMEM;
                }
        }
        *ret = v;
        if (ret_n)
                *ret_n = r->elements;
        return 0;
}

/* An object's events: every per-type list and the older single list. */
static void events_purge(sf_store_t *s, const char *type, const char *uuid) {
        freeReplyObject(sf_store_cmd(s, "DEL " SF_KEY_EVENTS_OLD, type, uuid));
        for (int i = 0; i < SF_CONFIG_EVENT_TYPES; i++)
                freeReplyObject(sf_store_cmd(s, "DEL " SF_KEY_EVENTS, type, uuid, SF_EVENT_TYPES[i]));
}

int sf_store_purge(sf_store_t *s, const char *type, const char *uuid) {
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_reply_ redisReply *rep = NULL;
        const char *fields[3] = {"namespace", "name", "node"};
        const char *names[3] = {"ns", "name", "node"};
        char keys[7][256], nkeys[8];
        const char *argv[12] = {"EVAL", PURGE_LUA, nkeys};
        int r = sf_store_get(s, type, uuid, &doc, NULL), argc = 3, nk = 4;

        seen_note(s, type, uuid, 0, NULL);
        if (r == -ENOENT) {
                events_purge(s, type, uuid); /* events of an object whose record went first */
                return 0;
        }
        if (r < 0)
                return r;
        snprintf(keys[0], sizeof(keys[0]), SF_KEY_OBJ, type, uuid);
        snprintf(keys[1], sizeof(keys[1]), SF_KEY_EVENTS_OLD, type, uuid);
        snprintf(keys[2], sizeof(keys[2]), SF_KEY_GEN, type);
        snprintf(keys[3], sizeof(keys[3]), SF_KEY_IDX_ALL, type);
        for (int i = 0; i < 3; i++) {
                const char *v = sf_json_str(doc, fields[i]);
                if (v && *v)
                        snprintf(keys[nk++], sizeof(keys[0]), SF_KEY_IDX, type, names[i], v);
        }
        snprintf(nkeys, sizeof(nkeys), "%d", nk);
        for (int i = 0; i < nk; i++)
                argv[argc++] = keys[i];
        argv[argc++] = uuid;
        /* Idempotent: removing what is already gone changes nothing (but the generation). */
        rep = sf_store_cmdargv(s, argc, argv, NULL);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
                if (rep)
                        log_err("store purge %s/%s: %s", type, uuid, rep->str);
                return sf_store_reply_errno(rep);
        }
        events_purge(s, type, uuid);
        return 0;
}

int sf_store_gens(sf_store_t *s, size_t n, const char *const *types, uint64_t *ret) {
        _cleanup_reply_ redisReply *rep = NULL;
        const char *argv[9] = {"MGET"};
        char keys[8][128];

        if (n > 8)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                snprintf(keys[i], sizeof(keys[i]), SF_KEY_GEN, types[i]);
                argv[i + 1] = keys[i];
        }
        rep = sf_store_cmdargv(s, (int)n + 1, argv, NULL);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != n)
                return rep && rep->type == REDIS_REPLY_ERROR ? sf_store_reply_errno(rep) : -EIO;
        for (size_t i = 0; i < n; i++)
                ret[i] = rep->element[i]->type == REDIS_REPLY_STRING ? strtoull(rep->element[i]->str, NULL, 10) : 0;
        return 0;
}

void sf_strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

const char *sf_json_str(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int64_t sf_json_int(json_object *o, const char *key, int64_t def) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
                return def;
        return json_object_get_int64(v);
}

bool sf_json_bool(json_object *o, const char *key, bool def) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return def;
        return json_object_get_boolean(v);
}
