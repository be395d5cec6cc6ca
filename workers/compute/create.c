/* sf-compute: instance.create (api.md §7): wait for the other workers' steps (woken by
 * their events, wake.c), then initial -> preflight -> creating -> (build.c) -> created. */
#include "compute.h"

#include "crashpoint.h"
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

/* What a create waits for: objects of other workers' steps, by uuid (borrowed from the
 * instance document). */
typedef struct {
        const char *uuids[SF_MAX_NICS + SF_MAX_DISKS];
        size_t n;
        const char *what; /* for the message */
} waitlist_t;

/* Interfaces: one in error fails the create; those not created yet go on wl. */
static int interfaces_check(sf_work_t *w, json_object *inst, waitlist_t *wl) {
        json_object *ifaces;

        if (!json_object_object_get_ex(inst, "interfaces", &ifaces))
                return SF_WORK_DONE;
        for (size_t i = 0; i < json_object_array_length(ifaces) && wl->n < SF_ARRAY_SIZE(wl->uuids); i++) {
                _cleanup_json_ json_object *iface = NULL;
                const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i)), *st;
                if (sf_store_get(w->ctx->store, "networkinterface", iu, &iface, NULL) < 0)
                        return sf_work_error(w, "interface %s vanished", iu), SF_WORK_FAIL;
                st = sf_json_str(iface, "state") ?: "";
                if (strcmp(st, "error") == 0 || strcmp(st, "deleted") == 0)
                        return sf_work_error(w, "network interface %s is %s: %s", iu, st,
                                             sf_json_str(iface, "error_message") ?: ""),
                               SF_WORK_FAIL;
                if (strcmp(st, "created") != 0) {
                        wl->uuids[wl->n++] = iu;
                        wl->what = "network interface";
                }
        }
        return SF_WORK_DONE;
}

/* Images: a failed artifact fails the create; those without a blob here go on wl. */
static int artifacts_check(sf_work_t *w, json_object *inst, waitlist_t *wl) {
        json_object *arts;

        if (!json_object_object_get_ex(inst, "artifacts", &arts))
                return SF_WORK_DONE;
        for (size_t i = 0; i < json_object_array_length(arts) && wl->n < SF_ARRAY_SIZE(wl->uuids); i++) {
                const char *au = json_object_get_string(json_object_array_get_idx(arts, i));
                char blob[SF_UUID_LEN], err[256] = "";
                bool ready = false;
                if (!au || !*au)
                        continue;
                if (sf_compute_current_blob(w->ctx, au, blob, &ready, err, sizeof(err)) < 0)
                        return sf_work_error(w, "%s", err), SF_WORK_FAIL;
                if (!ready) {
                        wl->uuids[wl->n++] = au;
                        wl->what = "image";
                }
        }
        return SF_WORK_DONE;
}

/* Nothing on wl: SF_WORK_DONE.  Else the create waits: parked until an event names one of
 * them (wake.c), its message nak'd with the backstop delay, or at once if one already
 * changed since seq (read before the checks). */
static int wait_for(sf_work_t *w, json_object *inst, const waitlist_t *wl, uint64_t seq) {
        sf_compute_t *cs = w->user;
        int r;

        if (wl->n == 0)
                return SF_WORK_DONE;
        sf_work_error(w, "waiting for %s %s", wl->what, wl->uuids[0]);
        if (!cs->wake)
                return SF_WORK_WAIT; /* no wake-ups: the worker's short re-check delay */
        r = sf_compute_wake_park(cs->wake, sf_json_str(inst, "uuid"), sf_json_str(inst, "namespace"), wl->uuids,
                                 wl->n, seq);
        w->wait_ms = r == -EAGAIN ? 0 : r < 0 ? w->wait_ms : SF_COMPUTE_WAKE_BACKSTOP_MS;
        return SF_WORK_WAIT;
}

int sf_compute_await_interfaces(sf_work_t *w, json_object *inst) {
        sf_compute_t *cs = w->user;
        uint64_t seq = sf_compute_wake_seq(cs->wake);
        waitlist_t wl = {0};
        int res;

        res = interfaces_check(w, inst, &wl);
        if (res != SF_WORK_DONE)
                return res;
        return wait_for(w, inst, &wl, seq);
}

/* The states a create that failed passes through before `error` (api.md §4.3). */
static bool failing_state(const char *st) {
        return strcmp(st, "initial-error") == 0 || strcmp(st, "preflight-error") == 0 ||
               strcmp(st, "creating-error") == 0 || strcmp(st, "created-error") == 0;
}

/* The second half of a failure: remove what the instance holds here, then `error`.
 * Also what a re-run does for an instance left in <state>-error by a crash. */
static int create_finish_failure(sf_work_t *w, json_object *inst, sf_lock_t *lock) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = sf_json_str(inst, "uuid");
        sf_fence_t fence = sf_lock_fence(lock);
        int r;

        r = sf_compute_remove_local(w, inst, lock);
        if (r < 0)
                return r;
        sf_crashpoint("create-failed.removed");
        r = sf_obj_set_state(ctx, "instance", uuid, "error", NULL, &fence, NULL);
        if (r == 0)
                sf_crashpoint("create-failed.error");
        return r;
}

/* A re-run that finds the instance in <state>-error: a failure was being recorded when
 * the worker died.  Finish it. */
static int create_resume_failure(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        int r;

        r = sf_compute_lock_instance(ctx, uuid, 2000, &lock);
        if (r == -EBUSY)
                return sf_work_error(w, "instance is locked"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(w, "lock: %s", strerror(-r)), SF_WORK_RETRY;
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == 0 && failing_state(sf_json_str(inst, "state") ?: ""))
                r = create_finish_failure(w, inst, lock);
        sf_lock_release(ctx->store, lock);
        if (r == -ENOENT || r == -EINVAL || r == 0)
                return SF_WORK_DONE;
        if (r == -ENOLCK)
                return sf_work_error(w, "instance lock lost"), SF_WORK_WAIT;
        return w->error[0] ? SF_WORK_RETRY : (sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY);
}

