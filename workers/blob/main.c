/* sf-blob: this node's image downloads (intents on sf.intent.<node>.blob), several at once
 * (SF_BLOB_CONCURRENCY) so that one slow image server delays nobody else. */
#include "blob.h"
#include "log.h"
#include "netpolicy.h"
#include "worker.h"

#include <errno.h>

static int setup(sf_ctx_t *ctx, sf_worker_t *w) {
        sf_netpolicy_t policy;

        /* A bad allow list is an operator error: refuse to start rather than fail every fetch. */
        if (sf_netpolicy_init(&policy, &ctx->cfg) < 0)
                return -EINVAL;
        w->concurrency = ctx->cfg.blob_concurrency;
        log_info("node %s, blob store %s/blobs, %d downloads at once, each at most %d s and %llu bytes",
                 ctx->cfg.node, ctx->cfg.storage, w->concurrency, ctx->cfg.download_timeout_s,
                 (unsigned long long)ctx->cfg.download_max_bytes);
        return 0;
}

int main(void) {
        sf_worker_t w = *sf_blob_worker();

        return sf_worker_main("sf-blob", &w, setup, NULL);
}
