/* sf-compute: converge instances placed on this node (api.md §7 steps 3-7).
 *   instance.create  wait for interfaces and images, build disks + config drive, define
 *                    and start the domain: initial -> preflight -> creating -> created
 *                    (create.c: the handler; build.c: the build steps)
 *   instance.delete  destroy the domain, remove its files, release its addresses (delete.c)
 *   instance.power, instance.consoleclear, instance.screenshot  (power.c)
 * The node heartbeat is node.c, the reconciler reconcile.c.
 * Every step re-reads Redis and checks what already exists, so a redelivery after a
 * kill -9 at any line converges instead of doubling anything. */
#include "compute.h"

#include "event.h"
#include "intent.h"
#include "ipam.h"
#include "lock.h"
#include "log.h"
#include "object.h"
#include "sflimits.h"
#include "state.h"
#include "store.h"
#include "util.h"
#include "virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

void sf_compute_instance_dir(sf_ctx_t *ctx, const char *uuid, char *out, size_t len) {
        snprintf(out, len, "%s/instances/%s", ctx->cfg.storage, uuid);
}

void sf_compute_blob_path(sf_ctx_t *ctx, const char *uuid, char *out, size_t len) {
        snprintf(out, len, "%s/blobs/%.2s/%s", ctx->cfg.storage, uuid, uuid);
}

/* The per-instance lock; one left by a dead sf-compute of this node is broken at once
 * (fencing keeps that safe) rather than waited out. */
int sf_compute_lock_instance(sf_ctx_t *ctx, const char *uuid, int wait_ms, sf_lock_t **ret) {
        char name[64];

        snprintf(name, sizeof(name), "instance/%s", uuid);
        return sf_lock_acquire_worker(ctx->store, name, ctx->cfg.node, ctx->cfg.lock_ttl_ms, wait_ms, ret);
}

/* Handler threads share cs->conn (libvirt connections are thread-safe).  A reconnect
 * replaces it under a mutex and keeps the dead one open (retired) until teardown: a
 * thread may still be in a call on it, and closing would free it under that call. */
static pthread_mutex_t virt_mu = PTHREAD_MUTEX_INITIALIZER;
static virConnectPtr retired[16];
static size_t nretired;

int sf_compute_virt_reconnect(const char *uri, sf_compute_t *cs) {
        unsigned long ver = 0;
        virConnectPtr fresh = NULL;
        int r = 0;

        pthread_mutex_lock(&virt_mu);
        /* IsAlive alone misses a restart while we were idle (no event loop watches the
         * socket); one cheap round trip finds it. */
        if (cs->conn && virConnectIsAlive(cs->conn) == 1 && virConnectGetLibVersion(cs->conn, &ver) == 0)
                goto cleanup;
        if (cs->conn)
                log_warn("libvirt: connection lost; reconnecting");
        r = sf_virt_open(uri, &fresh);
        if (r < 0)
                goto cleanup;
        if (cs->conn) {
                if (nretired == SF_ARRAY_SIZE(retired)) {
                        sf_virt_close(retired[0]); /* long unused: a restart ago */
                        memmove(retired, retired + 1, sizeof(retired[0]) * --nretired);
                }
                retired[nretired++] = cs->conn;
        }
        __atomic_store_n(&cs->conn, fresh, __ATOMIC_RELEASE);
cleanup:
        pthread_mutex_unlock(&virt_mu);
        return r;
}

void sf_compute_virt_retired_free(void) {
        pthread_mutex_lock(&virt_mu);
        while (nretired > 0)
                sf_virt_close(retired[--nretired]);
        pthread_mutex_unlock(&virt_mu);
}

/* libvirtd may have restarted under us: reconnect before using the connection, so no
 * handler needs an sf-compute restart to work again.  Returns SF_WORK_DONE when usable. */
int sf_compute_virt_ready(sf_work_t *w) {
        int r = sf_compute_virt_reconnect(w->ctx->cfg.libvirt_uri, w->user);

        if (r < 0)
                return sf_work_error(w, "libvirt is unreachable: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

const sf_handler_t sf_compute_handlers[] = {
        {.kind = "instance.create", .fn = sf_compute_handle_create, .on_fail = sf_compute_create_failed, .deadline_s = 1800},
        {.kind = "instance.delete", .fn = sf_compute_handle_delete, .on_fail = sf_compute_delete_failed},
        /* No on_fail: a refused or failed power operation leaves the instance as it is. */
        {.kind = "instance.power", .fn = sf_compute_handle_power, .deadline_s = 60},
        {.kind = "instance.consoleclear", .fn = sf_compute_handle_console_clear, .deadline_s = 60},
        {.kind = "instance.screenshot", .fn = sf_compute_handle_screenshot, .deadline_s = 60},
};
const size_t sf_compute_nhandlers = SF_ARRAY_SIZE(sf_compute_handlers);
