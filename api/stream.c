/* GET /events/stream: the live event stream (docs/events-stream.md).
 *
 * One hub per sf-api process: a thread follows JetStream's SF_EVENTS (an ordered consumer
 * on sf.event.>), decodes each message once into its SSE text ("id: <seq>\ndata: <json>\n\n")
 * and appends it to a bounded ring indexed by position (the ring's events are in stream
 * order).  Each subscriber is only a cursor into that ring: its connection's fill callback
 * copies the events it may see, and when there is nothing left the connection is suspended
 * (sf_http_stream) until the hub wakes it.  So a subscriber costs no thread, the hub never
 * waits for a subscriber, and an event is serialised once however many read it.
 *
 * Resume (Last-Event-ID: N) starts the cursor after N when the ring still holds N + 1;
 * older events are read from JetStream by one catch-up thread (never the hub), up to the
 * first event the ring holds, and the cursor is placed there: no gap, no duplicate.
 *
 * Locks, always taken in this order: hub.subs_lock -> sub->lock; sub->lock is never held
 * while taking ring_lock by the hub, and the fill callback takes ring_lock (read) without
 * holding anything else. */
#include "api.h"

#include "bus.h"
#include "event.h"
#include "json.h"
#include "log.h"
#include "sf.pb-c.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_FILTER "sf.event.>"
#define CT_SSE "text/event-stream"
#define STREAM_HELLO ": sf event stream\n\n"
#define STREAM_KEEPALIVE ": keepalive\n\n"
#define TRUST_CACHE 16
/* Missed events held for one resuming subscriber; beyond, it is told to re-read. */
#define CATCHUP_MAX_BYTES (32u * 1024 * 1024)
#define CATCHUP_WAIT_MS 2000
#define RETRY_AFTER_S 5
#define STREAM_CHECK_MS 5000
#define REAP_MS 1000

typedef struct {
        uint64_t seq;
        char ns[64], objtype[32], uuid[64];
        char *text; /* "id: N\ndata: {...}\n\n" */
        size_t len;
} stream_event_t;

typedef struct subscriber subscriber_t;
struct subscriber {
        subscriber_t *prev, *next;  /* hub.subs, under hub.subs_lock */
        sf_http_stream_t *st;       /* NULL once MHD freed it (under hub.subs_lock) */
        int refs;                   /* the response, and the catch-up thread while queued */
        sf_caller_t caller;
        char *authorization;        /* re-checked every heartbeat */
        char objtype[32], uuid[64]; /* filters; "" = any */
        pthread_mutex_t lock;       /* cursor, idle, catching_up */
        uint64_t cursor;            /* next ring position to read */
        bool idle;                  /* fill found nothing: the hub may skip it past invisible events */
        bool catching_up;           /* the catch-up thread owns cursor and pending */
        uint64_t after_seq;         /* Last-Event-ID */
        bool dropped, ending;       /* dropped: too slow; ending: say pending, then end */
        char *pending;              /* bytes to send before reading the ring */
        size_t pending_len, pending_off;
        int64_t next_check_ms;      /* heartbeat and token re-check due */
        struct {
                char ns[64];
                bool trusted;
        } trust[TRUST_CACHE];       /* namespaces that trust (or not) the caller; cleared per check */
        size_t ntrust;
        subscriber_t *cq_next;      /* catch-up queue */
};

static struct {
        pthread_mutex_t start_lock;
        bool started, stopping;
        sf_config_t cfg;
        sf_bus_t *bus;
        pthread_t thread, catchup_thread;

        pthread_rwlock_t ring_lock;
        stream_event_t *ring;
        size_t cap, count;  /* positions [pos - count, pos) are held */
        uint64_t pos;       /* events ever appended */
        uint64_t next_seq;  /* the stream sequence the hub expects next */

        pthread_mutex_t subs_lock;
        pthread_cond_t catchup_wake;
        subscriber_t *subs, *cq_head, *cq_tail;
        size_t nsubs;
} hub = {
        .start_lock = PTHREAD_MUTEX_INITIALIZER,
        .ring_lock = PTHREAD_RWLOCK_INITIALIZER,
        .subs_lock = PTHREAD_MUTEX_INITIALIZER,
        .catchup_wake = PTHREAD_COND_INITIALIZER,
};

