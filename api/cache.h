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
        char *text;               /* the JSON text, NUL-terminated; owned by the view */
        size_t len;
        int refs;                 /* views are shared read-only once made */
} sf_view_t;

/* A new view holding text (consumed: freed on failure), one reference.  -ENOMEM. */
int sf_view_new(char *text, sf_view_t **ret);
/* Drop a reference (NULL is fine); the last one frees the view. */
void sf_view_unref(const sf_view_t *v);
/* The cached view for (type, uuid, rev): a reference the caller drops, or -ENOENT.  Its
 * deps must still be checked before use. */
int sf_cache_view_get(const char *type, const char *uuid, uint64_t rev, const sf_view_t **ret);
/* Keep v in the cache (the cache takes its own reference), unless a newer revision of the
 * same object is already there.  Must not be changed afterwards. */
void sf_cache_view_put(sf_view_t *v);
/* Drop every view (tests). */
void sf_cache_view_clear(void);

/* A whole list answer (the JSON text with its newline), valid while the generations of
 * the types it was read from (sf_store_gens, read before the objects) are unchanged, for
 * the same caller namespace, system-ness, `all` flag and the caller's namespace document
 * text (trusts live there). */
#define SF_LIST_GENS 3 /* instance, networkinterface, namespace */

typedef struct sf_list {
        char type[24];
        char ns[64];
        bool system, all;
        uint64_t gens[SF_LIST_GENS];
        char *nstext;
        size_t nslen;
        char *text;
        size_t len;
        int refs;
} sf_list_t;

/* A reference to the matching list (drop it with sf_list_unref), or -ENOENT. */
int sf_cache_list_get(const char *type, const char *ns, bool system, bool all, const uint64_t gens[SF_LIST_GENS],
                      const char *nstext, size_t nslen, const sf_list_t **ret);
/* Keep a list: text (malloc'd, consumed: freed on failure) and a copy of nstext; *ret gets
 * a reference for the caller.  -ENOMEM, -ENAMETOOLONG (type or ns too long to keep). */
int sf_cache_list_put(const char *type, const char *ns, bool system, bool all, const uint64_t gens[SF_LIST_GENS],
                      const char *nstext, size_t nslen, char *text, size_t len, const sf_list_t **ret);
void sf_list_unref(const sf_list_t *l);
/* For sf_http_json_borrowed: drops the reference cls. */
void sf_list_release(void *cls);
