/* The bus: NATS JetStream streams, durable pull consumers, publish with dedupe ids.
 * It knows subjects and bytes, never which process uses it or what a message means. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct sf_bus sf_bus_t;
typedef struct sf_bus_sub sf_bus_sub_t;
typedef struct sf_bus_msg sf_bus_msg_t;

#define SF_BUS_INTENTS "SF_INTENTS" /* work queue, file storage, subjects sf.intent.> */
#define SF_BUS_EVENTS  "SF_EVENTS"  /* limits retention, file storage, subjects sf.event.> */

/* user and password: NATS user credentials; a password without a user is sent as a
 * token; both NULL or "" connect without credentials. */
int sf_bus_connect(const char *url, const char *user, const char *password, sf_bus_t **ret);
void sf_bus_free(sf_bus_t *b);
/* How many times the connection came back after a loss (changes mean: messages
 * published meanwhile may be missing). */
uint64_t sf_bus_reconnects(sf_bus_t *b);

/* Create (or update to our config) both streams.  Idempotent. */
int sf_bus_ensure_streams(sf_bus_t *b);

/* Publish and wait for the stream's ack.  msg_id becomes Nats-Msg-Id (dedupe);
 * NULL for none. */
int sf_bus_publish(sf_bus_t *b, const char *subject, const char *msg_id, const void *data,
                   size_t len);

/* Publish without waiting for the stream's ack: for messages whose truth is elsewhere
 * (events: Redis has them first), so a lost one costs only its live copy.  Messages of
 * one connection reach the server in publish order.  A refusal or a missing ack (5 s)
 * is logged on the client's thread and counted (sf_bus_async_failed); a refusal for a
 * missing stream makes the next async publish create the streams again.  sf_bus_free
 * waits (bounded) for the acks still due. */
int sf_bus_publish_async(sf_bus_t *b, const char *subject, const void *data, size_t len);
/* Wait up to timeout_ms until every async publish so far is acknowledged (tests). */
int sf_bus_async_flush(sf_bus_t *b, int timeout_ms);
uint64_t sf_bus_async_failed(sf_bus_t *b);

/* Create the durable pull consumer explicitly (explicit ack, filter subject,
 * unlimited deliveries: the caller counts attempts in Redis) and bind to it.
 * Destroying the subscription never deletes the durable. */
int sf_bus_consumer(sf_bus_t *b, const char *stream, const char *durable, const char *filter,
                    int ack_wait_s, sf_bus_sub_t **ret);
void sf_bus_sub_free(sf_bus_sub_t *s);
/* Verify the durable still exists; if the server lost it (or its stream), create both
 * again and replace *sub with a fresh binding.  1 if replaced, 0 if fine, <0 on error. */
int sf_bus_sub_check(sf_bus_sub_t **sub);

/* One message, or -ETIMEDOUT when none arrived within timeout_ms. */
int sf_bus_fetch(sf_bus_sub_t *s, int timeout_ms, sf_bus_msg_t **ret);
/* Up to max messages in one pull request (ret has room for max): as soon as at least one
 * is there, it returns what the server sent (*ret_n), or -ETIMEDOUT when none arrived
 * within timeout_ms.  Each message's ack timer runs from its delivery. */
int sf_bus_fetch_many(sf_bus_sub_t *s, int max, int timeout_ms, sf_bus_msg_t **ret, int *ret_n);
const void *sf_bus_msg_data(sf_bus_msg_t *m, size_t *ret_len);
const char *sf_bus_msg_subject(sf_bus_msg_t *m);
uint64_t sf_bus_msg_delivered(sf_bus_msg_t *m); /* 1 on first delivery */
const char *sf_bus_msg_id(sf_bus_msg_t *m);      /* its Nats-Msg-Id, or NULL */
int sf_bus_ack(sf_bus_msg_t *m);                 /* synchronous: returns once the server has it */
int sf_bus_nak(sf_bus_msg_t *m, int delay_ms);
int sf_bus_term(sf_bus_msg_t *m);
int sf_bus_progress(sf_bus_msg_t *m);            /* resets the ack-wait timer */
void sf_bus_msg_free(sf_bus_msg_t *m);
uint64_t sf_bus_msg_seq(sf_bus_msg_t *m);        /* its stream sequence, 0 if unknown */

/* A follower: an ordered, ack-less ephemeral consumer that delivers every message of
 * stream matching filter once and in stream order, from start_seq (>= 1) on.  For
 * readers that watch (the live event stream), never for work.  A follower is used from
 * one thread at a time; freeing it deletes its consumer. */
typedef struct sf_bus_follow sf_bus_follow_t;
int sf_bus_follow(sf_bus_t *b, const char *stream, const char *filter, uint64_t start_seq,
                  sf_bus_follow_t **ret);
/* The next message, -ETIMEDOUT if none arrived within timeout_ms, another negative errno
 * if the follower broke (free it and follow again). */
int sf_bus_follow_next(sf_bus_follow_t *f, int timeout_ms, sf_bus_msg_t **ret);
void sf_bus_follow_free(sf_bus_follow_t *f);

/* A plain (core NATS) subscription: cb(subject, data, len, ud) runs on the client's own
 * thread for every message published on a subject matching filter from now on, while
 * connected (nothing is replayed: for wake-ups whose loss something else covers). */
typedef struct sf_bus_watch sf_bus_watch_t;
typedef void (*sf_bus_watch_fn)(const char *subject, const void *data, size_t len, void *ud);
int sf_bus_watch(sf_bus_t *b, const char *filter, sf_bus_watch_fn cb, void *ud, sf_bus_watch_t **ret);
/* Stops it; no callback runs once this returns.  NULL is fine. */
void sf_bus_watch_free(sf_bus_watch_t *w);

/* The first and last sequence a stream holds now (first = last + 1 when it is empty). */
int sf_bus_stream_seqs(sf_bus_t *b, const char *stream, uint64_t *ret_first, uint64_t *ret_last);
