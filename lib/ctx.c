#include "ctx.h"

#include "event.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int sf_ctx_open(sf_ctx_t *ctx, bool with_bus, int wait_s) {
        int64_t deadline = sf_mono_ms() + (int64_t)wait_s * 1000;
        int r;

        memset(ctx, 0, sizeof(*ctx));
        r = sf_config_load(&ctx->cfg);
        if (r < 0)
                return r;
        sf_store_set_password(ctx->cfg.redis_password);
        sf_event_retention_set(ctx->cfg.event_retention_s);
        for (;;) {
                if (!ctx->store)
                        r = sf_store_connect(ctx->cfg.redis_host, ctx->cfg.redis_port, &ctx->store);
                if (r == 0 && with_bus && !ctx->bus) {
                        r = sf_bus_connect(ctx->cfg.nats_url, ctx->cfg.nats_user,
                                           ctx->cfg.nats_password, &ctx->bus);
                        if (r == 0)
                                r = sf_bus_ensure_streams(ctx->bus);
                        if (r < 0) {
                                sf_bus_free(ctx->bus);
                                ctx->bus = NULL;
                        }
                }
                if (r == 0)
                        return 0;
                if (sf_mono_ms() >= deadline)
                        break;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 250 * 1000000L};
                nanosleep(&ts, NULL);
        }
        log_err("cannot reach %s (redis %s:%d, nats %s): %s", ctx->store ? "nats" : "redis",
                ctx->cfg.redis_host, ctx->cfg.redis_port, ctx->cfg.nats_url, strerror(-r));
        sf_ctx_close(ctx);
        return r;
}

void sf_ctx_close(sf_ctx_t *ctx) {
        sf_bus_free(ctx->bus);
        sf_store_free(ctx->store);
        ctx->bus = NULL;
        ctx->store = NULL;
}