/* Object types whose events a namespace sees when they are its own (api.md §1.5: what it
 * could GET).  namespace: by trust; node, blob and anything else: system only. */
static const char *const OWN_TYPES[] = {"instance", "network", "networkinterface", "artifact"};
static const char *const ALL_TYPES[] = {"instance", "network", "networkinterface", "artifact",
                                        "namespace", "node", "blob"};

static bool type_in(const char *t, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(t, list[i]) == 0)
                        return true;
        return false;
}

/* ---- the ring ---- */

/* Ring position of the first event with seq > after_seq, if the ring can answer: it holds
 * after_seq + 1 (or everything after it is yet to come).  Under ring_lock. */
static bool ring_position_after(uint64_t after_seq, uint64_t *ret_pos) {
        uint64_t lo = hub.pos - hub.count, hi = hub.pos;

        if (hub.count == 0 || after_seq + 1 < hub.ring[lo % hub.cap].seq) {
                if (hub.count == 0 && after_seq + 1 >= hub.next_seq) {
                        *ret_pos = hub.pos;
                        return true;
                }
                return false;
        }
        while (lo < hi) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (hub.ring[mid % hub.cap].seq <= after_seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_pos = lo;
        return true;
}

/* The SSE record of one bus message: the api.md §5 record plus where it happened. */
static int event_decode(uint64_t seq, const void *data, size_t len, stream_event_t *ret) {
        Sf__Event *ev = sf__event__unpack(NULL, len, data);
        _cleanup_json_ json_object *o = NULL;
        json_object *extra;
        _cleanup_free_ char *json = NULL;
        char ts[32];
        int n;

        if (!ev)
                return -EBADMSG;
        o = json_object_new_object();
        snprintf(ts, sizeof(ts), "%.6f", ev->timestamp);
        extra = json_tokener_parse(ev->extra_json ? ev->extra_json : "{}");
        if (!extra)
                extra = json_object_new_string(ev->extra_json ? ev->extra_json : "");
        json_object_object_add(o, "type", json_object_new_string(ev->type ?: ""));
        /* The stored record's text: GET .../events shows the same number. */
        json_object_object_add(o, "timestamp", json_object_new_double_s(ev->timestamp, ts));
        json_object_object_add(o, "fqdn", json_object_new_string(ev->fqdn ?: ""));
        json_object_object_add(o, "duration", ev->has_duration ? json_object_new_double(ev->duration) : NULL);
        json_object_object_add(o, "message", json_object_new_string(ev->message ?: ""));
        json_object_object_add(o, "extra", extra);
        json_object_object_add(o, "object_type", json_object_new_string(ev->object_type ?: ""));
        json_object_object_add(o, "object_uuid", json_object_new_string(ev->object_uuid ?: ""));
        json_object_object_add(o, "namespace", json_object_new_string(ev->ns ?: ""));
        memset(ret, 0, sizeof(*ret));
        ret->seq = seq;
        snprintf(ret->ns, sizeof(ret->ns), "%s", ev->ns ?: "");
        snprintf(ret->objtype, sizeof(ret->objtype), "%s", ev->object_type ?: "");
        snprintf(ret->uuid, sizeof(ret->uuid), "%s", ev->object_uuid ?: "");
        sf__event__free_unpacked(ev, NULL);
        json = sf_json_dumps(o);
        if (!json)
                return -ENOMEM;
        n = asprintf(&ret->text, "id: %" PRIu64 "\ndata: %s\n\n", seq, json);
        if (n < 0)
                return -ENOMEM;
        ret->len = (size_t)n;
        return 0;
}

/* ---- visibility ---- */

/* What can be decided without Redis: filters, own namespace, system.  A namespace event of
 * another namespace passes (its trust is checked in sub_sees). */
static bool sub_may_see(const subscriber_t *s, const stream_event_t *e) {
        if (s->objtype[0] && strcmp(s->objtype, e->objtype) != 0)
                return false;
        if (s->uuid[0] && strcmp(s->uuid, e->uuid) != 0)
                return false;
        if (s->caller.system)
                return true;
        if (strcmp(e->objtype, "namespace") == 0)
                return true;
        return type_in(e->objtype, OWN_TYPES, SF_ARRAY_SIZE(OWN_TYPES)) && strcmp(e->ns, s->caller.ns) == 0;
}

/* 1 visible, 0 not, -EAGAIN: a namespace's trust must be read first (sub_trust_load). */
static int sub_sees(const subscriber_t *s, const stream_event_t *e) {
        if (!sub_may_see(s, e))
                return 0;
        if (s->caller.system || strcmp(e->objtype, "namespace") != 0 || strcmp(e->uuid, s->caller.ns) == 0)
                return 1;
        for (size_t i = 0; i < s->ntrust; i++)
                if (strcmp(s->trust[i].ns, e->uuid) == 0)
                        return s->trust[i].trusted;
        return -EAGAIN;
}

/* Does namespace ns trust the caller?  Read from Redis (by the calling thread) and kept
 * until the next check; a read error means "no" this time. */
static void sub_trust_load(subscriber_t *s, const char *ns) {
        _cleanup_json_ json_object *doc = NULL;
        sf_ctx_t *ctx = sf_api_ctx();
        bool trusted = ctx && sf_store_get(ctx->store, "namespace", ns, &doc, NULL) == 0 &&
                       sf_api_trusted_by(&s->caller, doc);

        if (s->ntrust == TRUST_CACHE)
                s->ntrust = 0;
        snprintf(s->trust[s->ntrust].ns, sizeof(s->trust[0].ns), "%s", ns);
        s->trust[s->ntrust++].trusted = trusted;
}

/* ---- subscribers ---- */

static void sub_discard(subscriber_t *s);

static void sub_unref(subscriber_t *s) {
        /* under hub.subs_lock */
        if (--s->refs > 0)
                return;
        sub_discard(s);
}

/* MHD is done with the response: forget the stream handle, leave the hub. */
static void sub_free(void *ud) {
        subscriber_t *s = ud;

        pthread_mutex_lock(&hub.subs_lock);
        s->st = NULL;
        if (s->prev)
                s->prev->next = s->next;
        else if (hub.subs == s)
                hub.subs = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->prev = s->next = NULL;
        hub.nsubs--;
        sub_unref(s);
        pthread_mutex_unlock(&hub.subs_lock);
}

static int pending_append(subscriber_t *s, const char *text, size_t len) {
        char *p;

        if (s->pending_off && s->pending_off == s->pending_len) {
                s->pending_len = s->pending_off = 0;
        }
        p = realloc(s->pending, s->pending_len + len + 1);
        if (!p)
                return -ENOMEM;
        memcpy(p + s->pending_len, text, len);
        s->pending = p;
        s->pending_len += len;
        p[s->pending_len] = 0;
        return 0;
}

/* An `event: error` record (it has no id: it is not a stream event). */
static void pending_error(subscriber_t *s, int status, const char *msg) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ char *json = NULL, *text = NULL;
        int n;

        json_object_object_add(o, "error", json_object_new_string(msg));
        json_object_object_add(o, "status", json_object_new_int(status));
        json = sf_json_dumps(o);
        if (json && (n = asprintf(&text, "event: error\ndata: %s\n\n", json)) > 0)
                pending_append(s, text, (size_t)n);
}

