/* Events (api.md §5): kept per object and event type in Redis (newest first, capped at
 * SF_EVENTS_KEEP, trimmed by age on write and filtered by age on read, the list expiring
 * once everything in it is past its type's retention), and published on
 * sf.event.<namespace>.<objtype>.<uuid> for live followers (after the Redis write,
 * without waiting for JetStream's ack: sf_bus_publish_async).  Every `audit` event of an
 * object with a namespace is also stored on that namespace's own events (extra gains
 * object_type and object_uuid). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>

#include "ctx.h"
#include "store.h"

#define SF_EVENTS_KEEP 1000

/* extra is borrowed (may be NULL).  duration < 0 means none.  Never fails the caller's
 * operation: errors are logged and returned for tests only. */
int sf_event_emit(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns,
                  const char *type, const char *message, json_object *extra, double duration);

/* An event stored in the same Redis script as the write of its object (one round trip
 * instead of two): pass sf_event_write_then and the struct as sf_store_update_then's
 * then_fn and then_ud; after the write, sf_event_write_publish(ev, the script's
 * result) sends the bus copy (only if something was written with it: ret_then set);
 * sf_event_write_done frees what the struct holds.  The namespace (for the mirror of an
 * audit event and the subject) is the written document's.  skip (optional) decides on
 * the document about to be written that this write carries no event. */
typedef struct sf_event_write {
        sf_ctx_t *ctx;
        const char *objtype, *uuid, *type, *message;
        json_object *extra; /* borrowed, may be NULL */
        double duration;    /* < 0: none */
        bool (*skip)(json_object *doc, void *ud);
        void *skip_ud;
        /* filled by sf_event_write_then */
        char *ns, *rest, *mirror;
        double now;
        char now_s[32], key[256], lastkey[256], nskey[256], nslast[256], keep[16], ret[24];
} sf_event_write_t;
int sf_event_write_then(json_object *doc, void *userdata, sf_store_then_t *then);
int sf_event_write_publish(sf_event_write_t *ev, const char *stored_ts);
void sf_event_write_done(sf_event_write_t *ev);

/* n events of one object and type (messages[i] with extras[i], borrowed, may be NULL)
 * in one Redis round trip, in that order: for steps that log several at once (the
 * scheduler's stages). */
int sf_event_emit_many(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns, const char *type,
                       size_t n, const char *const *messages, json_object *const *extras);
/* Newest first, at most limit, optionally only one event type. */
int sf_event_list(sf_store_t *s, const char *objtype, const char *uuid, const char *type_filter,
                  int limit, json_object **ret_array);

bool sf_event_type_valid(const char *type);

/* The event types in the order of sf_config_t.event_retention_s. */
extern const char *const SF_EVENT_TYPES[SF_CONFIG_EVENT_TYPES];
/* Set the process-wide retention (sf_ctx_open does it from the configuration). */
void sf_event_retention_set(const int64_t secs[SF_CONFIG_EVENT_TYPES]);
