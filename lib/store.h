/* Redis, the source of truth.  Every object is one hash sf:obj:<type>:<uuid> holding a
 * JSON document and a revision; every write is a compare-and-set on that revision in
 * one Lua script, optionally fenced by a lock token.  One sf_store_t per thread:
 * hiredis contexts are not thread-safe. */
#pragma once
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sf_store sf_store_t;

/* A fencing token obtained with a lock on `resource` (see lock.h).  A write carrying
 * it is refused with -ENOLCK once a newer token for that resource exists. */
typedef struct sf_fence {
        const char *resource;
        uint64_t token;
} sf_fence_t;

int sf_store_connect(const char *host, int port, sf_store_t **ret);
/* The Redis password every store of this process sends (AUTH) on each (re)connect; ""
 * or NULL for none.  Set once at start-up (sf_ctx_open does), before any thread connects. */
void sf_store_set_password(const char *password);
void sf_store_free(sf_store_t *s);
const char *sf_store_host(const sf_store_t *s);
int sf_store_port(const sf_store_t *s);

/* A raw command; sent again on a fresh connection once if the reply was lost, so only
 * for idempotent commands (reads, SET/HSET/SADD/DEL of fixed values).  NULL on failure
 * (logged).  Replies of type ERROR are returned as is: check them. */
redisReply *sf_store_cmd(sf_store_t *s, const char *fmt, ...);
redisReply *sf_store_cmdargv(sf_store_t *s, int argc, const char **argv, const size_t *lens);
/* The same, sent at most once: for commands that must not be applied twice (INCR,
 * HINCRBY, lock acquisition, CAS scripts).  NULL = unknown whether it was applied. */
redisReply *sf_store_cmd_once(sf_store_t *s, const char *fmt, ...);
redisReply *sf_store_cmdargv_once(sf_store_t *s, int argc, const char **argv, const size_t *lens);
/* 0 for a non-error reply; -EAGAIN for a server that cannot answer yet (LOADING, BUSY,
 * ...), -EIO for no reply or any other error.  Both mean "don't know", never "absent". */
int sf_store_reply_errno(const redisReply *r);
/* How long to wait for a reply (default 10 s). */
void sf_store_set_timeout(sf_store_t *s, int ms);

/* The current document and revision.  -ENOENT only when Redis said the object does not
 * exist; -EIO/-EAGAIN (no reply, LOADING, ...) mean "don't know": never act on them as
 * if it were absent. */
int sf_store_get(sf_store_t *s, const char *type, const char *uuid, json_object **ret_doc,
                 uint64_t *ret_rev);

/* Several objects in one round trip: HMGET sf:obj:<types[i]>:<uuids[i]> rev [doc] for each i,
 * pipelined.  *ret gets n replies (free with sf_store_replies_free; read each with
 * sf_store_reply_obj).  -EIO if the replies could not be read (after one more try on a
 * fresh connection). */
int sf_store_read_many(sf_store_t *s, size_t n, const char *const *types, const char *const *uuids,
                       bool with_doc, redisReply ***ret);
void sf_store_replies_free(redisReply **v, size_t n);
/* One such reply, judged as sf_store_get does: 0 with the revision and (if fetched) the
 * document text (borrowed from r), -ENOENT for a definite nil, -EBADMSG for a half-written
 * object, -EIO/-EAGAIN for "don't know". */
int sf_store_reply_obj(const redisReply *r, const char *type, const char *uuid, uint64_t *ret_rev,
                       const char **ret_doc, size_t *ret_len);
/* A stored document's text as a JSON object; -EBADMSG (logged) if it is not one. */
int sf_store_doc_parse(const char *text, const char *type, const char *uuid, json_object **ret_doc);

/* Write doc if the stored revision is still expect_rev (0: must not exist yet).
 * -ESTALE on a revision conflict, -ENOLCK on a stale fence.  Index sets for the doc's
 * "namespace", "name" and "node" fields are updated in the same script. */
int sf_store_put(sf_store_t *s, const char *type, const char *uuid, uint64_t expect_rev,
                 json_object *doc, const sf_fence_t *fence, uint64_t *ret_rev);

