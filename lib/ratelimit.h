/* Token buckets per key (e.g. a client address) in a fixed-size table: memory stays bounded
 * whatever the number of keys. Thread-safe. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SF_RATELIMIT_KEY_MAX 64 /* longer keys are truncated (an IPv6 address fits) */

typedef struct sf_ratelimit sf_ratelimit_t;

/* slots: table size (rounded up to a power of two, at least 8); rate_per_min tokens are
 * added per minute up to burst. -EINVAL on a zero rate or burst, -ENOMEM. */
int sf_ratelimit_new(size_t slots, unsigned rate_per_min, unsigned burst, sf_ratelimit_t **ret);
void sf_ratelimit_free(sf_ratelimit_t *rl); /* NULL is fine */

/* Take one token from key's bucket at time now_ms (monotonic). 0 if there was one; -EAGAIN
 * if not, with *ret_retry_ms (optional) the wait until the next token. An unknown key starts
 * with a full bucket; when the table is full it replaces a bucket that has refilled (nothing
 * lost) or else the least recently used one. */
int sf_ratelimit_take(sf_ratelimit_t *rl, const char *key, int64_t now_ms, int64_t *ret_retry_ms);
