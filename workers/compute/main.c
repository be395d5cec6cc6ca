/* sf-compute: this node's hypervisor worker. */
#include "handlers.h"

#include "log.h"
#include "util.h"
#include "virt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(void) {
        sf_compute_t cs = {0};
        sf_worker_t w = {.name = "compute", .handlers = sf_compute_handlers,
                         .nhandlers = sf_compute_nhandlers, .user = &cs, .tick = sf_compute_tick,
                         .tick_ms = 5000};
        struct sigaction sa = {.sa_handler = on_signal};
        sf_ctx_t ctx;
        int r;

        sf_log_init("sf-compute");
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (sf_ctx_open(&ctx, true, 30) < 0)
                return 1;
        r = sf_virt_detect_type(ctx.cfg.domain_type, cs.domain_type);
        if (r < 0) {
                log_err("cannot determine the domain type");
                return 1;
        }
        log_info("domain type %s (configured %s)", cs.domain_type, ctx.cfg.domain_type);
        for (int i = 0; (r = sf_virt_open(ctx.cfg.libvirt_uri, &cs.conn)) < 0 && i < 60 && !stop; i++)
                sleep(1);
        if (r < 0) {
                log_err("cannot connect to libvirt at %s", ctx.cfg.libvirt_uri);
                return 1;
        }
        if (sf_mkdir_p(ctx.cfg.storage, 0755) < 0)
                log_warn("cannot create %s", ctx.cfg.storage);
        r = sf_worker_run(&ctx, &w, &stop);
        sf_virt_close(cs.conn);
        sf_ctx_close(&ctx);
        return r < 0 ? 1 : 0;
}
