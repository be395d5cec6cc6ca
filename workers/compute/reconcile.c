/* sf-compute: the reconciler, run from the worker tick. */
#include "compute.h"
#include "domain.h"

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
#include <dirent.h>
#include <unistd.h>

/* ---- reconciliation ----
 * Every removal below acts only on certainty: a record that a successful read found
 * absent (-ENOENT) or `deleted`.  A Redis error, timeout, LOADING reply or corrupt
 * document, and any libvirt error, mean "don't know": touch nothing and end the pass
 * (the next one, SF_RECONCILE_INTERVAL later, looks again). */

/* 0 and *ret_gone set when the answer is certain; the read's error otherwise. */
static int instance_gone(sf_ctx_t *ctx, const char *uuid, bool *ret_gone) {
        _cleanup_json_ json_object *inst = NULL;
        int r;

        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT) {
                *ret_gone = true;
                return 0;
        }
        if (r < 0)
                return r;
        *ret_gone = strcmp(sf_json_str(inst, "state") ?: "", "deleted") == 0;
        return 0;
}

/* Domains of this node whose instance is gone (a crash between undefine and the state
 * write is covered by the delete intent; this catches records that vanished). */
static int reconcile_domains(sf_ctx_t *ctx, sf_compute_t *cs) {
        char **uuids = NULL;
        size_t n = 0;
        int r;

        r = sf_virt_list_sf(cs->conn, ctx->cfg.node, &uuids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char name[64];
                bool gone = false;

                r = instance_gone(ctx, uuids[i], &gone);
                if (r < 0) {
                        log_warn("reconciler: cannot read instance %s (%s); leaving every domain alone this pass",
                                 uuids[i], strerror(-r));
                        break;
                }
                if (!gone)
                        continue;
                sf_domain_name(uuids[i], name);
                log_warn("reconciler: removing leaked domain %s", name);
                sf_virt_destroy_undefine(cs->conn, name);
        }
        sf_virt_strv_free(uuids, n);
        return r;
}

/* Instance directories (disks, config drive, console) that nobody owns any more: the
 * instance is gone and libvirt says for certain there is no domain using them. */
static int reconcile_instance_dirs(sf_ctx_t *ctx, sf_compute_t *cs) {
        char dir[4096];
        struct dirent *e;
        DIR *d;
        int r = 0;

        snprintf(dir, sizeof(dir), "%s/instances", ctx->cfg.storage);
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((e = readdir(d))) {
                char path[4400], name[64];
                bool gone = false;
                int st = 0;

                if (!sf_uuid_parse(e->d_name, NULL))
                        continue;
                r = instance_gone(ctx, e->d_name, &gone);
                if (r < 0) {
                        log_warn("reconciler: cannot read instance %s (%s); leaving instance files alone this pass",
                                 e->d_name, strerror(-r));
                        break;
                }
                if (!gone)
                        continue;
                sf_domain_name(e->d_name, name);
                r = sf_virt_state(cs->conn, name, &st);
                if (r != -ENOENT) {
                        r = 0; /* a domain still uses it (the domain pass goes first), or libvirt is unsure */
                        continue;
                }
                r = 0;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                log_warn("reconciler: removing leaked instance files %s", path);
                sf_rm_rf(path);
        }
        closedir(d);
        return r;
}

/* The intent that moves an instance on from a state no user action leaves it in: a
 * create in progress, a failure half recorded (the create handler finishes it), a
 * delete in progress.  NULL for the states that stay (created, error, deleted, and
 * delete-wait-error, which waits for the user's next delete as upstream). */
static const char *stuck_intent(const char *st) {
        static const char *const create[] = {"initial",         "preflight",      "creating",      "initial-error",
                                             "preflight-error", "creating-error", "created-error"};

        for (size_t i = 0; i < SF_ARRAY_SIZE(create); i++)
                if (strcmp(st, create[i]) == 0)
                        return "instance.create";
        return strcmp(st, "delete-wait") == 0 ? "instance.delete" : NULL;
}

/* Instances stuck in a transitional state for min_age_s get a fresh intent (e.g. the API
 * died between writing the record and recording its intent, or a worker died after its
 * intent was finished).  An intent still pending is published again instead (one live
 * copy), so this may run for every such instance at start (min_age_s 0). */
static int reconcile_stuck(sf_ctx_t *ctx, int min_age_s) {
        char **insts = NULL;
        int r;

        r = sf_store_index(ctx->store, "instance", "node", ctx->cfg.node, &insts, NULL);
        if (r < 0)
                return r;
        for (char **p = insts; *p; p++) {
                _cleanup_json_ json_object *inst = NULL;
                const char *st, *kind;
                double age;

                r = sf_store_get(ctx->store, "instance", *p, &inst, NULL);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        break;
                st = sf_json_str(inst, "state") ?: "";
                age = sf_now() - json_object_get_double(json_object_object_get(inst, "state_updated"));
                if (age < min_age_s || strcmp(sf_json_str(inst, "node") ?: "", ctx->cfg.node) != 0)
                        continue;
                kind = stuck_intent(st);
                if (!kind)
                        continue;
                log_info("reconciler: instance %s is %s; submitting %s", *p, st, kind);
                sf_intent_submit(ctx, ctx->cfg.node, "compute", kind, "instance", *p, sf_json_str(inst, "namespace"),
                                 NULL, NULL);
        }
        sf_strv_free(insts);
        return r < 0 ? r : 0;
}

