/* sf-compute: wake-ups.  A create whose preconditions are not met (an interface sf-network
 * has not plugged yet, an image sf-blob is still fetching) parks here, keyed by the
 * objects it waits for, and its intent is nak'd with a long backstop delay.  Every change
 * of an interface or artifact is an event published on sf.event.<ns>.<type>.<uuid> after
 * it is committed to Redis; this watches those subjects and, when one names an object a
 * create waits for, publishes that create's intent again at once (sf_intent_submit
 * re-publishes the open intent, superseding the nak'd copy).  A lost event (bus outage,
 * a restart) costs only the backstop delay: the nak'd copy, then the reconciler's
 * re-drive, still run it. */
#include "compute.h"

#include "intent.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECENT 1024 /* wakes remembered for parkers that checked just before them */

typedef struct {
        char watch[SF_UUID_LEN];
        char inst[SF_UUID_LEN];
        char ns[80];
} parked_t;

struct sf_compute_wake {
        sf_ctx_t ctx; /* the waker thread's: its own Redis connection, the shared bus */
        sf_bus_watch_t *watches[2];
        pthread_t thread;
        bool running, stop;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        uint64_t seq; /* wakes seen so far */
        struct {
                char uuid[SF_UUID_LEN];
                uint64_t seq;
        } recent[RECENT];
        parked_t *parked;
        size_t nparked, cap;
        parked_t *due; /* creates to publish again */
        size_t ndue, capdue;
};

/* The last token of sf.event.<ns>.<type>.<uuid>. */
static const char *subject_uuid(const char *subject) {
        const char *dot = strrchr(subject, '.');
        return dot ? dot + 1 : subject;
}

static int due_add(sf_compute_wake_t *wk, const parked_t *p) {
        for (size_t i = 0; i < wk->ndue; i++)
                if (strcmp(wk->due[i].inst, p->inst) == 0)
                        return 0;
        if (wk->ndue == wk->capdue) {
                size_t cap = wk->capdue ? wk->capdue * 2 : 16;
                parked_t *d = realloc(wk->due, cap * sizeof(*d));
                if (!d)
                        return -ENOMEM;
                wk->due = d;
                wk->capdue = cap;
        }
        wk->due[wk->ndue++] = *p;
        return 0;
}

/* Drops every parked entry of inst; with wake, moves it to the due list. Locked. */
static void parked_drop(sf_compute_wake_t *wk, const char *inst, bool wake) {
        size_t j = 0;

        for (size_t i = 0; i < wk->nparked; i++) {
                if (strcmp(wk->parked[i].inst, inst) == 0) {
                        if (wake)
                                due_add(wk, &wk->parked[i]);
                        continue;
                }
                wk->parked[j++] = wk->parked[i];
        }
        wk->nparked = j;
}

/* On the NATS client's thread: note the wake, move who waits for it to the due list. */
static void on_event(const char *subject, const void *data, size_t len, void *ud) {
        sf_compute_wake_t *wk = ud;
        const char *uuid = subject_uuid(subject);
        bool any = false;

        (void)data, (void)len;
        pthread_mutex_lock(&wk->mu);
        wk->seq++;
        snprintf(wk->recent[wk->seq % RECENT].uuid, SF_UUID_LEN, "%s", uuid);
        wk->recent[wk->seq % RECENT].seq = wk->seq;
        for (size_t i = 0; i < wk->nparked;) {
                if (strcmp(wk->parked[i].watch, uuid) == 0) {
                        char inst[SF_UUID_LEN];
                        memcpy(inst, wk->parked[i].inst, sizeof(inst));
                        parked_drop(wk, inst, true);
                        any = true;
                        i = 0; /* the array changed */
                        continue;
                }
                i++;
        }
        if (any)
                pthread_cond_signal(&wk->cond);
        pthread_mutex_unlock(&wk->mu);
}

static void *waker_main(void *arg) {
        sf_compute_wake_t *wk = arg;

        pthread_mutex_lock(&wk->mu);
        while (!wk->stop) {
                if (wk->ndue == 0) {
                        pthread_cond_wait(&wk->cond, &wk->mu);
                        continue;
                }
                parked_t p = wk->due[--wk->ndue];
                pthread_mutex_unlock(&wk->mu);
                /* Re-publishes the open intent (a new copy; the nak'd one is dropped). */
                if (sf_intent_submit(&wk->ctx, wk->ctx.cfg.node, "compute", "instance.create", "instance", p.inst,
                                     p.ns, NULL, NULL) < 0)
                        log_warn("instance %s: wake-up not published; the backstop runs it", p.inst);
                else
                        log_debug("instance %s: woken", p.inst);
                pthread_mutex_lock(&wk->mu);
        }
        pthread_mutex_unlock(&wk->mu);
        return NULL;
}

