/* sf-network: this node's network worker. */
#include "handlers.h"

#include "log.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(void) {
        sf_worker_t w = {.name = "network", .handlers = sf_network_handlers,
                         .nhandlers = sf_network_nhandlers, .tick = sf_network_tick, .tick_ms = 5000};
        struct sigaction sa = {.sa_handler = on_signal};
        sf_ctx_t ctx;
        int r;

        sf_log_init("sf-network");
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (sf_ctx_open(&ctx, true, 30) < 0)
                return 1;
        r = sf_worker_run(&ctx, &w, &stop);
        sf_ctx_close(&ctx);
        return r < 0 ? 1 : 0;
}
