/* What every sf process holds: its configuration, a Redis connection and the bus. */
#pragma once
#include <stdbool.h>

#include "bus.h"
#include "config.h"
#include "store.h"

typedef struct sf_ctx {
        sf_config_t cfg;
        sf_store_t *store; /* this thread's connection */
        sf_bus_t *bus;     /* thread-safe; may be NULL in tools that only read */
} sf_ctx_t;

/* Load config, connect to Redis and (with_bus) to NATS, ensuring the streams.
 * Waits up to wait_s for the daemons to answer (they may be starting with us). */
int sf_ctx_open(sf_ctx_t *ctx, bool with_bus, int wait_s);
void sf_ctx_close(sf_ctx_t *ctx);
