/* Events (api.md §5): kept per object in Redis (newest first, capped) and published on
 * sf.event.<namespace>.<objtype>.<uuid> for live followers. */
#pragma once
#include <json-c/json.h>

#include "ctx.h"

#define SF_EVENTS_KEEP 1000

/* extra is borrowed (may be NULL).  duration < 0 means none.  Never fails the caller's
 * operation: errors are logged and returned for tests only. */
int sf_event_emit(sf_ctx_t *ctx, const char *objtype, const char *uuid, const char *ns,
                  const char *type, const char *message, json_object *extra, double duration);

/* Newest first, at most limit, optionally only one event type. */
int sf_event_list(sf_store_t *s, const char *objtype, const char *uuid, const char *type_filter,
                  int limit, json_object **ret_array);

bool sf_event_type_valid(const char *type);
