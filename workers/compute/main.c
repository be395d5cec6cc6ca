/* sf-compute: this node's hypervisor worker. */
#include "compute.h"
#include "handlers.h"

#include "log.h"
#include "util.h"
#include "virt.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int setup(sf_ctx_t *ctx, sf_worker_t *w) {
        sf_compute_t *cs = w->user;
        int r;

        r = sf_virt_detect_type(ctx->cfg.domain_type, cs->domain_type);
        if (r < 0) {
                log_err("cannot determine the domain type");
                return r;
        }
        log_info("domain type %s (configured %s)", cs->domain_type, ctx->cfg.domain_type);
        /* Before any connection: libvirt watches only connections opened after it. */
        r = sf_virt_events_init();
        if (r < 0)
                return r;
        /* libvirtd may still be starting with us (its first start probes QEMU for ~8 s). */
        for (int i = 0; (r = sf_virt_open(ctx->cfg.libvirt_uri, &cs->conn)) < 0 && i < 60; i++)
                sleep(1);
        if (r < 0) {
                log_err("cannot connect to libvirt at %s", ctx->cfg.libvirt_uri);
                return r;
        }
        if (sf_mkdir_p(ctx->cfg.storage, 0755) < 0)
                log_warn("cannot create %s", ctx->cfg.storage);
        r = sf_compute_heartbeat_start(cs);
        if (r < 0) {
                log_err("cannot start the heartbeat thread: %s", strerror(-r));
                sf_virt_close(cs->conn);
                cs->conn = NULL;
                return r;
        }
        /* Without it power_state misses changes made outside sf, but the rest works. */
        r = sf_compute_powerwatch_start(cs, ctx->bus);
        if (r < 0)
                log_err("cannot start the power watcher: %s", strerror(-r));
        /* Without wake-ups creates still converge, by re-checking every 500 ms. */
        r = sf_compute_wake_start(ctx, &cs->wake);
        if (r < 0)
                log_warn("no wake-ups (%s): waiting creates re-check by delay", strerror(-r));
        return 0;
}

static void teardown(sf_worker_t *w) {
        sf_compute_t *cs = w->user;

        sf_compute_powerwatch_stop(cs);
        sf_compute_wake_stop(cs->wake);
        cs->wake = NULL;
        sf_compute_heartbeat_stop(cs);
        sf_virt_close(cs->conn);
        cs->conn = NULL;
        sf_compute_virt_retired_free();
}

int main(void) {
        sf_compute_t cs = {0};
        sf_worker_t w = {.name = "compute", .handlers = sf_compute_handlers,
                         .nhandlers = sf_compute_nhandlers, .user = &cs, .tick = sf_compute_tick,
                         .tick_ms = 5000, .concurrency = 4};

        return sf_worker_main("sf-compute", &w, setup, teardown);
}
