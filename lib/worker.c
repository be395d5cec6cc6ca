#include "worker.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sf_work_progress(sf_work_t *w) {
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

static void fail(sf_work_t *work, const sf_handler_t *h, const char *message) {
        log_err("intent %s (%s %s/%s) failed: %s", work->intent->id, work->intent->kind,
                work->intent->object_type, work->intent->object_uuid, message);
        if (h && h->on_fail)
                h->on_fail(work, message);
        sf_intent_finish(work->ctx->store, work->intent->id, SF_INTENT_FAILED, message);
        sf_bus_term(work->msg);
}

static void handle(sf_ctx_t *ctx, const sf_worker_t *w, sf_bus_msg_t *msg) {
        sf_work_t work = {.ctx = ctx, .msg = msg, .wait_ms = 500, .user = w->user};
        Sf__Intent *wire = NULL, *in = NULL;
        const sf_handler_t *h;
        const void *data;
        size_t len;
        char state[16];
        int attempts = 0, r, res;

        data = sf_bus_msg_data(msg, &len);
        wire = sf__intent__unpack(NULL, len, data);
        if (!wire || !wire->id) {
                log_err("bus: undecodable intent on %s; dropping", sf_bus_msg_subject(msg));
                sf_bus_term(msg);
                goto cleanup;
        }
        /* Redis is the truth: the record decides, the message only names it. */
        r = sf_intent_load(ctx->store, wire->id, &in, state, &attempts);
        if (r == -ENOENT) {
                log_warn("intent %s has no record; dropping", wire->id);
                sf_bus_term(msg);
                goto cleanup;
        }
        if (r < 0) {
                sf_bus_nak(msg, 2000); /* Redis unreachable: try again later */
                goto cleanup;
        }
        if (strcmp(state, SF_INTENT_PENDING) != 0) {
                log_debug("intent %s already %s; ack", in->id, state);
                sf_bus_ack(msg);
                goto cleanup;
        }
        /* A newer copy of this intent was published (re-drive, re-submit): that one runs. */
        r = sf_intent_current(ctx->store, in->id, sf_bus_msg_id(msg));
        if (r < 0) {
                sf_bus_nak(msg, 2000);
                goto cleanup;
        }
        if (r == 0) {
                log_debug("intent %s: copy %s superseded; ack", in->id, sf_bus_msg_id(msg) ?: "?");
                sf_bus_ack(msg);
                goto cleanup;
        }
        work.intent = in;
        h = find_handler(w, in->kind);
        if (!h) {
                fail(&work, NULL, "no handler for this intent kind");
                goto cleanup;
        }
        if (sf_intent_attempt(ctx->store, in->id, 1, &attempts) < 0) {
                sf_bus_nak(msg, 2000);
                goto cleanup;
        }
        if (attempts > ctx->cfg.max_attempts) {
                char m[600];
                snprintf(m, sizeof(m), "gave up after %d attempts", attempts - 1);
                fail(&work, h, m);
                goto cleanup;
        }
        sf_intent_touch(ctx->store, in->id);
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
                        fail(&work, h, work.error[0] ? work.error : "timed out waiting");
                        break;
                }
                sf_bus_nak(msg, work.wait_ms);
                break;
        }
        case SF_WORK_RETRY:
                log_warn("intent %s %s attempt %d: %s", in->id, in->kind, attempts, work.error);
                if (attempts >= ctx->cfg.max_attempts) {
                        fail(&work, h, work.error[0] ? work.error : "too many attempts");
                        break;
                }
                sf_bus_nak(msg, 1000 * (1 << (attempts < 5 ? attempts : 5)));
                break;
        default:
                fail(&work, h, work.error[0] ? work.error : "failed");
                break;
        }
cleanup:
        if (wire)
                sf__intent__free_unpacked(wire, NULL);
        if (in)
                sf__intent__free_unpacked(in, NULL);
}

int sf_worker_run(sf_ctx_t *ctx, const sf_worker_t *w, volatile sig_atomic_t *stop) {
        char durable[128], filter[256], tok[80];
        sf_bus_sub_t *sub = NULL;
        int64_t next_tick = 0, next_check = sf_mono_ms() + 5000;
        uint64_t reconnects = sf_bus_reconnects(ctx->bus);
        int r;

        sf_config_node_token(ctx->cfg.node, tok, sizeof(tok));
        snprintf(durable, sizeof(durable), "%s-%s", tok, w->name);
        sf_intent_subject(ctx->cfg.node, w->name, filter, sizeof(filter));
        r = sf_bus_consumer(ctx->bus, SF_BUS_INTENTS, durable, filter, ctx->cfg.ack_wait_s, &sub);
        if (r < 0) {
                log_err("cannot consume %s: %s", filter, strerror(-r));
                return r;
        }
        log_info("consuming %s as %s", filter, durable);
        {
                int n = 0;
                if (sf_intent_recover(ctx, ctx->cfg.node, w->name, &n) == 0 && n > 0)
                        log_info("re-published %d pending intent(s) left by a previous run", n);
        }
        while (!*stop) {
                sf_bus_msg_t *msg = NULL;

                /* A server that lost its store (lazy fsync, power loss) comes back without
                 * our stream or consumer: notice, recreate, and re-publish from Redis. */
                if (sf_mono_ms() >= next_check) {
                        uint64_t rc = sf_bus_reconnects(ctx->bus);
                        int n = 0;
                        if (sf_bus_sub_check(&sub) == 1) {
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
                r = sf_bus_fetch(sub, 1000, &msg);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0) {
                        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000000L};
                        nanosleep(&ts, NULL);
                        continue;
                }
                handle(ctx, w, msg);
                sf_bus_msg_free(msg);
        }
        sf_bus_sub_free(sub);
        return 0;
}

static volatile sig_atomic_t main_stop;

static void on_stop_signal(int sig) {
        (void)sig;
        main_stop = 1;
}

int sf_worker_main(const char *progname, sf_worker_t *w, int (*setup)(sf_ctx_t *ctx, sf_worker_t *w),
                   void (*teardown)(sf_worker_t *w)) {
        struct sigaction sa = {.sa_handler = on_stop_signal};
        sf_ctx_t ctx;
        int r;

        sf_log_init(progname);
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
        if (teardown)
                teardown(w);
        sf_ctx_close(&ctx);
        return r < 0 ? 1 : 0;
}
