/* Object state machines, exactly api.md §4.3. */
#pragma once
#include <stdbool.h>

/* Is from -> to allowed for objtype?  from NULL means "no state yet" (creation).
 * Setting the current state again is always allowed (idempotent re-run). */
bool sf_state_ok(const char *objtype, const char *from, const char *to);
/* Shown by list endpoints without all=true. */
bool sf_state_active(const char *objtype, const char *state);
/* An instance state that a worker still has to act on (the reconciler re-drives these). */
bool sf_state_transitional(const char *objtype, const char *state);
