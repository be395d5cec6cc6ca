/* sf-compute: power operations and consoles of this node's instances (api.md §2.3).
 *   instance.power         arg op = poweron|poweroff|rebootsoft|reboothard|pause|unpause
 *   instance.consoleclear  truncate the console log
 *   instance.screenshot    arg blob = uuid of the blob to write
 * and the power watcher: libvirt lifecycle events (a guest that powers itself off, a
 * virsh command) move power_state, so it follows changes made outside sf without polling.
 *
 * Every handler runs under the instance lock and writes fenced, so a power operation
 * never interleaves with a create or a delete.  Each is idempotent: a redelivered
 * poweroff of a domain that is off already changes nothing. */
#include "compute.h"
#include "domain.h"

#include "blobfile.h"
#include "crashpoint.h"
#include "event.h"
#include "intent.h"
#include "keys.h"
#include "lock.h"
#include "log.h"
#include "object.h"
#include "store.h"
#include "util.h"
#include "virt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The instance of this node named by the intent, under its lock, in state created.
 * SF_WORK_DONE with *ret_inst and *ret_lock set, else the handler's result. */
static int power_lock_created(sf_work_t *w, json_object **ret_inst, sf_lock_t **ret_lock) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        const char *st;
        int r, res;

        res = sf_compute_virt_ready(w);
        if (res != SF_WORK_DONE)
                return res;
        r = sf_compute_lock_instance(ctx, uuid, 2000, &lock);
        if (r == -EBUSY)
                return sf_work_error(w, "instance is locked"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(w, "lock: %s", strerror(-r)), SF_WORK_RETRY;
        /* Read under the lock: a delete that got it first has moved the state on. */
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r < 0) {
                sf_lock_release(ctx->store, lock);
                if (r == -ENOENT)
                        return sf_work_error(w, "instance not found"), SF_WORK_FAIL;
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        }
        st = sf_json_str(inst, "state") ?: "";
        if (strcmp(st, "created") != 0) {
                sf_work_error(w, "instance %s is not ready (%s)", uuid, st);
                sf_lock_release(ctx->store, lock);
                return SF_WORK_FAIL;
        }
        *ret_inst = inst;
        inst = NULL;
        *ret_lock = lock;
        return SF_WORK_DONE;
}

/* power_state from libvirt's view of the domain, written only when it changed (a
 * "set attribute" event then tells the live stream).  A domain that is not there is
 * "off": it cannot be running. */
static int power_record(sf_ctx_t *ctx, virConnectPtr conn, json_object *inst, const sf_fence_t *fence,
                        const char **ret_power) {
        const char *uuid = sf_json_str(inst, "uuid"), *power;
        char name[64];
        int r, state = VIR_DOMAIN_SHUTOFF;

        sf_domain_name(uuid, name);
        r = sf_virt_state(conn, name, &state);
        if (r < 0 && r != -ENOENT)
                return r;
        power = sf_virt_power_name(state);
        if (!power)
                return -EAGAIN;
        if (ret_power)
                *ret_power = power;
        if (strcmp(sf_json_str(inst, "power_state") ?: "", power) == 0)
                return 0;
        return sf_obj_set_field(ctx, "instance", uuid, "power_state", json_object_new_string(power), fence);
}