/* The token must still be valid, its key, nonce and namespace still there (deleting or
 * rotating them ends the stream).  Trusts are read again from now on. */
static bool sub_still_allowed(subscriber_t *s) {
        sf_http_req_t req = {.authorization = s->authorization};
        sf_http_resp_t resp = {0};
        sf_caller_t caller;
        int r;

        s->ntrust = 0;
        if ((long)time(NULL) >= s->caller.exp) {
                pending_error(s, 401, "Signature has expired");
                return false;
        }
        r = sf_api_auth(&req, &resp, &caller);
        free(resp.body);
        if (r == -EACCES) {
                pending_error(s, 401, "token no longer valid (key or namespace deleted or rotated)");
                return false;
        }
        /* Any other failure (Redis down) is "don't know": keep streaming, check again. */
        return true;
}

static size_t pending_copy(subscriber_t *s, char *buf, size_t max) {
        size_t n = s->pending_len - s->pending_off;

        if (n > max)
                n = max;
        memcpy(buf, s->pending + s->pending_off, n);
        s->pending_off += n;
        if (s->pending_off == s->pending_len) {
                free(s->pending);
                s->pending = NULL;
                s->pending_len = s->pending_off = 0;
        }
        return n;
}

/* The next heartbeat, or the token's expiry if that comes first. */
static void sub_next_check(subscriber_t *s) {
        int64_t in_ms = (int64_t)hub.cfg.stream_heartbeat_s * 1000, to_exp = ((int64_t)s->caller.exp - time(NULL)) * 1000;

        if (to_exp >= 0 && to_exp < in_ms)
                in_ms = to_exp;
        s->next_check_ms = sf_mono_ms() + in_ms;
}

