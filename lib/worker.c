#include "worker.h"

#include "log.h"
#include "memtrim.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sf_work_progress(sf_work_t *w) {
        int64_t now = sf_mono_ms();

        if (now - w->progressed_ms < SF_WORK_PROGRESS_MS)
                return;
        w->progressed_ms = now;
        if (w->msg)
                sf_bus_progress(w->msg);
        sf_intent_touch(w->ctx->store, w->intent->id);
}

void sf_work_error(sf_work_t *w, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(w->error, sizeof(w->error), fmt, ap);
        va_end(ap);
}

static const sf_handler_t *find_handler(const sf_worker_t *w, const char *kind) {
        for (size_t i = 0; i < w->nhandlers; i++)
                if (strcmp(w->handlers[i].kind, kind) == 0)
                        return &w->handlers[i];
        return NULL;
}

static void fail_intent(sf_work_t *work, const sf_handler_t *h, const char *message) {
        log_err("intent %s (%s %s/%s) failed: %s", work->intent->id, work->intent->kind,
                work->intent->object_type, work->intent->object_uuid, message);
        if (h && h->on_fail)
                h->on_fail(work, message);
        sf_intent_finish(work->ctx->store, work->intent->id, SF_INTENT_FAILED, message);
        sf_bus_term(work->msg);
}

static void handle_intent(sf_ctx_t *ctx, const sf_worker_t *w, sf_bus_msg_t *msg,
                          volatile sig_atomic_t *stop) {
        /* The fetch just started the ack timer and sf_intent_begin touches the record. */
        sf_work_t work = {.ctx = ctx, .msg = msg, .wait_ms = 500, .user = w->user, .stop = stop,
                          .progressed_ms = sf_mono_ms()};
        Sf__Intent *wire = NULL, *in = NULL;
        const sf_handler_t *h;
        const void *data;
        size_t len;
        char state[16];
        int attempts = 0, run = 0, r, res;

        data = sf_bus_msg_data(msg, &len);
        wire = sf__intent__unpack(NULL, len, data);
        if (!wire || !wire->id) {
                log_err("bus: undecodable intent on %s; dropping", sf_bus_msg_subject(msg));
                sf_bus_term(msg);
                goto cleanup;
        }
        /* Redis is the truth: the record decides, the message only names it.  Loaded,
         * checked, counted and touched in one round trip (sf_intent_begin). */
        r = sf_intent_begin(ctx->store, wire->id, sf_bus_msg_id(msg), &in, state, &attempts, &run);
        if (r == -ENOENT) {
                log_warn("intent %s has no record; dropping", wire->id);
                sf_bus_term(msg);
                goto cleanup;
        }
        if (r < 0) {
                sf_bus_nak(msg, 2000); /* Redis unreachable: try again later */
                goto cleanup;
        }
        if (run < 0) {
                log_debug("intent %s already %s; ack", in->id, state);
                sf_bus_ack(msg);
                goto cleanup;
        }
        /* A newer copy of this intent was published (re-drive, re-submit): that one runs. */
        if (run == 0) {
                log_debug("intent %s: copy %s superseded; ack", in->id, sf_bus_msg_id(msg) ?: "?");
                sf_bus_ack(msg);
                goto cleanup;
        }
        work.intent = in;
        h = find_handler(w, in->kind);
        if (!h) {
                sf_intent_attempt(ctx->store, in->id, -1, NULL); /* not a run: uncounted */
                fail_intent(&work, NULL, "no handler for this intent kind");
                goto cleanup;
        }
        if (attempts > ctx->cfg.max_attempts) {
                char m[600];
                snprintf(m, sizeof(m), "gave up after %d attempts", attempts - 1);
                fail_intent(&work, h, m);
                goto cleanup;
        }
        log_debug("intent %s %s %s attempt %d", in->id, in->kind, in->object_uuid, attempts);
        res = h->fn(&work);
        switch (res) {
        case SF_WORK_DONE:
                /* The handler committed its state change; only now may the bus forget. */
                r = sf_intent_finish(ctx->store, in->id, SF_INTENT_DONE, NULL);
                if (r < 0) {
                        sf_bus_nak(msg, 1000);
                        break;
                }
                if (r == 1) {
                        /* Submitted again while it ran: once more (this copy, or the
                         * newer one the submit published if this one is superseded). */
                        sf_bus_nak(msg, 0);
                        break;
                }
                sf_bus_ack(msg);
                break;
        case SF_WORK_WAIT: {
                int deadline = h->deadline_s > 0 ? h->deadline_s : 600;
                sf_intent_attempt(ctx->store, in->id, -1, NULL);
                if (sf_now_us() - in->created_us > (int64_t)deadline * 1000000) {
                        fail_intent(&work, h, work.error[0] ? work.error : "timed out waiting");
                        break;
                }
                sf_bus_nak(msg, work.wait_ms);
                break;
        }
        case SF_WORK_RETRY:
                log_warn("intent %s %s attempt %d: %s", in->id, in->kind, attempts, work.error);
                if (attempts >= ctx->cfg.max_attempts) {
                        fail_intent(&work, h, work.error[0] ? work.error : "too many attempts");
                        break;
                }
                sf_bus_nak(msg, 1000 * (1 << (attempts < 5 ? attempts : 5)));
                break;
        default:
                fail_intent(&work, h, work.error[0] ? work.error : "failed");
                break;
        }
cleanup:
        if (wire)
                sf__intent__free_unpacked(wire, NULL);
        if (in)
                sf__intent__free_unpacked(in, NULL);
}

