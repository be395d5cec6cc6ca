/* Distributed locks in Redis with fencing tokens.
 *
 * sf:lock:<name> = "<token>:<holder>" set with NX PX; the token comes from INCR
 * sf:fencectr and is also recorded as the newest token of <name> (sf:fence:<name>).
 * A background thread (its own Redis connection) refreshes the TTL while the lock
 * is held.  Expiry alone is not safety: a paused holder can outlive its TTL, so every
 * side-effecting write carries the token (sf_lock_fence) and Redis refuses a write
 * whose token is older than the newest one for that resource. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct sf_lock sf_lock_t;

/* Acquire name for ttl_ms, waiting up to wait_ms (0: one try).  -EBUSY if still held
 * by somebody else.  With keepalive, a thread refreshes it every ttl/3. */
int sf_lock_acquire(sf_store_t *s, const char *name, const char *holder, int ttl_ms, int wait_ms,
                    bool keepalive, sf_lock_t **ret);
/* Extend the TTL; -ENOLCK if the lock is no longer ours. */
int sf_lock_refresh(sf_store_t *s, sf_lock_t *l);
/* Before a side effect no fence can guard (libvirt, files): 0 if the lock is still ours
 * (its TTL is extended too), -ENOLCK if it was lost (also remembered: sf_lock_lost), -EIO
 * if Redis did not answer (do not act either).  One round trip, except within
 * min(ttl/10, 1 s) (CLOCK_BOOTTIME: stops and suspends count) of the request that last found
 * it ours: then it cannot have expired yet and the answer is 0 at once.  A process paused
 * right after a check can still act late, so a resource that can, is fenced as well. */
int sf_lock_check(sf_store_t *s, sf_lock_t *l);
/* True once a refresh found the lock taken over or expired. */
bool sf_lock_lost(const sf_lock_t *l);
uint64_t sf_lock_token(const sf_lock_t *l);
/* The fence to pass to sf_store_put/update for writes made under this lock. */
sf_fence_t sf_lock_fence(const sf_lock_t *l);
/* Holder names made by sf_lock_holder ("<node>/<pid>") let a restarted process on the
 * same node break a lock whose holder process is dead instead of waiting out the TTL.
 * Safe because of fencing: the dead holder's token is older than the next one. */
void sf_lock_holder(const char *node, char *out, size_t len);
/* 1 if a lock held by a dead process of this node was removed, 0 if not, <0 on error. */
int sf_lock_break_dead(sf_store_t *s, const char *name, const char *node);
/* The usual way for a worker: holder "<node>/<pid>", keepalive on; a lock left by a dead
 * process of this node is broken at once, else wait up to wait_ms (-EBUSY after). */
int sf_lock_acquire_worker(sf_store_t *s, const char *name, const char *node, int ttl_ms, int wait_ms,
                           sf_lock_t **ret);
/* Release (only if still ours) and free.  Accepts NULL. */
void sf_lock_release(sf_store_t *s, sf_lock_t *l);
