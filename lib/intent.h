/* Intents: "node X, worker Y: make object Z converge (kind K)".
 *
 * The record is written to Redis (sf:intent:<id>, and the pending set) BEFORE it is
 * published on sf.intent.<node>.<worker> with Nats-Msg-Id = id, because nats-server
 * 2.9 fsyncs lazily and an acknowledged publish can vanish on power loss.  Workers mark
 * an intent done only after the state change it asked for is committed; the reconciler
 * re-publishes pending intents that nobody has touched for a while. */
#pragma once
#include <stdint.h>

#include "ctx.h"
#include "sf.pb-c.h"
#include "util.h"

#define SF_INTENT_PENDING "pending"
#define SF_INTENT_DONE    "done"
#define SF_INTENT_FAILED  "failed"

/* args: NULL or a NULL-terminated list of key, value, key, value... */
int sf_intent_submit(sf_ctx_t *ctx, const char *node, const char *worker, const char *kind,
                     const char *objtype, const char *uuid, const char *ns,
                     const char *const *args, char ret_id[SF_UUID_LEN]);

void sf_intent_subject(const char *node, const char *worker, char *out, size_t len);

/* The record: decoded intent, its state and attempts so far. */
int sf_intent_load(sf_store_t *s, const char *id, Sf__Intent **ret, char ret_state[16],
                   int *ret_attempts);
/* Count one attempt before running a handler (so a crash counts); returns the new count. */
int sf_intent_attempt(sf_store_t *s, const char *id, int delta, int *ret_attempts);
/* A worker saw it just now: the reconciler leaves it alone. */
int sf_intent_touch(sf_store_t *s, const char *id);
/* done / failed: leaves the pending set.  error (optional) is kept for operators. */
int sf_intent_finish(sf_store_t *s, const char *id, const char *state, const char *error);
/* Re-publish pending intents last touched more than older_than_s ago, for node and
 * worker (NULL: any).  *ret_n = how many. */
int sf_intent_redrive(sf_ctx_t *ctx, const char *node, const char *worker, int older_than_s,
                      int *ret_n);
/* A worker starting up: every pending intent of node and worker is published again at
 * once, with a fresh message id, instead of waiting for JetStream's ack timeout to
 * redeliver what a dead predecessor held.  Copies are harmless (handlers are keyed by
 * intent id and skip done intents). */
int sf_intent_recover(sf_ctx_t *ctx, const char *node, const char *worker, int *ret_n);
/* An argument of the intent, or NULL. */
const char *sf_intent_arg(const Sf__Intent *in, const char *key);
