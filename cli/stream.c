/* See stream.h. */
#include "stream.h"
#include "sse.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct queued {
        sf_stream_event_t *ev;
        struct queued *next;
} queued_t;

struct sf_stream {
        sf_client_t *c;
        char *url;
        CURLM *m;
        CURL *h;                /* the connection; NULL between connections */
        struct curl_slist *hdrs;
        sf_sse_parser_t parser;
        long status;            /* of the current connection; 0 until known */
        int open, paused;
        char errbody[4096];     /* a non-200 answer's body, for the message */
        size_t errlen;
        long error_status;      /* status of the last in-stream error record (401: re-auth) */
        long long last_id;      /* last id handed out */
        double retry_at, backoff;
        volatile sig_atomic_t *stop;
        int announce;
        int down;               /* the last connection ended: the next one is a reconnect */
        queued_t *head, *tail;
        size_t qlen;
        unsigned long dropped;  /* malformed records of connections before this one */
};

static double mono_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A decimal id of at most 18 digits, else -1 (a hostile id is not an id). */
static long long id_parse(const char *s) {
        long long v = 0;
        size_t n = 0;
        if (!s || !*s)
                return -1;
        for (; s[n]; n++) {
                if (s[n] < '0' || s[n] > '9' || n >= 18)
                        return -1;
                v = v * 10 + (s[n] - '0');
        }
        return v;
}

void sf_stream_event_free(sf_stream_event_t *e) {
        if (!e)
                return;
        free(e->event);
        json_object_put(e->data);
        free(e);
}

static void on_record(const sf_sse_record_t *r, void *ud) {
        sf_stream_t *s = ud;
        sf_stream_event_t *e = calloc(1, sizeof(*e));
        queued_t *q = calloc(1, sizeof(*q));
        if (!e || !q || !(e->event = strdup(r->event ? r->event : "message"))) {
                free(q);
                sf_stream_event_free(e);
                return;
        }
        e->id = r->id ? id_parse(r->id) : -1;
        e->data = json_tokener_parse(r->data);
        if (e->data && !json_object_is_type(e->data, json_type_object)) {
                json_object_put(e->data);
                e->data = NULL;
        }
        if (!strcmp(e->event, "error") && e->data) {
                json_object *st;
                if (json_object_object_get_ex(e->data, "status", &st))
                        s->error_status = (long)json_object_get_int64(st);
        }
        q->ev = e;
        if (s->tail)
                s->tail->next = q;
        else
                s->head = q;
        s->tail = q;
        s->qlen++;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
        sf_stream_t *s = ud;
        size_t len = size * n;
        if (!s->status)
                curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
        if (s->status != 200) {
                size_t room = sizeof(s->errbody) - 1 - s->errlen;
                size_t k = len < room ? len : room;
                memcpy(s->errbody + s->errlen, p, k);
                s->errlen += k;
                s->errbody[s->errlen] = 0;
                return len;
        }
        if (s->qlen >= SF_STREAM_QUEUE) { /* the caller is behind: let TCP hold the rest */
                s->paused = 1;
                return CURL_WRITEFUNC_PAUSE;
        }
        s->open = 1;
        s->down = 0;
        s->backoff = 0;
        if (sf_sse_feed(&s->parser, p, len, on_record, s) < 0)
                return 0; /* out of memory: ends this connection; it is made again */
        return len;
}

