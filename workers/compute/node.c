/* sf-compute: the node heartbeat (lastseen and metrics). */
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
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_INTERVAL_MS 5000

static int apply_heartbeat(json_object *doc, void *ud) {
        json_object *fresh = ud;

        json_object_object_foreach(fresh, k, v) json_object_object_add(doc, k, json_object_get(v));
        return 0;
}

/* Writes this node's record: lastseen and metrics.  Runs on the heartbeat thread with
 * that thread's own context. */
static void heartbeat_write(sf_ctx_t *ctx, const sf_compute_t *cs) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *m = json_object_new_object(), *after = NULL;
        static bool warned_deleted;
        struct sysinfo si;
        struct statvfs vfs;
        char **insts = NULL;
        size_t ninst = 0;
        int r;

        json_object_object_add(doc, "uuid", json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "name", json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "ip", json_object_new_string(ctx->cfg.mesh_ip));
        json_object_object_add(doc, "lastseen", json_object_new_int64((int64_t)sf_now()));
        json_object_object_add(doc, "is_hypervisor", json_object_new_boolean(true));
        json_object_object_add(doc, "is_network_node",
                               json_object_new_boolean(strcmp(ctx->cfg.node, ctx->cfg.network_node) == 0));
        json_object_object_add(doc, "domain_type", json_object_new_string(cs->domain_type));
        if (sysinfo(&si) == 0) {
                FILE *f = fopen("/proc/meminfo", "re");
                char line[256];
                long long avail_kb = -1;
                while (f && fgets(line, sizeof(line), f))
                        if (sscanf(line, "MemAvailable: %lld kB", &avail_kb) == 1)
                                break;
                if (f)
                        fclose(f);
                json_object_object_add(m, "memory_max",
                                       json_object_new_int64((int64_t)si.totalram * si.mem_unit / 1048576));
                json_object_object_add(m, "memory_available", json_object_new_int64(avail_kb >= 0 ? avail_kb / 1024 : 0));
        }
        json_object_object_add(m, "cpu_max", json_object_new_int64(sysconf(_SC_NPROCESSORS_ONLN)));
        if (statvfs(ctx->cfg.storage, &vfs) == 0)
                json_object_object_add(m, "disk_free_instances",
                                       json_object_new_int64((int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize));
        if (sf_store_index(ctx->store, "instance", "node", ctx->cfg.node, &insts, &ninst) == 0)
                sf_strv_free(insts);
        json_object_object_add(m, "instances", json_object_new_int64((int64_t)ninst));
        json_object_object_add(doc, "metrics", json_object_get(m));
        r = sf_store_update(ctx->store, "node", ctx->cfg.node, NULL, apply_heartbeat, doc, &after);
        /* A deleted node stays deleted (docs/architecture.md "Node delete"): its lastseen
         * still moves, so the operator sees it is alive, but it gets no new instances. */
        if (r == 0 && strcmp(sf_json_str(after, "state") ?: "", "deleted") == 0 && !warned_deleted) {
                log_warn("node %s is deleted: it gets no new instances (re-add it under a new SF_NODE name)",
                         ctx->cfg.node);
                warned_deleted = true;
        }
        if (r == -ENOENT) {
                json_object_object_add(doc, "state", json_object_new_string("created"));
                json_object_object_add(doc, "metadata", json_object_new_object());
                sf_obj_create(ctx, "node", ctx->cfg.node, doc);
        }
}

/* The heartbeat has its own thread and Redis connection (hiredis is not thread-safe),
 * so a handler that takes ten minutes (an image conversion) never makes the node look
 * dead to the scheduler (NODE_LIVE_S, 120 s). */
static void *heartbeat_main(void *arg) {
        sf_compute_t *cs = arg;
        sf_ctx_t ctx = {0};
        bool open = false;

        pthread_mutex_lock(&cs->hb_mutex);
        while (!cs->hb_stop) {
                struct timespec until;

                pthread_mutex_unlock(&cs->hb_mutex);
                if (!open)
                        open = sf_ctx_open(&ctx, false, 0) == 0;
                if (open)
                        heartbeat_write(&ctx, cs);
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += HEARTBEAT_INTERVAL_MS / 1000;
                pthread_mutex_lock(&cs->hb_mutex);
                while (!cs->hb_stop && pthread_cond_timedwait(&cs->hb_cond, &cs->hb_mutex, &until) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&cs->hb_mutex);
        if (open)
                sf_ctx_close(&ctx);
        return NULL;
}

int sf_compute_heartbeat_start(sf_compute_t *cs) {
        pthread_condattr_t ca;
        int r;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cs->hb_cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&cs->hb_mutex, NULL);
        cs->hb_stop = false;
        r = pthread_create(&cs->hb_thread, NULL, heartbeat_main, cs);
        if (r != 0) {
                pthread_cond_destroy(&cs->hb_cond);
                pthread_mutex_destroy(&cs->hb_mutex);
                return -r;
        }
        cs->hb_running = true;
        return 0;
}

void sf_compute_heartbeat_stop(sf_compute_t *cs) {
        if (!cs || !cs->hb_running)
                return;
        pthread_mutex_lock(&cs->hb_mutex);
        cs->hb_stop = true;
        pthread_cond_signal(&cs->hb_cond);
        pthread_mutex_unlock(&cs->hb_mutex);
        pthread_join(cs->hb_thread, NULL);
        pthread_cond_destroy(&cs->hb_cond);
        pthread_mutex_destroy(&cs->hb_mutex);
        cs->hb_running = false;
}
