/* Intents: "node X, worker Y: make object Z converge (kind K)".
 *
 * The record is written to Redis (sf:intent:<id>, and the pending set) BEFORE it is
 * published on sf.intent.<node>.<worker> with Nats-Msg-Id = id, because nats-server
 * 2.9 fsyncs lazily and an acknowledged publish can vanish on power loss.  Workers mark
 * an intent done only after the state change it asked for is committed; the reconciler
 * re-publishes pending intents that nobody has touched for a while.
 *
 * No pile-up: one open intent per (node and worker, object, kind, args)
 * (sf:intent:open:..., set and cleared with the pending set in one script), and one live
 * message per intent: every re-publish gets the id "<id>.<generation>", recorded in the
 * intent's msgid before publishing; workers ack and drop any other copy unseen. */
#pragma once
#include <stdint.h>

#include "ctx.h"
#include "sf.pb-c.h"
#include "util.h"

#define SF_INTENT_PENDING "pending"
#define SF_INTENT_DONE    "done"
#define SF_INTENT_FAILED  "failed"

/* args: NULL or a NULL-terminated list of key, value, key, value...
 * If an intent for the same node, worker, object, kind and args is still pending, it is
 * re-published (superseding its older copies) and its id returned instead of a new one;
 * if a worker already started it, it runs once more after this run (the submitter may
 * have changed the object after the handler read it). */
int sf_intent_submit(sf_ctx_t *ctx, const char *node, const char *worker, const char *kind,
                     const char *objtype, const char *uuid, const char *ns,
                     const char *const *args, char ret_id[SF_UUID_LEN]);

void sf_intent_subject(const char *node, const char *worker, char *out, size_t len);

/* The record: decoded intent, its state and attempts so far. */
int sf_intent_load(sf_store_t *s, const char *id, Sf__Intent **ret, char ret_state[16],
                   int *ret_attempts);
/* What a worker does before running a handler, in one round trip (one script, sent
 * once): load the record; if it is pending and msgid (the message's Nats-Msg-Id, NULL
 * for none) is its current copy, count one attempt and mark it seen.  *ret_run: 1 = run
 * it (*ret_attempts is the new count), 0 = pending but a newer copy superseded this
 * one, -1 = not pending (*ret_state says what).  -ENOENT if there is no record. */
int sf_intent_begin(sf_store_t *s, const char *id, const char *msgid, Sf__Intent **ret, char ret_state[16],
                    int *ret_attempts, int *ret_run);
/* Count one attempt before running a handler (so a crash counts); returns the new count. */
int sf_intent_attempt(sf_store_t *s, const char *id, int delta, int *ret_attempts);
/* A worker saw it just now: the reconciler leaves it alone. */
int sf_intent_touch(sf_store_t *s, const char *id);
/* done / failed: leaves the pending set.  error (optional) is kept for operators.
 * Returns 1 instead (still pending) for "done" when a submit asked for one more run
 * while it ran: the caller redelivers it at once. */
int sf_intent_finish(sf_store_t *s, const char *id, const char *state, const char *error);
/* 1 if msgid (a message's Nats-Msg-Id) is the intent's current copy, 0 if a newer copy
 * superseded it (ack it, do nothing), negative on a Redis error. */
int sf_intent_current(sf_store_t *s, const char *id, const char *msgid);
/* Re-publish pending intents last touched more than older_than_s ago, for node and
 * worker (NULL: any).  *ret_n = how many. */
int sf_intent_redrive(sf_ctx_t *ctx, const char *node, const char *worker, int older_than_s,
                      int *ret_n);
/* A worker starting up: every pending intent of node and worker is published again at
 * once, instead of waiting for JetStream's ack timeout to redeliver what a dead
 * predecessor held; the copy it held is superseded and dropped when it comes back. */
int sf_intent_recover(sf_ctx_t *ctx, const char *node, const char *worker, int *ret_n);
/* An argument of the intent, or NULL. */
const char *sf_intent_arg(const Sf__Intent *in, const char *key);