static int stream_connect(sf_stream_t *s) {
        char auth[8192], last[64];
        if (!s->c->token && sf_client_authenticate(s->c) < 0)
                return -EPERM;
        s->h = curl_easy_init();
        if (!s->h)
                return -ENOMEM;
        curl_slist_free_all(s->hdrs);
        s->hdrs = NULL;
        snprintf(auth, sizeof(auth), "Authorization: %s", s->c->token);
        s->hdrs = curl_slist_append(s->hdrs, auth);
        s->hdrs = curl_slist_append(s->hdrs, "Accept: text/event-stream");
        if (s->last_id >= 0) {
                snprintf(last, sizeof(last), "Last-Event-ID: %lld", s->last_id);
                s->hdrs = curl_slist_append(s->hdrs, last);
        }
        curl_easy_setopt(s->h, CURLOPT_URL, s->url);
        curl_easy_setopt(s->h, CURLOPT_USERAGENT, SF_CLI_USER_AGENT);
        curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
        curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(s->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(s->h, CURLOPT_LOW_SPEED_TIME, (long)SF_STREAM_IDLE_S);
        curl_easy_setopt(s->h, CURLOPT_TCP_KEEPALIVE, 1L);
        s->status = 0;
        s->open = s->paused = 0;
        s->errlen = 0;
        s->error_status = 0;
        s->dropped += s->parser.dropped;
        sf_sse_parser_done(&s->parser); /* a record cut by the drop is sent again after last_id */
        if (s->c->verbose)
                fprintf(stderr, "GET %s (Last-Event-ID %lld)\n", s->url, s->last_id);
        if (s->announce && s->down && s->backoff <= 0.25) { /* the first attempt of an outage */
                if (s->last_id >= 0)
                        fprintf(stderr, "event stream: reconnecting after event %lld\n", s->last_id);
                else /* the server sends no id for what a filter leaves out: nothing to resume from */
                        fprintf(stderr, "event stream: reconnecting; no event received yet, so events of the "
                                        "outage are not replayed\n");
        }
        if (curl_multi_add_handle(s->m, s->h) != CURLM_OK) {
                curl_easy_cleanup(s->h);
                s->h = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* The connection ended: decide between reconnecting (later) and giving up. */
static int stream_ended(sf_stream_t *s, CURLcode res) {
        long status = s->status;
        int was_open = s->open;
        if (!status)
                curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(s->m, s->h);
        curl_easy_cleanup(s->h);
        s->h = NULL;
        if (status == 400 || status == 403 || status == 404) {
                if (s->announce) /* a wait just polls on: a server without the stream is no error */
                        sf_client_report(status, s->errbody);
                return -EPERM;
        }
        /* closed by the server (restart), refused, 503 (full), timed out: again, backing off
         * (a 401 too, after a new token: a server that keeps refusing is not hammered) */
        s->backoff = was_open ? 0.1 : s->backoff ? (s->backoff * 2 > 5 ? 5 : s->backoff * 2) : 0.25;
        if (status == 401 || s->error_status == 401) { /* token expired or key rotated */
                if (sf_client_authenticate(s->c) < 0)
                        return -EPERM;
                s->retry_at = mono_s() + (was_open ? 0 : s->backoff);
                return 0;
        }
        s->retry_at = mono_s() + s->backoff;
        if (s->announce && (was_open || !s->down)) /* once per outage */
                fprintf(stderr, "event stream: %s (%s); reconnecting\n", was_open ? "connection lost" : "cannot connect",
                        status && status != 200 ? "HTTP error"
                        : res == CURLE_OK       ? "closed by the server"
                                                : curl_easy_strerror(res));
        s->down = 1;
        return 0;
}

int sf_stream_open(sf_client_t *c, const char *type, const char *uuid, long long after,
                   volatile sig_atomic_t *stop, int announce, sf_stream_t **ret) {
        sf_stream_t *s = calloc(1, sizeof(*s));
        char *et = type ? sf_client_escape(type) : NULL, *eu = uuid ? sf_client_escape(uuid) : NULL;
        int r = -ENOMEM;
        if (!s)
                goto cleanup;
        s->c = c;
        s->last_id = after >= 0 ? after : -1;
        s->stop = stop;
        s->announce = announce;
        s->m = curl_multi_init();
        if (!s->m || asprintf(&s->url, "%s/events/stream%s%s%s%s%s%s", c->apiurl, et || eu ? "?" : "",
                              et ? "type=" : "", et ? et : "", et && eu ? "&" : "", eu ? "uuid=" : "",
                              eu ? eu : "") < 0)
                goto cleanup;
        s->retry_at = mono_s();
        *ret = s;
        s = NULL;
        r = 0;
cleanup:
        free(et);
        free(eu);
        sf_stream_free(s);
        return r;
}

int sf_stream_next(sf_stream_t *s, int timeout_ms, sf_stream_event_t **ret) {
        double deadline = mono_s() + timeout_ms / 1000.0;
        for (;;) {
                CURLMsg *msg;
                int running, left, r;
                double now, wait;
                if (s->head) {
                        queued_t *q = s->head;
                        s->head = q->next;
                        if (!s->head)
                                s->tail = NULL;
                        s->qlen--;
                        if (q->ev->id >= 0)
                                s->last_id = q->ev->id;
                        *ret = q->ev;
                        free(q);
                        return 0;
                }
                if (s->stop && *s->stop)
                        return -EINTR;
                if (s->paused && s->h) {
                        s->paused = 0;
                        curl_easy_pause(s->h, CURLPAUSE_CONT); /* may deliver at once */
                        continue;
                }
                now = mono_s();
                if (!s->h && now >= s->retry_at && (r = stream_connect(s)) < 0)
                        return r;
                curl_multi_perform(s->m, &running);
                while ((msg = curl_multi_info_read(s->m, &left)))
                        if (msg->msg == CURLMSG_DONE && msg->easy_handle == s->h &&
                            (r = stream_ended(s, msg->data.result)) < 0)
                                return r;
                if (s->head)
                        continue;
                now = mono_s();
                if (now >= deadline)
                        return -EAGAIN;
                wait = deadline - now;
                if (wait > 0.25) /* a Ctrl-C is seen within a quarter second */
                        wait = 0.25;
                if (s->h)
                        curl_multi_poll(s->m, NULL, 0, (int)(wait * 1000) + 1, NULL);
                else {
                        if (s->retry_at - now < wait)
                                wait = s->retry_at - now;
                        if (wait > 0)
                                usleep((useconds_t)(wait * 1e6));
                }
        }
}

int sf_stream_is_open(const sf_stream_t *s) {
        return s->open;
}

long long sf_stream_last_id(const sf_stream_t *s) {
        return s->last_id;
}

unsigned long sf_stream_dropped(const sf_stream_t *s) {
        return s->dropped + s->parser.dropped;
}

void sf_stream_free(sf_stream_t *s) {
        if (!s)
                return;
        if (s->h) {
                curl_multi_remove_handle(s->m, s->h);
                curl_easy_cleanup(s->h);
        }
        if (s->m)
                curl_multi_cleanup(s->m);
        while (s->head) {
                queued_t *q = s->head;
                s->head = q->next;
                sf_stream_event_free(q->ev);
                free(q);
        }
        curl_slist_free_all(s->hdrs);
        sf_sse_parser_done(&s->parser);
        free(s->url);
        free(s);
}