int sf_compute_handle_create(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        sf_compute_t *cs = w->user;
        uint64_t seq = sf_compute_wake_seq(cs->wake); /* before anything is read */
        waitlist_t wl = {0};
        const char *st;
        double t0 = sf_now();
        int r, res;

        sf_compute_wake_unpark(cs->wake, uuid);
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        st = sf_json_str(inst, "state") ?: "";
        if (failing_state(st))
                return create_resume_failure(w);
        if (strcmp(st, "initial") != 0 && strcmp(st, "preflight") != 0 && strcmp(st, "creating") != 0)
                return SF_WORK_DONE; /* created already, or being deleted, or failed */
        /* The images must be here for the disks; the interfaces only for the start
         * (build.c waits for them there): disks and config drive are built meanwhile. */
        res = interfaces_check(w, inst, &wl);
        if (res != SF_WORK_DONE)
                return res;
        /* Built already (creating): a re-run before the interfaces are plugged would only
         * build the same files again; it waits for them too. */
        if (strcmp(st, "creating") != 0)
                wl.n = 0;
        res = artifacts_check(w, inst, &wl);
        if (res == SF_WORK_DONE)
                res = wait_for(w, inst, &wl, seq);
        if (res != SF_WORK_DONE)
                return res;
        res = sf_compute_virt_ready(w);
        if (res != SF_WORK_DONE)
                return res;

        r = sf_compute_lock_instance(ctx, uuid, 2000, &lock);
        if (r == -EBUSY)
                return sf_work_error(w, "instance is locked"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(w, "lock: %s", strerror(-r)), SF_WORK_RETRY;
        fence = sf_lock_fence(lock);
        /* Read again under the lock: a copy redelivered while another thread still built
         * (libvirt's start can outlast the ack wait) must see that build's result. */
        json_object_put(inst);
        inst = NULL;
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        st = r == 0 ? sf_json_str(inst, "state") ?: "" : "";
        if (r < 0 || (strcmp(st, "initial") != 0 && strcmp(st, "preflight") != 0 && strcmp(st, "creating") != 0)) {
                sf_lock_release(ctx->store, lock);
                if (r < 0 && r != -ENOENT)
                        return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
                return SF_WORK_DONE;
        }
        if (strcmp(st, "initial") == 0) {
                r = sf_obj_set_state(ctx, "instance", uuid, "preflight", NULL, &fence, NULL);
                st = "preflight";
                if (r == 0)
                        sf_crashpoint("create.preflight");
        }
        if (r == 0 && strcmp(st, "preflight") == 0) {
                r = sf_obj_set_state(ctx, "instance", uuid, "creating", NULL, &fence, NULL);
                if (r == 0)
                        sf_crashpoint("create.creating");
        }
        if (r < 0) {
                sf_lock_release(ctx->store, lock);
                /* -EINVAL: somebody moved it (a delete): nothing left for us.  -ENOLCK: a
                 * newer holder has it; run again later, the record will say. */
                if (r == -EINVAL)
                        return SF_WORK_DONE;
                if (r == -ENOLCK)
                        return sf_work_error(w, "instance lock lost"), SF_WORK_WAIT;
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        }
        sf_work_progress(w);
        res = sf_compute_build(w, inst, lock);
        if (res == SF_WORK_DONE) {
                r = sf_obj_set_state(ctx, "instance", uuid, "created", NULL, &fence, NULL);
                if (r == -ENOLCK)
                        res = (sf_work_error(w, "instance lock lost"), SF_WORK_WAIT);
                else if (r < 0 && r != -EINVAL)
                        res = (sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY);
                else {
                        sf_crashpoint("create.created");
                        sf_event_emit(ctx, "instance", uuid, sf_json_str(inst, "namespace"), "status",
                                      "instance started", NULL, sf_now() - t0);
                }
        }
        sf_lock_release(ctx->store, lock);
        return res;
}

/* A create that cannot succeed: <state>-error with the message, then clean up and
 * leave it listed as error until the user deletes it (api.md §4.3).  Under the
 * instance lock and fenced like the handlers: a paused process that wakes up after
 * a newer holder (a delete) took over must not write over its result.  If the lock
 * cannot be had, whoever holds it decides; the instance keeps its state and the
 * reconciler's stuck re-drive tries again.  A failure already half recorded (a crash
 * after <state>-error) is finished, not recorded twice. */
void sf_compute_create_failed(sf_work_t *w, const char *msg) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        const char *st;
        char to[48];
        int r;

        r = sf_compute_lock_instance(ctx, uuid, 5000, &lock);
        if (r < 0) {
                log_warn("instance %s: cannot lock to record its failure (%s): %s", uuid, strerror(-r), msg);
                return;
        }
        fence = sf_lock_fence(lock);
        if (sf_store_get(ctx->store, "instance", uuid, &inst, NULL) < 0)
                goto cleanup;
        st = sf_json_str(inst, "state") ?: "initial";
        if (!failing_state(st)) {
                snprintf(to, sizeof(to), "%s-error", st);
                if (!sf_state_ok("instance", st, to))
                        goto cleanup;
                if (sf_obj_set_state(ctx, "instance", uuid, to, msg, &fence, NULL) < 0)
                        goto cleanup;
                sf_crashpoint("create-failed.error-state");
        }
        w->error[0] = 0;
        create_finish_failure(w, inst, lock);
cleanup:
        sf_lock_release(ctx->store, lock);
}
