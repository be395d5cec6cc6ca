/* sf-blob: this node's image downloads (intents on sf.intent.<node>.blob). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "blob.h"
#include "ctx.h"
#include "log.h"
#include "worker.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
        (void)sig;
        stop_flag = 1;
}

int main(void) {
        struct sigaction sa = {.sa_handler = on_signal};
        sf_ctx_t ctx;
        int r;

        sf_log_init("sf-blob");
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        r = sf_ctx_open(&ctx, true, 30);
        if (r < 0) {
                log_err("cannot start: %s", strerror(-r));
                return 1;
        }
        log_info("node %s, blob store %s/blobs", ctx.cfg.node, ctx.cfg.storage);
        r = sf_worker_run(&ctx, sf_blob_worker(), &stop_flag);
        sf_ctx_close(&ctx);
        return r < 0 ? 1 : 0;
}