/* Read-modify-write with CAS retries.  fn returns 0 to write, 1 for "nothing to do"
 * (no write, success), or a negative errno to abort with it.  *ret_doc (optional)
 * gets the resulting document (caller puts it).  The first try applies fn to the
 * document this connection last read or wrote (if any) without reading it: the write
 * validates it (the stored revision and text must still be that document's), and if it
 * was stale, or fn returned non-zero on it, fn is applied again to a fresh read.  So fn
 * may run more than once (as on any conflict). */
typedef int (*sf_store_mutate_fn)(json_object *doc, void *userdata);
int sf_store_update(sf_store_t *s, const char *type, const char *uuid, const sf_fence_t *fence,
                    sf_store_mutate_fn fn, void *userdata, json_object **ret_doc);

/* What sf_store_update_then writes in the same script as the document, only if the
 * document is written: Lua source defining `local function then_(k, a)` (k and a the
 * tables of keys and args below, at most SF_STORE_THEN_MAX each), whose return value (a
 * string) comes back in *ret_then.  Strings are borrowed until the next call of the
 * then_fn or the return of sf_store_update_then. */
#define SF_STORE_THEN_MAX 8
typedef struct sf_store_then {
        const char *lua;
        size_t nkeys, nargs;
        const char *keys[SF_STORE_THEN_MAX];
        const char *args[SF_STORE_THEN_MAX];
} sf_store_then_t;
/* Called with the document about to be written (after fn returned 0): fill *then and
 * return 0, or return 1 for nothing to add to this write, or a negative errno to abort. */
typedef int (*sf_store_then_fn)(json_object *doc, void *userdata, sf_store_then_t *then);
/* sf_store_update, with what then_fn adds stored atomically with the write: one round
 * trip instead of two (events of a change, lib/event.c).  ret_then (optional, caller
 * frees) gets the then_ function's result, NULL when nothing was added. */
int sf_store_update_then(sf_store_t *s, const char *type, const char *uuid, const sf_fence_t *fence,
                         sf_store_mutate_fn fn, void *userdata, sf_store_then_fn then_fn, void *then_ud,
                         json_object **ret_doc, char **ret_then);

/* sf_store_put with what then_fn adds stored in the same script (as sf_store_update_then). */
int sf_store_put_then(sf_store_t *s, const char *type, const char *uuid, uint64_t expect_rev, json_object *doc,
                      const sf_fence_t *fence, sf_store_then_fn then_fn, void *then_ud, uint64_t *ret_rev,
                      char **ret_then);

/* Members of an index: index is "all", "ns", "name" or "node"; value is ignored for
 * "all".  Returns a NULL-terminated vector (free with sf_strv_free); an error
 * (-EIO/-EAGAIN) is never an empty set. */
int sf_store_index(sf_store_t *s, const char *type, const char *index, const char *value,
                   char ***ret, size_t *ret_n);
/* Generations of types (0 for a type never written): every sf_store_put and
 * sf_store_purge of an object of a type changes its generation, atomically with the
 * change, to a value it never had before.  Read before the objects, an unchanged
 * generation means nothing of that type changed since. */
int sf_store_gens(sf_store_t *s, size_t n, const char *const *types, uint64_t *ret);
/* Remove an object for good (hard delete): its record and index entries in one step, then
 * its events (those even when the record is already gone). */
int sf_store_purge(sf_store_t *s, const char *type, const char *uuid);

void sf_strv_free(char **v);

/* json-c helpers used everywhere. */
const char *sf_json_str(json_object *o, const char *key); /* NULL if absent or not a string */
int64_t sf_json_int(json_object *o, const char *key, int64_t def);
bool sf_json_bool(json_object *o, const char *key, bool def);
static inline void sf_json_putp(json_object **o) { if (*o) json_object_put(*o); }
#define _cleanup_json_ __attribute__((cleanup(sf_json_putp)))
static inline void sf_reply_freep(redisReply **r) { if (*r) freeReplyObject(*r); }
#define _cleanup_reply_ __attribute__((cleanup(sf_reply_freep)))
