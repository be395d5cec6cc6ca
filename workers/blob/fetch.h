/* HTTP(S) downloads into the blob store: streamed to <dest>.partial with sha512 computed on
 * the way, fsynced, then renamed, so a file at dest is always complete. */
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "netpolicy.h"

/* What one download may do (SF_DOWNLOAD_TIMEOUT, SF_DOWNLOAD_MAX_BYTES, lib/netpolicy.h). */
typedef struct sf_blob_fetch_limits {
        int timeout_s;                /* whole transfer, redirects included (0: none) */
        uint64_t max_bytes;           /* body size (0: none) */
        const sf_netpolicy_t *policy; /* checked on every address connected to (required) */
        volatile sig_atomic_t *stop;  /* when it becomes non-zero the transfer is abandoned (may be NULL) */
} sf_blob_fetch_limits_t;

typedef struct sf_blob_fetch_result {
        long http_status;        /* final response (after redirects) */
        bool not_modified;       /* 304: nothing was written */
        uint64_t size;           /* bytes written to dest */
        char sha512[129];        /* lower-case hex of the body */
        char etag[256];          /* ETag response header ("" if none) */
        char last_modified[128]; /* Last-Modified response header, verbatim ("" if none) */
        char error[256];         /* what went wrong (see below) */
} sf_blob_fetch_result_t;

/* Only http:// and https:// URLs are fetched. */
bool sf_blob_url_ok(const char *url);

/* GET url into dest_path (mode 0644).  With etag / last_modified (NULL or "" for none)
 * the request is conditional (If-None-Match / If-Modified-Since) and a 304 leaves
 * dest_path alone.  Redirects are followed (http/https only).  progress(ud), if given, is
 * called at most every ~2 s while the transfer runs.
 *
 * Returns 0 on 2xx or 304 with *ret filled.  Errors: -EPROTONOSUPPORT (not http/https,
 * also for a redirect elsewhere), -EREMOTEIO (HTTP status >= 400 or another non-2xx
 * final answer), -ETIMEDOUT (connect or stall), -ECONNREFUSED, -EHOSTUNREACH, -EIO
 * (other transfer errors), or a write errno; and for the limits: -EACCES (a destination the
 * policy denies, also after a redirect or DNS), -EFBIG (the body is larger than max_bytes:
 * refused on Content-Length, or stopped at the cap), -ETIME (took longer than timeout_s),
 * -ECANCELED (stop was set).  Proxies from the environment are ignored; at most 5 redirects.  On failure only ret->http_status (0 if no answer) and ret->error
 * are set, so the caller can say why; nothing is left on disk. */
int sf_blob_fetch_url(const char *url, const char *dest_path, const char *etag,
                      const char *last_modified, const sf_blob_fetch_limits_t *limits,
                      sf_blob_fetch_result_t *ret, void (*progress)(void *ud), void *ud);