/* Runs op on the domain: SF_WORK_* (a conflict is SF_WORK_FAIL with upstream's words). */
static int power_apply(sf_work_t *w, json_object *inst, sf_lock_t *lock, const char *op) {
        sf_compute_t *cs = w->user;
        char name[64];
        const char *verb = NULL;
        int r = 0;

        sf_domain_name(sf_json_str(inst, "uuid"), name);
        if (strcmp(op, "poweron") == 0) {
                r = sf_virt_start(cs->conn, name);
                /* No domain (libvirt lost it): define it again from the instance, as a
                 * create would; every build step keeps what already exists. */
                if (r == -ENOENT)
                        return sf_compute_build(w, inst, lock);
        } else if (strcmp(op, "poweroff") == 0) {
                r = sf_virt_stop(cs->conn, name);
                if (r == -ENOENT)
                        r = 0;
        } else if (strcmp(op, "rebootsoft") == 0 || strcmp(op, "reboothard") == 0) {
                r = sf_virt_reboot(cs->conn, name, strcmp(op, "reboothard") == 0);
                verb = "reboot";
        } else if (strcmp(op, "pause") == 0) {
                r = sf_virt_suspend(cs->conn, name);
                verb = "pause";
        } else if (strcmp(op, "unpause") == 0) {
                r = sf_virt_resume(cs->conn, name);
                verb = "unpause";
        } else {
                return sf_work_error(w, "unknown power operation %s", op), SF_WORK_FAIL;
        }
        if ((r == -EAGAIN || r == -ENOENT) && verb)
                return sf_work_error(w, SF_POWER_CONFLICT_FMT, verb), SF_WORK_FAIL;
        if (r < 0)
                return sf_work_error(w, "libvirt could not %s the instance: %s", op, strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

int sf_compute_handle_power(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        sf_compute_t *cs = w->user;
        const char *op = sf_intent_arg(w->intent, "op") ?: "", *power = NULL;
        _cleanup_json_ json_object *inst = NULL, *extra = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        double t0 = sf_now();
        int r, res;

        res = power_lock_created(w, &inst, &lock);
        if (res != SF_WORK_DONE)
                return res;
        fence = sf_lock_fence(lock);
        /* libvirt takes no fence: act only while the lock is still ours. */
        r = sf_lock_check(ctx->store, lock);
        if (r < 0) {
                sf_lock_release(ctx->store, lock);
                return sf_work_error(w, "instance lock: %s", strerror(-r)), r == -ENOLCK ? SF_WORK_WAIT : SF_WORK_RETRY;
        }
        sf_crashpoint("power.locked");
        res = power_apply(w, inst, lock, op);
        if (res == SF_WORK_DONE) {
                sf_crashpoint("power.applied");
                r = power_record(ctx, cs->conn, inst, &fence, &power);
                if (r == -EINVAL || r == -ESTALE)
                        res = SF_WORK_DONE; /* a newer lock holder (a delete) owns it now */
                else if (r < 0)
                        res = (sf_work_error(w, "cannot record the power state: %s", strerror(-r)), SF_WORK_RETRY);
        } else if (res == SF_WORK_FAIL) {
                /* A conflict means libvirt found the domain off or gone: say so in the
                 * record too, or the API would go on offering a reboot of it. */
                (void)power_record(ctx, cs->conn, inst, &fence, NULL);
        }
        if (res == SF_WORK_DONE) {
                sf_crashpoint("power.recorded");
                extra = json_object_new_object();
                json_object_object_add(extra, "power_state", power ? json_object_new_string(power) : NULL);
                /* The operation's own name, as upstream's audit events say it. */
                sf_event_emit(ctx, "instance", w->intent->object_uuid, sf_json_str(inst, "namespace"), "audit", op,
                              extra, sf_now() - t0);
        }
        sf_lock_release(ctx->store, lock);
        return res;
}

/* DELETE consoledata: the log is emptied in place (virtlogd appends, so it goes on
 * writing at the new end).  No log yet is success. */
int sf_compute_handle_console_clear(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        char dir[4096], path[4200];
        int r;

        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        sf_compute_instance_dir(ctx, uuid, dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/console.log", dir);
        if (truncate(path, 0) < 0 && errno != ENOENT)
                return sf_work_error(w, "cannot truncate %s: %s", path, strerror(errno)), SF_WORK_RETRY;
        sf_event_emit(ctx, "instance", uuid, sf_json_str(inst, "namespace"), "audit", "console log cleared", NULL,
                      -1);
        return SF_WORK_DONE;
}

/* GET screenshot: the image goes straight into a new blob (file, then record), whose
 * uuid the API chose and returns.  Redelivered after the record exists: nothing to do. */
int sf_compute_handle_screenshot(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        sf_compute_t *cs = w->user;
        const char *uuid = w->intent->object_uuid, *blob = sf_intent_arg(w->intent, "blob");
        _cleanup_json_ json_object *inst = NULL, *doc = NULL, *old = NULL;
        char name[64], path[4096], tmp[4200], dir[4096], mime[64] = "", sha512[SF_SHA512_HEX_LEN];
        struct stat sb;
        int r, res;

        if (!blob || !sf_uuid_parse(blob, NULL))
                return sf_work_error(w, "no blob uuid"), SF_WORK_FAIL;
        if (sf_store_get(ctx->store, "blob", blob, &old, NULL) == 0)
                return SF_WORK_DONE;
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r < 0)
                return sf_work_error(w, "instance: %s", strerror(-r)), r == -ENOENT ? SF_WORK_FAIL : SF_WORK_RETRY;
        res = sf_compute_virt_ready(w);
        if (res != SF_WORK_DONE)
                return res;
        sf_compute_blob_path(ctx, blob, path, sizeof(path));
        snprintf(dir, sizeof(dir), "%s/blobs/%.2s", ctx->cfg.storage, blob);
        r = sf_mkdir_p(dir, 0755);
        if (r < 0)
                return sf_work_error(w, "cannot create %s: %s", dir, strerror(-r)), SF_WORK_RETRY;
        snprintf(tmp, sizeof(tmp), "%s.partial", path);
        sf_domain_name(uuid, name);
        r = sf_virt_screenshot(cs->conn, name, tmp, mime);
        if (r == -EAGAIN || r == -ENOENT || r == -ENODEV) {
                unlink(tmp);
                if (r == -ENODEV)
                        return sf_work_error(w, "instance %s has no screen (no video device)", uuid), SF_WORK_FAIL;
                return sf_work_error(w, "instance %s is not running", uuid), SF_WORK_FAIL;
        }
        /* The digest of the complete file, before it takes its name: a record always has it. */
        if (r == 0)
                r = sf_blobfile_sha512(tmp, sha512);
        if (r < 0 || rename(tmp, path) < 0 || stat(path, &sb) < 0) {
                unlink(tmp);
                return sf_work_error(w, "screenshot failed: %s", strerror(r < 0 ? -r : errno)), SF_WORK_RETRY;
        }
        doc = json_object_new_object();
        json_object_object_add(doc, "uuid", json_object_new_string(blob));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(doc, "namespace", json_object_new_string("system"));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "size", json_object_new_int64((int64_t)sb.st_size));
        json_object_object_add(doc, "modified", NULL);
        json_object_object_add(doc, "etag", NULL);
        json_object_object_add(doc, "fetched_at", json_object_new_double(sf_now()));
        json_object_object_add(doc, "sha512", json_object_new_string(sha512));
        json_object_object_add(doc, "mime_type", json_object_new_string(mime));
        json_object_object_add(doc, "locations", json_object_new_array());
        json_object_array_add(json_object_object_get(doc, "locations"), json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "reference_count", json_object_new_int(0));
        json_object_object_add(doc, "last_used", json_object_new_double(sf_now()));
        json_object_object_add(doc, "depends_on", NULL);
        json_object_object_add(doc, "transcodes", json_object_new_object());
        r = sf_store_put(ctx->store, "blob", blob, 0, doc, NULL, NULL);
        if (r < 0 && r != -ESTALE)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        sf_event_emit(ctx, "blob", blob, "system", "audit", "db record created", NULL, -1);
        sf_obj_set_state(ctx, "blob", blob, "created", NULL, NULL, NULL);
        sf_event_emit(ctx, "instance", uuid, sf_json_str(inst, "namespace"), "audit", "screenshot taken", NULL, -1);
        return SF_WORK_DONE;
}

/* ---- the power watcher ----
 * libvirt's event loop thread (virt.c) calls watch_event, which only queues the uuid;
 * this thread, with its own Redis and libvirt connections, reads the domain's state
 * now (the event is only a wake-up, so a burst collapses into one read) and records it
 * under the instance lock, for instances of this node in `created` only: a create in
 * progress records its own, and a delete is left alone.  After (re)connecting to
 * libvirt every instance of this node is looked at once: changes made while sf-compute
 * or the connection was down are caught then. */

#define WATCH_RETRY_MS 500
#define WATCH_RECONNECT_MS 1000 /* doubling up to WATCH_RECONNECT_MAX_MS while libvirtd is away */
#define WATCH_RECONNECT_MAX_MS 8000

typedef struct sf_compute_powerwatch {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool stop, lost, running;
        char **pending; /* uuids to look at, deduplicated */
        size_t npending, cap;
        sf_bus_t *bus;
} powerwatch_t;

static void watch_queue_locked(powerwatch_t *pw, const char *uuid) {
        char *copy;

        for (size_t i = 0; i < pw->npending; i++)
                if (strcmp(pw->pending[i], uuid) == 0)
                        return;
        if (pw->npending == pw->cap) {
                size_t cap = pw->cap ? pw->cap * 2 : 16;
                char **p = realloc(pw->pending, cap * sizeof(*p));
                if (!p)
                        return; /* the next reconnect's sweep catches it */
                pw->pending = p;
                pw->cap = cap;
        }
        copy = strdup(uuid);
        if (copy)
                pw->pending[pw->npending++] = copy;
}

static void watch_event(const char *uuid, int event, void *opaque) {
        powerwatch_t *pw = opaque;

        (void)event;
        pthread_mutex_lock(&pw->mu);
        watch_queue_locked(pw, uuid);
        pthread_cond_signal(&pw->cond);
        pthread_mutex_unlock(&pw->mu);
}

static void watch_closed(void *opaque) {
        powerwatch_t *pw = opaque;

        pthread_mutex_lock(&pw->mu);
        pw->lost = true;
        pthread_cond_signal(&pw->cond);
        pthread_mutex_unlock(&pw->mu);
}

/* The power state libvirt gives the domain (NULL: one sf has no name for).  No domain
 * is "off": the record is written only under the instance lock and in state `created`,
 * where no create or delete is at work, so the domain is gone for certain (libvirt
 * lost it; poweron defines it again). */
static int watch_power(virConnectPtr conn, const char *name, const char **ret_power) {
        int r, state;

        r = sf_virt_state(conn, name, &state);
        if (r == -ENOENT) {
                *ret_power = "off";
                return 0;
        }
        if (r < 0)
                return r;
        *ret_power = sf_virt_power_name(state);
        return 0;
}

/* 0 done (recorded, unchanged, or not ours to touch), -EAGAIN to look again later. */
static int watch_sync_one(sf_ctx_t *ctx, virConnectPtr conn, const char *uuid) {
        _cleanup_json_ json_object *inst = NULL, *extra = NULL;
        const char *was, *power;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        char name[64];
        int r;

        sf_domain_name(uuid, name);
        r = watch_power(conn, name, &power);
        if (r < 0)
                return -EAGAIN;
        /* Cheap check first: only a change takes the lock. */
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return -EAGAIN;
        if (!power || strcmp(sf_json_str(inst, "node") ?: "", ctx->cfg.node) != 0 ||
            strcmp(sf_json_str(inst, "state") ?: "", "created") != 0 ||
            strcmp(sf_json_str(inst, "power_state") ?: "", power) == 0)
                return 0;
        r = sf_compute_lock_instance(ctx, uuid, 0, &lock);
        if (r < 0)
                return -EAGAIN; /* a power operation or a delete holds it: look again after */
        fence = sf_lock_fence(lock);
        json_object_put(inst);
        inst = NULL;
        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == 0 && watch_power(conn, name, &power) == 0 && power &&
            strcmp(sf_json_str(inst, "state") ?: "", "created") == 0 &&
            strcmp(was = sf_json_str(inst, "power_state") ?: "", power) != 0) {
                extra = json_object_new_object();
                json_object_object_add(extra, "power_state", json_object_new_string(power));
                json_object_object_add(extra, "previous", json_object_new_string(was));
                r = sf_obj_set_field(ctx, "instance", uuid, "power_state", json_object_new_string(power), &fence);
                if (r == 0) {
                        log_info("instance %s: power state %s -> %s (libvirt lifecycle event)", uuid, was, power);
                        sf_event_emit(ctx, "instance", uuid, sf_json_str(inst, "namespace"), "audit",
                                      "power state changed outside sf", extra, -1);
                }
        }
        sf_lock_release(ctx->store, lock);
        return r < 0 && r != -EINVAL && r != -ESTALE && r != -ENOENT ? -EAGAIN : 0;
}