/* ---- handler threads (concurrency > 1) ---- */

#define POOL_MAX 64

typedef struct pool {
        pthread_mutex_t mu;
        pthread_cond_t changed;  /* a message was queued, a thread became free, or closing */
        sf_bus_msg_t *queue[POOL_MAX];
        size_t nqueued;
        int idle;                /* threads waiting for a message */
        bool closing;
        const sf_worker_t *w;
        const sf_ctx_t *parent;  /* config and bus to share */
        volatile sig_atomic_t *stop;
        pthread_t threads[POOL_MAX];
        int nthreads;
} pool_t;

/* A thread's context: the worker's config and bus, its own Redis connection. */
static int open_thread_ctx(const sf_ctx_t *parent, volatile sig_atomic_t *stop, sf_ctx_t *ret) {
        sf_ctx_t c = {.cfg = parent->cfg, .bus = parent->bus};
        int r;

        while ((r = sf_store_connect(c.cfg.redis_host, c.cfg.redis_port, &c.store)) < 0 && !*stop) {
                struct timespec ts = {.tv_sec = 1};
                nanosleep(&ts, NULL);
        }
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

static void *pool_thread(void *arg) {
        pool_t *p = arg;
        sf_ctx_t ctx;

        if (open_thread_ctx(p->parent, p->stop, &ctx) < 0)
                return NULL;
        pthread_mutex_lock(&p->mu);
        for (;;) {
                sf_bus_msg_t *msg;

                p->idle++;
                pthread_cond_broadcast(&p->changed);
                while (p->nqueued == 0 && !p->closing)
                        pthread_cond_wait(&p->changed, &p->mu);
                p->idle--;
                if (p->nqueued == 0)
                        break; /* closing */
                msg = p->queue[--p->nqueued];
                pthread_mutex_unlock(&p->mu);
                handle_intent(&ctx, p->w, msg, p->stop);
                sf_bus_msg_free(msg);
                pthread_mutex_lock(&p->mu);
        }
        pthread_mutex_unlock(&p->mu);
        sf_store_free(ctx.store);
        return NULL;
}

static int pool_start(pool_t *p, const sf_ctx_t *parent, const sf_worker_t *w, volatile sig_atomic_t *stop) {
        int n = w->concurrency < POOL_MAX ? w->concurrency : POOL_MAX;

        *p = (pool_t){.w = w, .parent = parent, .stop = stop};
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->changed, NULL);
        for (int i = 0; i < n; i++) {
                int r = pthread_create(&p->threads[p->nthreads], NULL, pool_thread, p);
                if (r != 0) {
                        log_err("cannot start handler thread %d: %s", i, strerror(r));
                        break;
                }
                p->nthreads++;
        }
        if (p->nthreads == 0)
                return -EAGAIN;
        log_info("%d handler threads", p->nthreads);
        return 0;
}

/* Wait up to timeout_ms for a thread with nothing queued for it; how many such threads
 * there are (0 after the timeout). */
static int pool_wait_free(pool_t *p, int timeout_ms) {
        struct timespec until;
        int free_slots;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->mu);
        while ((free_slots = p->idle - (int)p->nqueued) <= 0)
                if (pthread_cond_timedwait(&p->changed, &p->mu, &until) != 0)
                        break;
        pthread_mutex_unlock(&p->mu);
        return free_slots > 0 ? free_slots : 0;
}

static bool pool_busy(pool_t *p) {
        bool busy;

        pthread_mutex_lock(&p->mu);
        busy = p->nqueued > 0 || p->idle < p->nthreads;
        pthread_mutex_unlock(&p->mu);
        return busy;
}

static void pool_hand_over(pool_t *p, sf_bus_msg_t *msg) {
        pthread_mutex_lock(&p->mu);
        p->queue[p->nqueued++] = msg; /* room: only fetched when a thread is free */
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
}

/* Lets running handlers finish (they see *stop), hands unstarted messages back. */
static void pool_stop(pool_t *p) {
        pthread_mutex_lock(&p->mu);
        p->closing = true;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->nthreads; i++)
                pthread_join(p->threads[i], NULL);
        while (p->nqueued > 0) {
                sf_bus_msg_t *msg = p->queue[--p->nqueued];
                sf_bus_nak(msg, 0);
                sf_bus_msg_free(msg);
        }
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->mu);
}

