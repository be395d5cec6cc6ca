/* sf-api: rate limit and aggregated audit of POST /auth (see authguard.h). */
#include "authguard.h"

#include "api.h"
#include "event.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RATE_SLOTS 4096  /* client addresses the rate limit tracks at once */
#define AUDIT_SLOTS 1024 /* (namespace, address) pairs counted at once */
#define AUDIT_TICK_MS 1000
/* A namespace's failures from addresses that found the table full are counted here. */
#define AUDIT_SEVERAL "several addresses"

typedef struct audit_slot {
        char ns[64];
        char addr[64];
        long long count;
        int64_t first_ms;
        bool used;
} audit_slot_t;

static sf_ratelimit_t *limiter;
static int audit_window_ms = 60000;

static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t audit_wake = PTHREAD_COND_INITIALIZER;
static audit_slot_t audit_slots[AUDIT_SLOTS];
static long long audit_dropped; /* failures that found no slot at all */
static pthread_t audit_thread;
static bool audit_running, audit_stopping;

int sf_authguard_init(const sf_config_t *cfg) {
        sf_ratelimit_t *rl = NULL;
        int r;

        r = sf_ratelimit_new(RATE_SLOTS, (unsigned)cfg->auth_rate_per_min, (unsigned)cfg->auth_burst, &rl);
        if (r < 0)
                return r;
        sf_ratelimit_free(limiter);
        limiter = rl;
        audit_window_ms = cfg->auth_audit_window_s * 1000;
        return 0;
}

/* One bucket per IPv4 address, per IPv6 /64 (one host usually owns a whole /64). */
static void rate_key(const char *addr, char *out, size_t outlen) {
        struct in6_addr a6;

        if (inet_pton(AF_INET6, addr, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
                memset(a6.s6_addr + 8, 0, 8);
                inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen);
                strncat(out, "/64", outlen - strlen(out) - 1);
                return;
        }
        snprintf(out, outlen, "%s", *addr ? addr : "unknown");
}

int sf_authguard_admit(const sf_http_req_t *req, sf_http_resp_t *resp) {
        char key[SF_RATELIMIT_KEY_MAX];
        int64_t retry_ms = 1000;
        int r;

        if (!limiter)
                return 0;
        rate_key(req->remote_addr, key, sizeof(key));
        if (sf_ratelimit_take(limiter, key, sf_mono_ms(), &retry_ms) == 0)
                return 0;
        r = sf_http_error(resp, 429, "too many authentication attempts, retry later");
        if (r < 0)
                return r;
        resp->retry_after = (int)((retry_ms + 999) / 1000);
        return -EAGAIN;
}

static void audit_write(const audit_slot_t *a, int64_t now_ms) {
        _cleanup_json_ json_object *extra = json_object_new_object();
        sf_ctx_t *ctx = sf_api_ctx();
        long long secs = (now_ms - a->first_ms + 999) / 1000;
        char msg[256];

        if (!ctx || !extra)
                return;
        snprintf(msg, sizeof(msg), "%lld failed authentication attempts from %s in the last %lld s",
                 a->count, a->addr, secs);
        json_object_object_add(extra, "remote-address", json_object_new_string(a->addr));
        json_object_object_add(extra, "attempts", json_object_new_int64(a->count));
        json_object_object_add(extra, "seconds", json_object_new_int64(secs));
        sf_event_emit(ctx, "namespace", a->ns, a->ns, "audit", msg, extra, -1);
}

/* Take up to max slots whose window is over (all of them if flush_all) out of the table. */
static size_t audit_collect(audit_slot_t *out, size_t max, int64_t now_ms, bool flush_all) {
        size_t n = 0;

        for (size_t i = 0; i < AUDIT_SLOTS && n < max; i++) {
                audit_slot_t *a = &audit_slots[i];

                if (!a->used || (!flush_all && now_ms - a->first_ms < audit_window_ms))
                        continue;
                out[n++] = *a;
                memset(a, 0, sizeof(*a));
        }
        return n;
}

static void *audit_main(void *arg) {
        static audit_slot_t batch[AUDIT_SLOTS]; /* only this thread uses it */
        bool last = false;

        (void)arg;
        pthread_mutex_lock(&audit_lock);
        while (!last) {
                struct timespec ts;
                long long dropped;
                int64_t now;
                size_t n;

                clock_gettime(CLOCK_REALTIME, &ts); /* the condition variable's clock */
                ts.tv_sec += AUDIT_TICK_MS / 1000;
                while (!audit_stopping && pthread_cond_timedwait(&audit_wake, &audit_lock, &ts) == 0)
                        ;
                last = audit_stopping;
                now = sf_mono_ms();
                /* The cap bounds Redis writes whatever the attack; a late pair just reports
                 * a longer window. Shutdown writes everything. */
                n = audit_collect(batch, last ? AUDIT_SLOTS : SF_AUTHGUARD_EVENTS_PER_S, now, last);
                dropped = audit_dropped;
                audit_dropped = 0;
                pthread_mutex_unlock(&audit_lock);
                for (size_t i = 0; i < n; i++)
                        audit_write(&batch[i], now);
                if (dropped)
                        log_warn("auth: %lld failed attempts not audited (table of %d pairs full)", dropped,
                                 AUDIT_SLOTS);
                pthread_mutex_lock(&audit_lock);
        }
        pthread_mutex_unlock(&audit_lock);
        return NULL;
}

static audit_slot_t *audit_slot_find(const char *ns, const char *addr, bool create) {
        audit_slot_t *free_slot = NULL;

        for (size_t i = 0; i < AUDIT_SLOTS; i++) {
                audit_slot_t *a = &audit_slots[i];

                if (!a->used) {
                        if (!free_slot)
                                free_slot = a;
                } else if (strcmp(a->ns, ns) == 0 && strcmp(a->addr, addr) == 0) {
                        return a;
                }
        }
        if (!create || !free_slot)
                return NULL;
        free_slot->used = true;
        snprintf(free_slot->ns, sizeof(free_slot->ns), "%s", ns);
        snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
        free_slot->first_ms = sf_mono_ms();
        return free_slot;
}

void sf_authguard_failed(const char *ns, const char *addr) {
        audit_slot_t *a;

        if (!ns)
                return;
        if (!addr || !*addr)
                addr = "unknown";
        pthread_mutex_lock(&audit_lock);
        if (!audit_running && !audit_stopping) {
                /* Thread attributes are the defaults: a failure only means no aggregation. */
                if (pthread_create(&audit_thread, NULL, audit_main, NULL) == 0)
                        audit_running = true;
                else
                        log_err("auth: cannot start the audit thread");
        }
        a = audit_slot_find(ns, addr, true);
        if (!a)
                a = audit_slot_find(ns, AUDIT_SEVERAL, true);
        if (a)
                a->count++;
        else
                audit_dropped++;
        pthread_mutex_unlock(&audit_lock);
}

void sf_authguard_stop(void) {
        bool running;

        pthread_mutex_lock(&audit_lock);
        audit_stopping = true;
        running = audit_running;
        pthread_cond_broadcast(&audit_wake);
        pthread_mutex_unlock(&audit_lock);
        if (running)
                pthread_join(audit_thread, NULL);
        pthread_mutex_lock(&audit_lock);
        audit_running = false;
        pthread_mutex_unlock(&audit_lock);
}