/* Half-written image transcodes (image_cache/<blob>.qcow2.partial) of a run killed
 * mid-convert.  Only at start, before this process runs any handler: later, a partial
 * file may be a convert in progress. */
static void reconcile_image_partials(sf_ctx_t *ctx) {
        char dir[4096];
        struct dirent *e;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/image_cache", ctx->cfg.storage);
        d = opendir(dir);
        if (!d)
                return;
        while ((e = readdir(d))) {
                size_t n = strlen(e->d_name);
                char path[4400];

                if (n < 9 || strcmp(e->d_name + n - 8, ".partial") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                log_warn("reconciler: removing half-written image %s", path);
                unlink(path);
        }
        closedir(d);
}

/* This node's pass: leaked domains, leaked files, stuck instances (each step only if
 * the one before was sure), then the intent re-drive.  The first pass runs at start,
 * before any intent is taken: then every instance of this node in a transitional state
 * is driven on at once (nothing of ours can be working on it), not only after
 * SF_STUCK_AFTER. */
static void reconcile_node(sf_ctx_t *ctx, sf_compute_t *cs, bool at_start) {
        if (at_start)
                reconcile_image_partials(ctx);
        if (sf_compute_virt_reconnect(ctx->cfg.libvirt_uri, cs) == 0 && reconcile_domains(ctx, cs) == 0 &&
            reconcile_instance_dirs(ctx, cs) == 0)
                reconcile_stuck(ctx, at_start ? 0 : ctx->cfg.stuck_after_s);
        sf_intent_redrive(ctx, ctx->cfg.node, "compute", ctx->cfg.redrive_after_s, NULL);
}

/* Instances the API recorded but never placed (it died mid-create): once a minute,
 * cluster-wide (whoever takes the lock; it is left to expire), they go to error and
 * give their addresses back, so nothing waits for ever in "initial". */
static void reconcile_unplaced(sf_ctx_t *ctx) {
        char holder[96], **all = NULL;
        sf_lock_t *lock = NULL;

        sf_lock_holder(ctx->cfg.node, holder, sizeof(holder));
        if (sf_lock_acquire(ctx->store, "reconcile/unplaced", holder, 60000, 0, false, &lock) < 0)
                return;
        if (sf_store_index(ctx->store, "instance", "all", NULL, &all, NULL) == 0) {
                for (char **p = all; *p; p++) {
                        _cleanup_json_ json_object *inst = NULL;
                        json_object *ifaces = NULL;
                        const char *node;
                        int r = sf_store_get(ctx->store, "instance", *p, &inst, NULL);

                        if (r < 0 && r != -ENOENT)
                                break; /* Redis unsure: end the scan, touch nothing */
                        if (r < 0 || strcmp(sf_json_str(inst, "state") ?: "", "initial") != 0)
                                continue;
                        node = sf_json_str(inst, "node");
                        if ((node && *node) ||
                            sf_now() - json_object_get_double(json_object_object_get(inst, "state_updated")) < 300)
                                continue;
                        log_warn("reconciler: instance %s was never placed; marking it error", *p);
                        json_object_object_get_ex(inst, "interfaces", &ifaces);
                        for (size_t i = 0; ifaces && i < json_object_array_length(ifaces); i++)
                                sf_obj_release_interface(ctx, json_object_get_string(json_object_array_get_idx(ifaces, i)),
                                                         NULL);
                        sf_obj_set_state(ctx, "instance", *p, "initial-error",
                                         "creation was interrupted before the instance was placed", NULL, NULL);
                        sf_obj_set_state(ctx, "instance", *p, "error", NULL, NULL, NULL);
                }
                sf_strv_free(all);
        }
        /* Upstream's CLEANER_DELAY: deleted records go for good after a while. */
        {
                int n = 0;
                if (sf_obj_purge_deleted(ctx, ctx->cfg.cleaner_delay_s, &n) == 0 && n > 0)
                        log_info("cleaner: hard-deleted %d record(s) deleted more than %d s ago", n,
                                 ctx->cfg.cleaner_delay_s);
        }
        /* Not released: the TTL spaces the scans out across the cluster. */
        sf_lock_release(NULL, lock);
}

void sf_compute_tick(sf_ctx_t *ctx, void *user) {
        sf_compute_t *cs = user;

        if (sf_mono_ms() >= cs->next_reconcile_ms) {
                bool at_start = cs->next_reconcile_ms == 0;

                if (at_start)
                        log_info("reconciler: start-up pass");
                reconcile_node(ctx, cs, at_start);
                reconcile_unplaced(ctx);
                cs->next_reconcile_ms = sf_mono_ms() + (int64_t)ctx->cfg.reconcile_interval_s * 1000;
        }
}