/* MHD wants bytes (on its thread).  Order: what is pending (catch-up, the rest of an event,
 * an error), the heartbeat and token check when due, then the ring from the cursor. */
static ssize_t sub_fill(void *ud, char *buf, size_t max) {
        subscriber_t *s = ud;
        char need_ns[64] = "";
        uint64_t cursor, end = 0;
        size_t n = 0;
        bool too_slow = false;

        pthread_mutex_lock(&s->lock);
        if (s->catching_up) {
                pthread_mutex_unlock(&s->lock);
                return 0;
        }
        s->idle = false;
        cursor = s->cursor;
        pthread_mutex_unlock(&s->lock);

        if (s->pending_len)
                return (ssize_t)pending_copy(s, buf, max);
        if (s->ending || __atomic_load_n(&s->dropped, __ATOMIC_ACQUIRE))
                return SF_HTTP_STREAM_END;
        if (sf_mono_ms() >= s->next_check_ms) {
                sub_next_check(s);
                if (!sub_still_allowed(s)) {
                        s->ending = true;
                        return (ssize_t)pending_copy(s, buf, max);
                }
                pending_append(s, STREAM_KEEPALIVE, strlen(STREAM_KEEPALIVE));
                return (ssize_t)pending_copy(s, buf, max);
        }

        for (;;) {
                pthread_rwlock_rdlock(&hub.ring_lock);
                end = hub.pos;
                if (cursor < hub.pos - hub.count) {
                        too_slow = true;
                } else {
                        for (; cursor < hub.pos && n < max; cursor++) {
                                const stream_event_t *e = &hub.ring[cursor % hub.cap];
                                int v = sub_sees(s, e);

                                if (v == -EAGAIN) {
                                        snprintf(need_ns, sizeof(need_ns), "%s", e->uuid);
                                        break;
                                }
                                if (v == 0)
                                        continue;
                                if (e->len > max - n) {
                                        if (n > 0)
                                                break; /* next call */
                                        /* Larger than MHD's block: the rest goes out next. */
                                        memcpy(buf, e->text, max);
                                        pending_append(s, e->text + max, e->len - max);
                                        n = max;
                                        cursor++;
                                        break;
                                }
                                memcpy(buf + n, e->text, e->len);
                                n += e->len;
                        }
                }
                pthread_rwlock_unlock(&hub.ring_lock);
                if (!need_ns[0] || too_slow)
                        break;
                /* Redis, outside the ring lock: the hub never waits for it. */
                sub_trust_load(s, need_ns);
                need_ns[0] = 0;
        }
        if (too_slow) {
                __atomic_store_n(&s->dropped, true, __ATOMIC_RELEASE);
                log_info("events/stream: %s/%s dropped: fell behind the ring", s->caller.ns, s->caller.keyname);
                return SF_HTTP_STREAM_END;
        }
        pthread_mutex_lock(&s->lock);
        s->cursor = cursor;
        s->idle = n == 0 && cursor == end;
        pthread_mutex_unlock(&s->lock);
        return (ssize_t)n;
}

/* ---- the hub ---- */

static void hub_notify(const stream_event_t *e, uint64_t at) {
        /* under hub.subs_lock */
        for (subscriber_t *s = hub.subs; s; s = s->next) {
                bool wake;
                uint64_t lag;

                if (!s->st || __atomic_load_n(&s->dropped, __ATOMIC_ACQUIRE))
                        continue;
                pthread_mutex_lock(&s->lock);
                if (s->catching_up) {
                        pthread_mutex_unlock(&s->lock);
                        continue;
                }
                wake = sub_may_see(s, e);
                if (!wake && s->idle && s->cursor == at)
                        s->cursor = at + 1; /* caught up and not for it: skip without waking */
                lag = at + 1 - s->cursor;
                wake = wake || s->cursor <= at;
                pthread_mutex_unlock(&s->lock);
                if (lag > (uint64_t)hub.cfg.stream_backlog) {
                        __atomic_store_n(&s->dropped, true, __ATOMIC_RELEASE);
                        log_info("events/stream: %s/%s dropped: %" PRIu64 " events behind", s->caller.ns,
                                 s->caller.keyname, lag);
                        sf_http_stream_abort(s->st);
                } else if (wake) {
                        sf_http_stream_wake(s->st);
                }
        }
}

