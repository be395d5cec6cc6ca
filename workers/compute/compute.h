/* sf-compute internals shared by its files (handlers.c, create.c, build.c, delete.c,
 * node.c, reconcile.c).  Not a public surface: only sf-compute includes it. */
#pragma once
#include "handlers.h"
#include "lock.h"
#include "util.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* <storage>/instances/<uuid>, <storage>/blobs/<uu>/<uuid> */
void sf_compute_instance_dir(sf_ctx_t *ctx, const char *uuid, char *out, size_t len);
void sf_compute_blob_path(sf_ctx_t *ctx, const char *uuid, char *out, size_t len);
/* The per-instance fenced lock. */
int sf_compute_lock_instance(sf_ctx_t *ctx, const char *uuid, int wait_ms, sf_lock_t **ret);
/* Reconnects cs->conn if libvirtd went away (thread-safe; the old connection is kept
 * open until sf_compute_virt_retired_free at teardown).  0 or a negative errno. */
int sf_compute_virt_reconnect(const char *uri, sf_compute_t *cs);
void sf_compute_virt_retired_free(void);
/* Reconnects libvirt if needed; SF_WORK_DONE when usable. */
int sf_compute_virt_ready(sf_work_t *w);
/* The artifact's current blob if it is on this node (*ready), -EIO when it failed. */
int sf_compute_current_blob(sf_ctx_t *ctx, const char *art_uuid, char ret_blob[SF_UUID_LEN], bool *ready,
                            char *err, size_t errlen);
/* Build disks, config drive, domain, start it, record; an SF_WORK_* result.  Every
 * libvirt or file step runs only after sf_lock_check found the instance lock still ours
 * (a holder paused past its TTL stops: SF_WORK_DONE, the new holder decides); Redis
 * writes are fenced with it. */
int sf_compute_build(sf_work_t *w, json_object *inst, sf_lock_t *lock);
/* Remove domain, files and addresses of an instance, each step only while lock is still
 * ours; 0, -ENOLCK (lock lost: nothing more was done) or -EIO (message in w). */
int sf_compute_remove_local(sf_work_t *w, json_object *inst, sf_lock_t *lock);

/* Wake-ups (wake.c): parked creates are re-published when an event names an object they
 * wait for.  All take NULL (no wake-ups: the worker's short re-check delay applies). */
#define SF_COMPUTE_WAKE_BACKSTOP_MS 5000 /* a parked create's nak delay: a lost wake-up costs this */
int sf_compute_wake_start(const sf_ctx_t *parent, sf_compute_wake_t **ret);
void sf_compute_wake_stop(sf_compute_wake_t *wk);
/* Read before checking preconditions; hand it to park. */
uint64_t sf_compute_wake_seq(sf_compute_wake_t *wk);
/* Park instance inst's create until an event names one of watch[0..n); -EAGAIN (don't
 * wait: run again now) if one did since seq. */
int sf_compute_wake_park(sf_compute_wake_t *wk, const char *inst, const char *ns, const char *const *watch, size_t n,
                         uint64_t seq);
void sf_compute_wake_unpark(sf_compute_wake_t *wk, const char *inst);
/* Build step before the domain is defined: every interface created (SF_WORK_DONE),
 * or parked until one is (SF_WORK_WAIT), or one failed (SF_WORK_FAIL). */
int sf_compute_await_interfaces(sf_work_t *w, json_object *inst);

int sf_compute_handle_create(sf_work_t *w);
void sf_compute_create_failed(sf_work_t *w, const char *msg);
int sf_compute_handle_delete(sf_work_t *w);
void sf_compute_delete_failed(sf_work_t *w, const char *msg);

/* power.c: power operations and consoles (api.md §2.3).  A conflict (rebooting, pausing
 * or unpausing an instance that is off) fails the intent with this message, which the API
 * answers as a 409. */
#define SF_POWER_CONFLICT_FMT "you cannot %s a powered off instance"
int sf_compute_handle_power(sf_work_t *w);
int sf_compute_handle_console_clear(sf_work_t *w);
int sf_compute_handle_screenshot(sf_work_t *w);
/* The power watcher thread: libvirt lifecycle events move power_state (see power.c).
 * sf_virt_events_init must have run before any libvirt connection was opened.  bus is
 * borrowed (thread-safe) and must outlive it.  Stop is a no-op when not running. */
int sf_compute_powerwatch_start(sf_compute_t *cs, sf_bus_t *bus);
void sf_compute_powerwatch_stop(sf_compute_t *cs);
