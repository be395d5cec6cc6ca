/* sf-api's caches for the hot read paths.  Each entry is valid only for the exact input it
 * was made from (the same Authorization header, the same namespace document text, the same
 * object revisions), so a hit answers exactly what recomputing would.  Nothing here skips a
 * Redis read: revocation (namespace and key nonce) and object revisions are read on every
 * request; only the CPU work done on identical input is saved. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "auth.h"
#include "sflimits.h"
#include "util.h"

/* sf_auth_token_verify with a per-thread memo of successful checks, keyed by the whole
 * header.  A hit is re-checked against the clock (expiry; a clock that went back since the
 * check means a full check again); misses and failures run the full check. */
int sf_cache_token_verify(const char *secret, const char *authorization_header, sf_auth_claims_t *ret,
                          const char **ret_error_message);

/* The namespace document parsed from text, from a per-thread memo of the last few texts.
 * Borrowed: valid until this thread's next call.  -EBADMSG if text is not a JSON object. */
int sf_cache_namespace_doc(const char *ns, const char *text, size_t len, json_object **ret_doc);

/* A rendered view: what GET of one object answers (the JSON text without the newline),
 * with what list filters need.  Keyed by (type, uuid, rev) plus the revisions of the other
 * objects the view was rendered from (an instance's interfaces; rev 0 = was absent). */
typedef struct sf_view_dep {
        char uuid[SF_UUID_LEN];
        uint64_t rev;
} sf_view_dep_t;

typedef struct sf_view {
        char type[24];
        char uuid[SF_UUID_LEN];
        uint64_t rev;
        char ns[64];              /* the doc's "namespace" (has_ns false: none) */
        char state[32];
        bool has_ns, has_state;
        size_t ndeps;
        sf_view_dep_t deps[SF_MAX_NICS];
        char *text; /* malloc'd */
        size_t len;
} sf_view_t;

/* Copy of the entry for (type, uuid, rev), deps included (check them before use), or
 * -ENOENT.  ret->text is a fresh copy: free it (sf_view_done). */
int sf_cache_view_get(const char *type, const char *uuid, uint64_t rev, sf_view_t *ret);
/* Store v (copied).  Replaces what the slot held. */
int sf_cache_view_put(const sf_view_t *v);
void sf_view_done(sf_view_t *v);
/* Drop every view (tests). */
void sf_cache_view_clear(void);