int sf_compute_wake_start(const sf_ctx_t *parent, sf_compute_wake_t **ret) {
        static const char *const filters[] = {"sf.event.*.networkinterface.*", "sf.event.*.artifact.*"};
        sf_compute_wake_t *wk;
        int r;

        if (!parent || !parent->bus || !ret)
                return -EINVAL;
        wk = calloc(1, sizeof(*wk));
        if (!wk)
                return -ENOMEM;
        wk->ctx.cfg = parent->cfg;
        wk->ctx.bus = parent->bus;
        pthread_mutex_init(&wk->mu, NULL);
        pthread_cond_init(&wk->cond, NULL);
        r = sf_store_connect(wk->ctx.cfg.redis_host, wk->ctx.cfg.redis_port, &wk->ctx.store);
        if (r < 0)
                goto fail;
        r = -pthread_create(&wk->thread, NULL, waker_main, wk);
        if (r < 0)
                goto fail;
        wk->running = true;
        for (size_t i = 0; i < SF_ARRAY_SIZE(filters); i++) {
                r = sf_bus_watch(parent->bus, filters[i], on_event, wk, &wk->watches[i]);
                if (r < 0)
                        goto fail;
        }
        *ret = wk;
        return 0;
fail:
        sf_compute_wake_stop(wk);
        return r;
}

void sf_compute_wake_stop(sf_compute_wake_t *wk) {
        if (!wk)
                return;
        for (size_t i = 0; i < SF_ARRAY_SIZE(wk->watches); i++)
                sf_bus_watch_free(wk->watches[i]);
        if (wk->running) {
                pthread_mutex_lock(&wk->mu);
                wk->stop = true;
                pthread_cond_signal(&wk->cond);
                pthread_mutex_unlock(&wk->mu);
                pthread_join(wk->thread, NULL);
        }
        sf_store_free(wk->ctx.store);
        pthread_cond_destroy(&wk->cond);
        pthread_mutex_destroy(&wk->mu);
        free(wk->parked);
        free(wk->due);
        free(wk);
}

uint64_t sf_compute_wake_seq(sf_compute_wake_t *wk) {
        uint64_t s;

        if (!wk)
                return 0;
        pthread_mutex_lock(&wk->mu);
        s = wk->seq;
        pthread_mutex_unlock(&wk->mu);
        return s;
}

/* True if one of watch[] had an event after seq (or we cannot tell: too many since). */
static bool woken_since(sf_compute_wake_t *wk, const char *const *watch, size_t n, uint64_t seq) {
        if (wk->seq - seq >= RECENT)
                return true;
        for (uint64_t s = seq + 1; s <= wk->seq; s++)
                for (size_t i = 0; i < n; i++)
                        if (wk->recent[s % RECENT].seq == s && strcmp(wk->recent[s % RECENT].uuid, watch[i]) == 0)
                                return true;
        return false;
}

int sf_compute_wake_park(sf_compute_wake_t *wk, const char *inst, const char *ns, const char *const *watch, size_t n,
                         uint64_t seq) {
        int r = 0;

        if (!wk || !inst || (n && !watch))
                return -EINVAL;
        pthread_mutex_lock(&wk->mu);
        parked_drop(wk, inst, false);
        if (woken_since(wk, watch, n, seq)) {
                r = -EAGAIN;
                goto cleanup;
        }
        if (wk->nparked + n > wk->cap) {
                size_t cap = wk->cap ? wk->cap : 16;
                while (cap < wk->nparked + n)
                        cap *= 2;
                parked_t *p = realloc(wk->parked, cap * sizeof(*p));
                if (!p) {
                        r = -ENOMEM;
                        goto cleanup;
                }
                wk->parked = p;
                wk->cap = cap;
        }
        for (size_t i = 0; i < n; i++) {
                parked_t *p = &wk->parked[wk->nparked++];
                snprintf(p->watch, sizeof(p->watch), "%s", watch[i]);
                snprintf(p->inst, sizeof(p->inst), "%s", inst);
                snprintf(p->ns, sizeof(p->ns), "%s", ns ? ns : "");
        }
cleanup:
        pthread_mutex_unlock(&wk->mu);
        return r;
}

void sf_compute_wake_unpark(sf_compute_wake_t *wk, const char *inst) {
        if (!wk || !inst)
                return;
        pthread_mutex_lock(&wk->mu);
        parked_drop(wk, inst, false);
        pthread_mutex_unlock(&wk->mu);
}
