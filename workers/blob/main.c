/* sf-blob: this node's image downloads (intents on sf.intent.<node>.blob). */
#include "blob.h"
#include "log.h"
#include "worker.h"

static int setup(sf_ctx_t *ctx, sf_worker_t *w) {
        (void)w;
        log_info("node %s, blob store %s/blobs", ctx->cfg.node, ctx->cfg.storage);
        return 0;
}

int main(void) {
        sf_worker_t w = *sf_blob_worker();

        return sf_worker_main("sf-blob", &w, setup, NULL);
}
