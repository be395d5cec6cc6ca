/* Following GET /events/stream (docs/events-stream.md) from sf (cli/): one connection
 * driven by a curl multi handle, so a caller can wait for the next event with a timeout
 * and do other work (a poll, a redraw) between. A dropped connection is reconnected by
 * itself with Last-Event-ID (the last id handed out), so events are neither lost nor
 * repeated; a 401 (the token expired) re-authenticates first. No data at all (not even a
 * keepalive) for SF_STREAM_IDLE_S seconds counts as a drop. Memory is bounded: at most
 * SF_STREAM_QUEUE parsed events wait (the connection is paused beyond), and sse.h bounds
 * each. */
#pragma once
#include "client.h"

#include <json-c/json.h>
#include <signal.h>

#define SF_STREAM_QUEUE 256
#define SF_STREAM_IDLE_S 45 /* three of the server's 15 s heartbeats */

typedef struct sf_stream sf_stream_t;

typedef struct {
        long long id;      /* the stream sequence; -1 for a record without one (errors) */
        char *event;       /* "message" or the record's event (e.g. "error") */
        json_object *data; /* the record's JSON object; NULL when its data was not one */
} sf_stream_event_t;

/* Opens the stream of events of `type` and/or `uuid` (NULL = any). after >= 0 resumes
 * after that id. Connects lazily (in sf_stream_next). `stop` (may be NULL) is polled: set
 * it from a signal handler to end a wait early. `announce`: print reconnects and a refusal
 * on stderr (else silent: a wait falls back to polling, e.g. against upstream's API). */
int sf_stream_open(sf_client_t *c, const char *type, const char *uuid, long long after,
                   volatile sig_atomic_t *stop, int announce, sf_stream_t **ret);

/* Waits up to timeout_ms for the next event: 0 and *ret (free with sf_stream_event_free);
 * -EAGAIN when none came in time; -EINTR when *stop was set; -EPERM when the server
 * refuses the stream for good (400, 403, 404: printed if announced); -ENOMEM. */
int sf_stream_next(sf_stream_t *s, int timeout_ms, sf_stream_event_t **ret);

/* True once the server answered 200 and sent its first bytes: events from then on are
 * delivered. */
int sf_stream_is_open(const sf_stream_t *s);
/* The id of the last event handed out (-1: none yet). */
long long sf_stream_last_id(const sf_stream_t *s);
/* Records dropped as malformed so far (sse.h). */
unsigned long sf_stream_dropped(const sf_stream_t *s);

void sf_stream_event_free(sf_stream_event_t *e);
void sf_stream_free(sf_stream_t *s);