/* Queue every instance of this node: after a (re)connect. */
static void watch_queue_all(sf_ctx_t *ctx, powerwatch_t *pw) {
        char **insts = NULL;

        if (sf_store_index(ctx->store, "instance", "node", ctx->cfg.node, &insts, NULL) < 0)
                return;
        pthread_mutex_lock(&pw->mu);
        for (char **p = insts; *p; p++)
                watch_queue_locked(pw, *p);
        pthread_mutex_unlock(&pw->mu);
        sf_strv_free(insts);
}

static void watch_disconnect(virConnectPtr *conn, int *id) {
        if (!*conn)
                return;
        sf_virt_unwatch(*conn, *id, watch_closed);
        sf_virt_close(*conn);
        *conn = NULL;
        *id = -1;
}

static void watch_deadline(struct timespec *ts, int ms) {
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

static void *watch_main(void *arg) {
        powerwatch_t *pw = arg;
        sf_ctx_t ctx = {0};
        virConnectPtr conn = NULL;
        bool redis = false;
        int id = -1, reconnect_ms = WATCH_RECONNECT_MS;

        pthread_mutex_lock(&pw->mu);
        while (!pw->stop) {
                char **batch;
                size_t n;
                int wait_ms = -1;
                struct timespec until;

                if (pw->lost) {
                        pw->lost = false;
                        pthread_mutex_unlock(&pw->mu);
                        watch_disconnect(&conn, &id);
                        pthread_mutex_lock(&pw->mu);
                }
                batch = pw->pending;
                n = pw->npending;
                pw->pending = NULL;
                pw->npending = pw->cap = 0;
                pthread_mutex_unlock(&pw->mu);

                if (!redis && sf_ctx_open(&ctx, false, 0) == 0) {
                        ctx.bus = pw->bus; /* thread-safe: events reach the live stream */
                        redis = true;
                }
                if (redis && !conn && sf_virt_open(ctx.cfg.libvirt_uri, &conn) == 0) {
                        if (sf_virt_watch(conn, watch_event, watch_closed, pw, &id) < 0) {
                                sf_virt_close(conn);
                                conn = NULL;
                        } else {
                                log_info("power watcher: following libvirt lifecycle events");
                                reconnect_ms = WATCH_RECONNECT_MS;
                                watch_queue_all(&ctx, pw);
                        }
                } else if (!conn && reconnect_ms < WATCH_RECONNECT_MAX_MS) {
                        reconnect_ms *= 2;
                }
                pthread_mutex_lock(&pw->mu);
                for (size_t i = 0; i < n; i++) {
                        bool again = !conn;
                        if (conn) {
                                pthread_mutex_unlock(&pw->mu);
                                again = watch_sync_one(&ctx, conn, batch[i]) == -EAGAIN;
                                pthread_mutex_lock(&pw->mu);
                        }
                        if (again) {
                                watch_queue_locked(pw, batch[i]);
                                wait_ms = conn ? WATCH_RETRY_MS : reconnect_ms;
                        }
                        free(batch[i]);
                }
                free(batch);
                if (!redis || !conn)
                        wait_ms = reconnect_ms;
                if (pw->stop || pw->lost || (pw->npending && wait_ms < 0))
                        continue;
                if (wait_ms < 0) {
                        pthread_cond_wait(&pw->cond, &pw->mu);
                } else {
                        watch_deadline(&until, wait_ms);
                        while (!pw->stop && !pw->lost &&
                               pthread_cond_timedwait(&pw->cond, &pw->mu, &until) != ETIMEDOUT)
                                ;
                }
        }
        pthread_mutex_unlock(&pw->mu);
        watch_disconnect(&conn, &id);
        if (redis) {
                ctx.bus = NULL; /* the worker's, not ours to close */
                sf_ctx_close(&ctx);
        }
        return NULL;
}

int sf_compute_powerwatch_start(sf_compute_t *cs, sf_bus_t *bus) {
        powerwatch_t *pw = calloc(1, sizeof(*pw));
        pthread_condattr_t ca;
        int r;

        if (!pw)
                return -ENOMEM;
        pw->bus = bus;
        pthread_mutex_init(&pw->mu, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&pw->cond, &ca);
        pthread_condattr_destroy(&ca);
        r = sf_virt_events_start();
        if (r == 0)
                r = -pthread_create(&pw->thread, NULL, watch_main, pw);
        if (r < 0) {
                sf_virt_events_stop();
                pthread_cond_destroy(&pw->cond);
                pthread_mutex_destroy(&pw->mu);
                free(pw);
                return r;
        }
        pw->running = true;
        cs->powerwatch = pw;
        return 0;
}

void sf_compute_powerwatch_stop(sf_compute_t *cs) {
        powerwatch_t *pw = cs ? cs->powerwatch : NULL;

        if (!pw)
                return;
        pthread_mutex_lock(&pw->mu);
        pw->stop = true;
        pthread_cond_signal(&pw->cond);
        pthread_mutex_unlock(&pw->mu);
        pthread_join(pw->thread, NULL);
        /* The loop goes last: the watcher's connection had to close while it ran. */
        sf_virt_events_stop();
        for (size_t i = 0; i < pw->npending; i++)
                free(pw->pending[i]);
        free(pw->pending);
        pthread_cond_destroy(&pw->cond);
        pthread_mutex_destroy(&pw->mu);
        free(pw);
        cs->powerwatch = NULL;
}
