/* sf-blob: fetches artifacts' images into this node's blob store and records blob +
 * artifact version; re-validates a cached version with one conditional request. */
#pragma once
#include <stddef.h>

#include "ctx.h"
#include "worker.h"

/* <storage>/blobs/<uuid[0:2]>/<uuid>.  -EINVAL for a non-uuid, -ENAMETOOLONG. */
int sf_blob_path(const char *storage, const char *uuid, char *out, size_t len);

/* Intent blob.fetch, object artifact/<uuid>. */
int sf_blob_handle_fetch(sf_work_t *w);
/* on_fail: the artifact goes to error, unless it still has a usable cached version. */
void sf_blob_fetch_failed(sf_work_t *w, const char *message);
/* Reconciler: re-publish this node's untouched pending blob intents. */
void sf_blob_tick(sf_ctx_t *ctx, void *user);

/* The worker description sf-blob runs (name "blob", its handlers, the tick). */
const sf_worker_t *sf_blob_worker(void);
