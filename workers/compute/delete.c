/* sf-compute: instance.delete (api.md §7 step 7). */
#include "compute.h"
#include "domain.h"

#include "crashpoint.h"
#include "event.h"
#include "intent.h"
#include "ipam.h"
#include "lock.h"
#include "log.h"
#include "object.h"
#include "ports.h"
#include "sflimits.h"
#include "state.h"
#include "store.h"
#include "util.h"
#include "virt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Is the instance lock still ours, right before a side effect?  -ENOLCK (logged) if not. */
static int remove_lock_check(sf_work_t *w, sf_lock_t *lock, const char *uuid) {
        int r = sf_lock_check(w->ctx->store, lock);

        if (r == -ENOLCK)
                log_warn("instance %s: lock lost mid-teardown; stopping, the new holder decides", uuid);
        else if (r < 0)
                sf_work_error(w, "lock check: %s", strerror(-r));
        return r;
}

/* Remove everything the instance holds on this node and in IPAM: domain, instance
 * directory, addresses and MACs, each step only while the lock is ours.  Idempotent:
 * each step treats "already gone" as done, so a teardown interrupted half-way finishes
 * when it runs again. */
int sf_compute_remove_local(sf_work_t *w, json_object *inst, sf_lock_t *lock) {
        sf_ctx_t *ctx = w->ctx;
        sf_compute_t *cs = w->user;
        const char *uuid = sf_json_str(inst, "uuid");
        char name[64], dir[4096];
        json_object *ifaces;
        int r;

        if (sf_compute_virt_ready(w) != SF_WORK_DONE)
                return -EIO;
        if ((r = remove_lock_check(w, lock, uuid)) < 0)
                return r;
        sf_domain_name(uuid, name);
        r = sf_virt_destroy_undefine(cs->conn, name);
        if (r < 0)
                return sf_work_error(w, "libvirt could not remove the domain: %s", strerror(-r)), -EIO;
        sf_crashpoint("remove.domain");
        if ((r = remove_lock_check(w, lock, uuid)) < 0)
                return r;
        sf_compute_instance_dir(ctx, uuid, dir, sizeof(dir));
        r = sf_rm_rf(dir);
        if (r < 0)
                return sf_work_error(w, "cannot remove %s: %s", dir, strerror(-r)), -EIO;
        sf_crashpoint("remove.files");
        if (sf_ports_release_instance(ctx->store, ctx->cfg.node, inst) < 0)
                return sf_work_error(w, "cannot release console ports"), -EIO;
        sf_crashpoint("remove.ports");
        if (json_object_object_get_ex(inst, "interfaces", &ifaces)) {
                for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                        _cleanup_json_ json_object *net = NULL;
                        const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));
                        char nu[SF_UUID_LEN];

                        if ((r = remove_lock_check(w, lock, uuid)) < 0)
                                return r;
                        if (!iu || sf_obj_release_interface(ctx, iu, nu) < 0)
                                return sf_work_error(w, "cannot release interface %s", iu ? iu : "?"), -EIO;
                        sf_crashpoint("remove.interface");
                        /* The network node drops the DHCP host entry. */
                        if (nu[0] && sf_store_get(ctx->store, "network", nu, &net, NULL) == 0)
                                sf_intent_submit(ctx, sf_json_str(net, "node") ?: ctx->cfg.network_node, "network",
                                                 "network.refresh", "network", nu, sf_json_str(net, "namespace"),
                                                 NULL, NULL);
                        sf_crashpoint("remove.network-refresh");
                }
        }
        return 0;
}

/* A user's delete, from any state (api.md §4.3): -> delete-wait -> deleted.  A delete
 * that failed before (delete-wait-error) goes through error first, the only way out of
 * delete-wait-error upstream allows; the teardown then finishes what is left. */
int sf_compute_handle_delete(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        int r;

        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        if (strcmp(sf_json_str(inst, "state") ?: "", "deleted") == 0)
                return SF_WORK_DONE;
        r = sf_compute_lock_instance(ctx, uuid, 5000, &lock);
        if (r == -EBUSY)
                return sf_work_error(w, "instance is locked"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(w, "lock: %s", strerror(-r)), SF_WORK_RETRY;
        fence = sf_lock_fence(lock);
        r = 0;
        if (strcmp(sf_json_str(inst, "state") ?: "", "delete-wait-error") == 0) {
                r = sf_obj_set_state(ctx, "instance", uuid, "error", NULL, &fence, NULL);
                if (r == 0)
                        sf_crashpoint("delete.error");
        }
        if (r == 0) {
                r = sf_obj_set_state(ctx, "instance", uuid, "delete-wait", NULL, &fence, NULL);
                if (r == 0)
                        sf_crashpoint("delete.delete-wait");
        }
        if (r == 0)
                r = sf_compute_remove_local(w, inst, lock);
        if (r == 0) {
                _cleanup_json_ json_object *off = json_object_new_string("off");
                /* Best effort, as before, except that a lost lock stops here too. */
                if (sf_obj_set_field(ctx, "instance", uuid, "power_state", json_object_get(off), &fence) == -ENOLCK)
                        r = -ENOLCK;
                else
                        sf_crashpoint("delete.power-off");
        }
        if (r == 0) {
                r = sf_obj_set_state(ctx, "instance", uuid, "deleted", NULL, &fence, NULL);
                if (r == 0)
                        sf_crashpoint("delete.deleted");
        }
        sf_lock_release(ctx->store, lock);
        if (r == -EINVAL)
                return SF_WORK_DONE; /* somebody else finished it */
        if (r == -ENOLCK)
                return sf_work_error(w, "instance lock lost"), SF_WORK_WAIT; /* the record will say */
        if (r < 0)
                return w->error[0] ? SF_WORK_RETRY : (sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY);
        return SF_WORK_DONE;
}

/* A delete that cannot finish: delete-wait-error, fenced as above.  Asking again
 * (DELETE) goes error -> delete-wait and re-runs the idempotent teardown. */
void sf_compute_delete_failed(sf_work_t *w, const char *msg) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        int r;

        r = sf_compute_lock_instance(ctx, uuid, 5000, &lock);
        if (r < 0) {
                log_warn("instance %s: cannot lock to record its failed delete (%s): %s", uuid, strerror(-r), msg);
                return;
        }
        fence = sf_lock_fence(lock);
        sf_obj_set_state(ctx, "instance", uuid, "delete-wait-error", msg, &fence, NULL);
        sf_lock_release(ctx->store, lock);
}
