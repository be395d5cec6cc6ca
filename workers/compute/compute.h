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
