/* sf-compute intent handlers, heartbeat and reconciliation. */
#pragma once
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdbool.h>

#include "worker.h"

typedef struct sf_compute_wake sf_compute_wake_t;

typedef struct sf_compute {
        virConnectPtr conn;
        sf_compute_wake_t *wake; /* wake-ups of parked creates (wake.c); NULL: none */
        char domain_type[8]; /* detected once: kvm or qemu */
        int64_t next_reconcile_ms;
        /* the heartbeat thread (sf_compute_heartbeat_start) */
        pthread_t hb_thread;
        pthread_mutex_t hb_mutex;
        pthread_cond_t hb_cond;
        bool hb_stop, hb_running;
        struct sf_compute_powerwatch *powerwatch; /* power.c: lifecycle events */
} sf_compute_t;

extern const sf_handler_t sf_compute_handlers[];
extern const size_t sf_compute_nhandlers;
/* The worker tick: the reconciler pass, every SF_RECONCILE_INTERVAL seconds. */
void sf_compute_tick(sf_ctx_t *ctx, void *user);
/* Start the node heartbeat (lastseen and metrics every 5 s) on its own thread with its
 * own Redis connection, so it never waits behind a handler.  cs->domain_type must be set
 * and stay unchanged while it runs.  Returns 0 or a negative errno. */
int sf_compute_heartbeat_start(sf_compute_t *cs);
/* Stop and join it; a no-op if it is not running. */
void sf_compute_heartbeat_stop(sf_compute_t *cs);
