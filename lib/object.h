/* Object-level operations shared by the API and the workers: create a record, move it
 * through its state machine, both with the events api.md §5 describes. */
#pragma once
#include <json-c/json.h>

#include "ctx.h"

/* Create doc (must carry "uuid"/"name" as the type needs, plus "namespace"); sets
 * "state" (if absent: the machine's first state is the caller's job) and emits
 * "db record created".  -EEXIST if it already exists. */
int sf_obj_create(sf_ctx_t *ctx, const char *type, const char *uuid, json_object *doc);

/* Move to state `to` if the state machine allows it (-EINVAL otherwise; setting the
 * current state again is a no-op).  error_message (non-NULL) is stored as
 * "error_message".  ret_doc (optional) receives the new document. */
int sf_obj_set_state(sf_ctx_t *ctx, const char *type, const char *uuid, const char *to,
                     const char *error_message, const sf_fence_t *fence, json_object **ret_doc);

/* Set one field (value consumed) with a "set attribute" event. */
int sf_obj_set_field(sf_ctx_t *ctx, const char *type, const char *uuid, const char *field,
                     json_object *value, const sf_fence_t *fence);

/* Interfaces registered on a network (set sf:netifaces:<uuid>) that are not deleted. */
int sf_obj_network_live_interfaces(sf_store_t *s, const char *netuuid, int *ret);

/* Give back what one interface holds (its IPAM address and MAC, only if still its own)
 * and mark it deleted.  Idempotent.  ret_network (optional, SF_UUID_LEN) gets its
 * network uuid, or "" if the interface record is gone. */
int sf_obj_release_interface(sf_ctx_t *ctx, const char *iface_uuid, char *ret_network);

/* Hard-delete records that have been `deleted` for more than older_than_s (upstream's
 * CLEANER_DELAY): deleted objects answer by UUID until then, and nothing piles up
 * after.  Instances, networks and interfaces.  *ret_n = how many were removed. */
int sf_obj_purge_deleted(sf_ctx_t *ctx, int older_than_s, int *ret_n);