/* Heartbeats: wake whoever is due (its fill writes the keepalive and re-checks the token).
 * With reap, also close the sleeping streams whose clients have left, so they do not hold
 * a place under the cap until their next heartbeats find out. */
static void hub_beats(bool reap) {
        int64_t now = sf_mono_ms();

        pthread_mutex_lock(&hub.subs_lock);
        for (subscriber_t *s = hub.subs; s; s = s->next) {
                if (!s->st)
                        continue;
                if (reap && sf_http_stream_reap(s->st))
                        continue;
                if (now >= s->next_check_ms)
                        sf_http_stream_wake(s->st);
        }
        pthread_mutex_unlock(&hub.subs_lock);
}

static void hub_append(sf_bus_msg_t *m) {
        uint64_t seq = sf_bus_msg_seq(m), at;
        stream_event_t e, *slot;
        const void *data;
        size_t len;

        data = sf_bus_msg_data(m, &len);
        if (event_decode(seq, data, len, &e) < 0) {
                log_warn("events/stream: message %" PRIu64 " is not an Event; skipped", seq);
                pthread_rwlock_wrlock(&hub.ring_lock);
                hub.next_seq = seq + 1;
                pthread_rwlock_unlock(&hub.ring_lock);
                return;
        }
        pthread_rwlock_wrlock(&hub.ring_lock);
        at = hub.pos;
        slot = &hub.ring[at % hub.cap];
        if (hub.count == hub.cap)
                free(slot->text);
        else
                hub.count++;
        *slot = e;
        hub.pos++;
        hub.next_seq = seq + 1;
        pthread_rwlock_unlock(&hub.ring_lock);
        pthread_mutex_lock(&hub.subs_lock);
        hub_notify(&e, at);
        pthread_mutex_unlock(&hub.subs_lock);
}

/* Was SF_EVENTS lost and made again (a JetStream store wiped)?  Its numbers then restart
 * below ours and the follower would wait for a sequence that comes much later. */
static bool hub_stream_restarted(void) {
        uint64_t first, last;

        return sf_bus_stream_seqs(hub.bus, SF_BUS_EVENTS, &first, &last) == 0 && last + 1 < hub.next_seq;
}

static void *hub_main(void *arg) {
        sf_bus_follow_t *f = NULL;
        int64_t last_beat = 0, last_reap = 0, last_stream_check = sf_mono_ms();

        (void)arg;
        while (!__atomic_load_n(&hub.stopping, __ATOMIC_ACQUIRE)) {
                sf_bus_msg_t *m = NULL;
                int r;

                if (!f) {
                        uint64_t first, last;

                        r = sf_bus_stream_seqs(hub.bus, SF_BUS_EVENTS, &first, &last);
                        if (r == 0 && last + 1 < hub.next_seq) {
                                /* The stream was lost and made again: its numbers restart. */
                                log_warn("events/stream: SF_EVENTS restarted at %" PRIu64, last + 1);
                                pthread_rwlock_wrlock(&hub.ring_lock);
                                hub.next_seq = last + 1;
                                pthread_rwlock_unlock(&hub.ring_lock);
                        }
                        if (r == 0)
                                r = sf_bus_follow(hub.bus, SF_BUS_EVENTS, STREAM_FILTER, hub.next_seq, &f);
                        if (r < 0) {
                                struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000000L};
                                nanosleep(&ts, NULL);
                                hub_beats(false);
                                continue;
                        }
                }
                r = sf_bus_follow_next(f, 250, &m);
                if (r == 0) {
                        if (sf_bus_msg_seq(m) >= hub.next_seq)
                                hub_append(m);
                        sf_bus_msg_free(m);
                } else if (r != -ETIMEDOUT) {
                        log_warn("events/stream: follower broke (%s); following again", strerror(-r));
                        sf_bus_follow_free(f);
                        f = NULL;
                }
                if (sf_mono_ms() - last_beat >= 250) {
                        last_beat = sf_mono_ms();
                        hub_beats(sf_mono_ms() - last_reap >= REAP_MS);
                        if (sf_mono_ms() - last_reap >= REAP_MS)
                                last_reap = sf_mono_ms();
                }
                if (f && sf_mono_ms() - last_stream_check >= STREAM_CHECK_MS) {
                        last_stream_check = sf_mono_ms();
                        if (hub_stream_restarted()) {
                                sf_bus_follow_free(f);
                                f = NULL; /* the next pass follows the new stream */
                        }
                }
        }
        sf_bus_follow_free(f);
        return NULL;
}

