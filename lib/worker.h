/* The consume loop every worker runs: fetch an intent from this node's subject, skip it
 * if already done, run its handler, commit, then ack.
 *
 * Handler results:
 *   SF_WORK_DONE   the state change is committed: mark done, ack.
 *   SF_WORK_WAIT   a precondition is not met yet (another worker's step): nak with a
 *                  short delay; not counted as a failure (until the intent's deadline).
 *   SF_WORK_RETRY  transient failure: nak with backoff; counted.
 *   SF_WORK_FAIL   permanent failure: on_fail puts the object in its error state,
 *                  mark failed, term.
 * Attempts are counted in Redis before the handler runs, so a worker killed mid-handler
 * also counts; after cfg.max_attempts the intent fails like SF_WORK_FAIL.
 *
 * Concurrency: by default one intent is handled at a time, in the consume loop.  A worker
 * with concurrency N > 1 runs N handler threads, each with its own Redis connection
 * (sf_work_t.ctx; hiredis is not thread-safe) and the shared bus; the consume loop fetches
 * a message only when a thread is free and keeps running the tick and the bus checks, so
 * a handler that takes long (a slow download) delays neither other intents nor the tick.
 * Handlers of such a worker must not share unlocked state through `user`. */
#pragma once
#include <signal.h>

#include "ctx.h"
#include "intent.h"

enum { SF_WORK_DONE = 0, SF_WORK_WAIT, SF_WORK_RETRY, SF_WORK_FAIL };

typedef struct sf_work {
        sf_ctx_t *ctx;
        const Sf__Intent *intent;
        sf_bus_msg_t *msg;
        char error[512]; /* handler's message for RETRY/FAIL */
        int wait_ms;     /* handler may set the WAIT delay (default 500) */
        void *user;      /* worker-wide state (libvirt connection, ...) */
        volatile sig_atomic_t *stop; /* non-zero once the worker is stopping: long handlers may give up */
        int64_t progressed_ms; /* sf_mono_ms() of the run's start or its last progress report */
} sf_work_t;

typedef int (*sf_work_fn)(sf_work_t *w);
typedef void (*sf_work_fail_fn)(sf_work_t *w, const char *message);

typedef struct sf_handler {
        const char *kind;
        sf_work_fn fn;
        sf_work_fail_fn on_fail; /* may be NULL */
        int deadline_s;          /* give up WAITing after this long (0: 600 s) */
} sf_handler_t;

typedef struct sf_worker {
        const char *name; /* compute, network, blob */
        const sf_handler_t *handlers;
        size_t nhandlers;
        void *user;
        /* Called about every tick_ms (heartbeat, reconciliation). */
        void (*tick)(sf_ctx_t *ctx, void *user);
        int tick_ms;
        int concurrency; /* handler threads (0 or 1: handled in the consume loop itself) */
} sf_worker_t;

/* A worker process's main: log name, SIGINT/SIGTERM stop it, Redis + NATS (waiting
 * up to 30 s for them), optional setup (e.g. a libvirt connection; a negative return
 * aborts), the consume loop, teardown.  Returns the process exit code. */
int sf_worker_main(const char *progname, sf_worker_t *w, int (*setup)(sf_ctx_t *ctx, sf_worker_t *w),
                   void (*teardown)(sf_worker_t *w));

/* Runs until *stop becomes non-zero. */
int sf_worker_run(sf_ctx_t *ctx, const sf_worker_t *w, volatile sig_atomic_t *stop);

/* Long handlers call this now and then: resets the ack timer, keeps the reconciler off.
 * At most every SF_WORK_PROGRESS_MS (a run's start counts as one): more often changes
 * nothing either timer can see. */
#define SF_WORK_PROGRESS_MS 250
void sf_work_progress(sf_work_t *w);
/* Format the handler's error message. */
void sf_work_error(sf_work_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
