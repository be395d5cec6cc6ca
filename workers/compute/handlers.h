/* sf-compute intent handlers, heartbeat and reconciliation. */
#pragma once
#include <libvirt/libvirt.h>

#include "worker.h"

typedef struct sf_compute {
        virConnectPtr conn;
        char domain_type[8]; /* detected once: kvm or qemu */
        int64_t next_reconcile_ms;
} sf_compute_t;

extern const sf_handler_t sf_compute_handlers[];
extern const size_t sf_compute_nhandlers;
void sf_compute_tick(sf_ctx_t *ctx, void *user);