int sf_worker_run(sf_ctx_t *ctx, const sf_worker_t *w, volatile sig_atomic_t *stop) {
        char durable[128], filter[256], tok[80];
        sf_bus_sub_t *sub = NULL;
        int64_t next_tick = 0, next_check = sf_mono_ms() + 5000;
        uint64_t reconnects = sf_bus_reconnects(ctx->bus);
        bool pooled = w->concurrency > 1;
        pool_t pool;
        int r;

        sf_config_node_token(ctx->cfg.node, tok, sizeof(tok));
        snprintf(durable, sizeof(durable), "%s-%s", tok, w->name);
        sf_intent_subject(ctx->cfg.node, w->name, filter, sizeof(filter));
        r = sf_bus_consumer(ctx->bus, SF_BUS_INTENTS, durable, filter, ctx->cfg.ack_wait_s, &sub);
        if (r < 0) {
                log_err("cannot consume %s: %s", filter, strerror(-r));
                return r;
        }
        if (pooled && (r = pool_start(&pool, ctx, w, stop)) < 0) {
                sf_bus_sub_free(sub);
                return r;
        }
        log_info("consuming %s as %s", filter, durable);
        {
                int n = 0;
                if (sf_intent_recover(ctx, ctx->cfg.node, w->name, &n) == 0 && n > 0)
                        log_info("re-published %d pending intent(s) left by a previous run", n);
        }
        while (!*stop) {
                sf_bus_msg_t *msgs[POOL_MAX];
                int n = 0, nfree = 1;

                /* A server that lost its store (lazy fsync, power loss) comes back without
                 * our stream or consumer: notice, recreate, and re-publish from Redis. */
                if (sf_mono_ms() >= next_check) {
                        uint64_t rc = sf_bus_reconnects(ctx->bus);
                        int n = 0;
                        /* Replacing the subscription under a handler's message is not safe
                         * (its ack goes through it): with busy threads, only re-publish. */
                        if ((!pooled || !pool_busy(&pool)) && sf_bus_sub_check(&sub) == 1) {
                                log_warn("bus: consumer %s was lost; recreated it", durable);
                                sf_intent_recover(ctx, ctx->cfg.node, w->name, &n);
                        } else if (rc != reconnects) {
                                /* Publishes (ours or the API's) may have failed while it
                                 * was away: the pending records in Redis say what. */
                                sf_intent_recover(ctx, ctx->cfg.node, w->name, &n);
                        }
                        if (n > 0)
                                log_info("bus: re-published %d pending intent(s) after an outage", n);
                        reconnects = rc;
                        next_check = sf_mono_ms() + 5000;
                }
                if (w->tick && sf_mono_ms() >= next_tick) {
                        w->tick(ctx, w->user);
                        next_tick = sf_mono_ms() + (w->tick_ms > 0 ? w->tick_ms : 5000);
                }
                /* Fetch only for free threads (as many messages as there are, in one
                 * pull request): a fetched message's ack timer is running. */
                if (pooled && !(nfree = pool_wait_free(&pool, 1000)))
                        continue;
                r = sf_bus_fetch_many(sub, pooled ? nfree : 1, 1000, msgs, &n);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0) {
                        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000000L};
                        nanosleep(&ts, NULL);
                        continue;
                }
                /* Stopping (SIGTERM came during the fetch): take nothing new.  Handed
                 * back at once, so the next start (or another worker) gets them without
                 * waiting out the ack timer. */
                if (*stop) {
                        for (int i = 0; i < n; i++) {
                                sf_bus_nak(msgs[i], 0);
                                sf_bus_msg_free(msgs[i]);
                        }
                        break;
                }
                for (int i = 0; i < n; i++) {
                        if (pooled) {
                                pool_hand_over(&pool, msgs[i]);
                                continue;
                        }
                        handle_intent(ctx, w, msgs[i], stop);
                        sf_bus_msg_free(msgs[i]);
                }
        }
        log_info("stopping: %s", pooled ? "letting the running handlers finish" : "no handler running");
        if (pooled)
                pool_stop(&pool);
        sf_bus_sub_free(sub);
        return 0;
}

static volatile sig_atomic_t main_stop;

static void on_stop_signal(int sig) {
        (void)sig;
        main_stop = 1;
}

/* SIGTERM/SIGINT only set the flag: the consume loop takes nothing new, the handler in
 * hand finishes (its intent is committed and acked), then the process exits 0.  With
 * SA_RESTART, so the signal does not fail a system call of the handler in hand. */
int sf_worker_main(const char *progname, sf_worker_t *w, int (*setup)(sf_ctx_t *ctx, sf_worker_t *w),
                   void (*teardown)(sf_worker_t *w)) {
        struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
        sf_ctx_t ctx;
        int r;

        sf_log_init(progname);
        /* Idle, a worker gives back what start-up touched (memtrim.h). */
        if (sf_mem_trimmer_start(15) < 0)
                log_warn("no memory trimmer thread");
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        r = sf_ctx_open(&ctx, true, 30);
        if (r < 0) {
                log_err("cannot start: %s", strerror(-r));
                return 1;
        }
        if (setup && (r = setup(&ctx, w)) < 0) {
                sf_ctx_close(&ctx);
                return 1;
        }
        r = sf_worker_run(&ctx, w, &main_stop);
        log_info("stopped%s", r < 0 ? " on an error" : "");
        if (teardown)
                teardown(w);
        sf_ctx_close(&ctx);
        return r < 0 ? 1 : 0;
}