/* ---- catch-up (resume from JetStream) ---- */

/* Can the ring serve everything after seq?  Then the cursor goes there. */
static bool catchup_placed(uint64_t seq, uint64_t *ret_cursor) {
        bool placed;

        pthread_rwlock_rdlock(&hub.ring_lock);
        placed = ring_position_after(seq, ret_cursor);
        pthread_rwlock_unlock(&hub.ring_lock);
        return placed;
}

/* One missed event from JetStream into s's pending output, if s may see it. */
static void catchup_append(subscriber_t *s, sf_bus_msg_t *m) {
        stream_event_t e;
        const void *data;
        size_t len;
        int v;

        data = sf_bus_msg_data(m, &len);
        if (event_decode(sf_bus_msg_seq(m), data, len, &e) < 0)
                return;
        v = sub_sees(s, &e);
        if (v == -EAGAIN) {
                sub_trust_load(s, e.uuid);
                v = sub_sees(s, &e);
        }
        if (v == 1)
                pending_append(s, e.text, e.len);
        free(e.text);
}

/* Read the events after s->after_seq from the stream until the ring holds all that
 * follows the last one read (the check comes before each read, so an event the ring has
 * is never also sent from JetStream). */
static void catchup_one(subscriber_t *s) {
        sf_bus_follow_t *f = NULL;
        uint64_t first = 0, last = 0, cursor = 0, prev = s->after_seq;
        bool placed = false;
        int r;

        r = sf_bus_stream_seqs(hub.bus, SF_BUS_EVENTS, &first, &last);
        if (r == 0 && s->after_seq + 1 < first) {
                char msg[256];

                snprintf(msg, sizeof(msg),
                         "events after %" PRIu64 " are no longer kept (the stream starts at %" PRIu64
                         "); continuing with live events",
                         s->after_seq, first);
                pending_error(s, 410, msg);
        } else if (r == 0) {
                r = sf_bus_follow(hub.bus, SF_BUS_EVENTS, STREAM_FILTER, s->after_seq + 1, &f);
        }
        while (r == 0 && f && !(placed = catchup_placed(prev, &cursor))) {
                sf_bus_msg_t *m = NULL;

                r = sf_bus_follow_next(f, CATCHUP_WAIT_MS, &m);
                if (r < 0)
                        break;
                catchup_append(s, m);
                prev = sf_bus_msg_seq(m);
                sf_bus_msg_free(m);
                if (s->pending_len > CATCHUP_MAX_BYTES) {
                        pending_error(s, 413, "too many missed events to replay: read GET .../events, "
                                              "then reconnect without Last-Event-ID");
                        break;
                }
        }
        sf_bus_follow_free(f);
        if (r < 0 && !placed)
                pending_error(s, 503, "could not read the missed events; continuing with live events");
        pthread_rwlock_rdlock(&hub.ring_lock);
        if (!placed)
                cursor = hub.pos;
        pthread_rwlock_unlock(&hub.ring_lock);
        pthread_mutex_lock(&s->lock);
        s->cursor = cursor;
        s->catching_up = false;
        pthread_mutex_unlock(&s->lock);
}

static void *catchup_main(void *arg) {
        (void)arg;
        pthread_mutex_lock(&hub.subs_lock);
        for (;;) {
                subscriber_t *s;

                while (!hub.cq_head && !hub.stopping)
                        pthread_cond_wait(&hub.catchup_wake, &hub.subs_lock);
                if (!hub.cq_head)
                        break;
                s = hub.cq_head;
                hub.cq_head = s->cq_next;
                if (!hub.cq_head)
                        hub.cq_tail = NULL;
                if (s->st) {
                        pthread_mutex_unlock(&hub.subs_lock);
                        catchup_one(s);
                        pthread_mutex_lock(&hub.subs_lock);
                        if (s->st)
                                sf_http_stream_wake(s->st);
                } else {
                        pthread_mutex_lock(&s->lock);
                        s->catching_up = false;
                        pthread_mutex_unlock(&s->lock);
                }
                sub_unref(s);
        }
        pthread_mutex_unlock(&hub.subs_lock);
        return NULL;
}

/* Start the hub on first use: it follows from the stream's end (older events come from
 * JetStream on resume).  0, or a negative errno if the bus cannot be read. */
static int hub_start(sf_ctx_t *ctx) {
        uint64_t first, last;
        int r = 0;

        pthread_mutex_lock(&hub.start_lock);
        if (hub.started)
                goto cleanup;
        if (!ctx->bus) {
                r = -ENOTCONN;
                goto cleanup;
        }
        r = sf_bus_stream_seqs(ctx->bus, SF_BUS_EVENTS, &first, &last);
        if (r < 0)
                goto cleanup;
        hub.cfg = ctx->cfg;
        hub.bus = ctx->bus;
        hub.cap = (size_t)ctx->cfg.stream_ring;
        hub.ring = calloc(hub.cap, sizeof(*hub.ring));
        if (!hub.ring) {
                r = -ENOMEM;
                goto cleanup;
        }
        hub.next_seq = last + 1;
        hub.stopping = false;
        r = -pthread_create(&hub.thread, NULL, hub_main, NULL);
        if (r == 0) {
                r = -pthread_create(&hub.catchup_thread, NULL, catchup_main, NULL);
                if (r < 0) {
                        __atomic_store_n(&hub.stopping, true, __ATOMIC_RELEASE);
                        pthread_join(hub.thread, NULL);
                }
        }
        if (r < 0) {
                free(hub.ring);
                hub.ring = NULL;
                goto cleanup;
        }
        hub.started = true;
        log_info("events/stream: following %s from %" PRIu64, SF_BUS_EVENTS, hub.next_seq);
cleanup:
        pthread_mutex_unlock(&hub.start_lock);
        return r;
}

void sf_api_stream_stop(void) {
        pthread_mutex_lock(&hub.start_lock);
        if (hub.started) {
                pthread_mutex_lock(&hub.subs_lock);
                __atomic_store_n(&hub.stopping, true, __ATOMIC_RELEASE);
                pthread_cond_broadcast(&hub.catchup_wake);
                pthread_mutex_unlock(&hub.subs_lock);
                pthread_join(hub.thread, NULL);
                pthread_join(hub.catchup_thread, NULL);
                for (size_t i = 0; i < hub.cap; i++)
                        free(hub.ring[i].text);
                free(hub.ring);
                hub.ring = NULL;
                hub.count = 0;
                hub.started = false;
        }
        pthread_mutex_unlock(&hub.start_lock);
}

/* ---- GET /events/stream ---- */

typedef struct {
        const char *type, *uuid, *unknown;
} stream_args_t;

static enum MHD_Result stream_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        stream_args_t *a = cls;

        (void)kind;
        if (strcmp(key, "type") == 0)
                a->type = value ? value : "";
        else if (strcmp(key, "uuid") == 0)
                a->uuid = value ? value : "";
        else if (!a->unknown)
                a->unknown = key;
        return MHD_YES;
}

static bool filter_value_ok(const char *v) {
        size_t n = strlen(v);

        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f)
                        return false;
        return true;
}

static int after_seq_parse(const char *v, uint64_t *ret) {
        if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
                return -EINVAL;
        *ret = strtoull(v, NULL, 10);
        return 0;
}

/* A subscriber that never joined the hub (NULL is fine). */
static void sub_discard(subscriber_t *s) {
        if (!s)
                return;
        free(s->authorization);
        free(s->pending);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static void sub_discardp(subscriber_t **s) { sub_discard(*s); }

static int sub_new(const sf_caller_t *caller, const char *authorization, const stream_args_t *args,
                   uint64_t after, subscriber_t **ret) {
        subscriber_t *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        s->refs = 1;
        s->caller = *caller;
        s->after_seq = after;
        snprintf(s->objtype, sizeof(s->objtype), "%s", args->type ? args->type : "");
        snprintf(s->uuid, sizeof(s->uuid), "%s", args->uuid ? args->uuid : "");
        sub_next_check(s);
        s->authorization = strdup(authorization ? authorization : "");
        /* The response starts with a comment, so clients see the stream open at once. */
        if (!s->authorization || pending_append(s, STREAM_HELLO, strlen(STREAM_HELLO)) < 0) {
                sub_discard(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* Give s its response and join the hub: the cursor is placed and s listed in one step
 * (under subs_lock), so no event slips between the two; a resume the ring cannot serve
 * goes to the catch-up thread.  -EBUSY at the subscriber cap; on success the response
 * owns s. */
static int sub_join(subscriber_t *s, bool resume, unsigned write_timeout_s, size_t max_subs, sf_http_resp_t *resp) {
        uint64_t cursor = 0;
        bool placed = true;
        int r = 0;

        pthread_mutex_lock(&hub.subs_lock);
        if (hub.nsubs >= max_subs) {
                r = -EBUSY;
                goto cleanup;
        }
        pthread_rwlock_rdlock(&hub.ring_lock);
        if (resume)
                placed = ring_position_after(s->after_seq, &cursor);
        else
                cursor = hub.pos;
        pthread_rwlock_unlock(&hub.ring_lock);
        s->cursor = cursor;
        s->catching_up = !placed;
        r = sf_http_stream(resp, 200, CT_SSE, sub_fill, s, sub_free, write_timeout_s, &s->st);
        if (r < 0)
                goto cleanup;
        s->next = hub.subs;
        if (hub.subs)
                hub.subs->prev = s;
        hub.subs = s;
        hub.nsubs++;
        if (!placed) {
                s->refs++;
                if (hub.cq_tail)
                        hub.cq_tail->cq_next = s;
                else
                        hub.cq_head = s;
                hub.cq_tail = s;
                pthread_cond_signal(&hub.catchup_wake);
        }
cleanup:
        pthread_mutex_unlock(&hub.subs_lock);
        return r;
}

int sf_api_events_stream(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {NULL};
        __attribute__((cleanup(sub_discardp))) subscriber_t *s = NULL;
        sf_ctx_t *ctx = sf_api_ctx();
        stream_args_t args = {0};
        const char *last_id;
        uint64_t after = 0;
        sf_caller_t caller;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (!ctx || !req->conn)
                return -EIO;
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, stream_arg, &args);
        if (args.unknown)
                return sf_http_error(resp, 400, "unknown query parameter %s (known: type, uuid)", args.unknown);
        if (args.type && !type_in(args.type, ALL_TYPES, SF_ARRAY_SIZE(ALL_TYPES)))
                return sf_http_error(resp, 400, "unknown object type %s", args.type);
        if (args.uuid && !filter_value_ok(args.uuid))
                return sf_http_error(resp, 400, "invalid uuid filter");
        last_id = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Last-Event-ID");
        if (last_id && after_seq_parse(last_id, &after) < 0)
                return sf_http_error(resp, 400, "Last-Event-ID must be an event id (a stream sequence number)");
        r = hub_start(ctx);
        if (r < 0) {
                log_warn("events/stream: the event bus cannot be read: %s", strerror(-r));
                r = sf_http_error(resp, 503, "event stream unavailable, retry later");
                resp->retry_after = RETRY_AFTER_S;
                return r;
        }
        r = sub_new(&caller, req->authorization, &args, after, &s);
        if (r < 0)
                return r;
        r = sub_join(s, last_id != NULL, (unsigned)ctx->cfg.stream_write_timeout_s,
                     (size_t)ctx->cfg.stream_max_subscribers, resp);
        if (r == -EBUSY) {
                r = sf_http_error(resp, 503, "too many event stream subscribers, retry later");
                resp->retry_after = RETRY_AFTER_S;
                return r;
        }
        if (r < 0)
                return r;
        s = NULL; /* the response owns it */
        return 0;
}
