#include "bus.h"

#include <errno.h>
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sf_bus {
        natsConnection *nc;
        jsCtx *js;
        _Atomic uint64_t reconnects;
        /* An async publish found no stream (the server lost its store): the next publish
         * creates the streams first. */
        atomic_bool streams_lost;
        _Atomic uint64_t async_failed;
};

static void on_reconnected(natsConnection *nc, void *closure) {
        sf_bus_t *b = closure;

        (void)nc;
        b->reconnects++;
}

struct sf_bus_sub {
        natsSubscription *sub;
        sf_bus_t *bus;
        char stream[64], durable[128], filter[256];
        int ack_wait_s;
};

struct sf_bus_msg {
        natsMsg *msg;
        uint64_t delivered, seq;
};

struct sf_bus_follow {
        natsSubscription *sub;
};

static int nats_errno(natsStatus s) {
        switch (s) {
        case NATS_OK:
                return 0;
        case NATS_TIMEOUT:
                return -ETIMEDOUT;
        case NATS_NO_MEMORY:
                return -ENOMEM;
        case NATS_NOT_FOUND:
                return -ENOENT;
        case NATS_CONNECTION_CLOSED:
        case NATS_NO_SERVER:
        case NATS_CONNECTION_DISCONNECTED:
                return -ENOTCONN;
        case NATS_CONNECTION_AUTH_FAILED:
        case NATS_NOT_PERMITTED:
                return -EACCES;
        default:
                return -EIO;
        }
}

/* An async publish the server refused or did not acknowledge in time (on the client's
 * own thread).  Its data is in Redis already (events are stored first): it is only
 * missing from the stream's live copy, as a failed synchronous publish would be. */
static void on_async_error(jsCtx *js, jsPubAckErr *pae, void *closure) {
        sf_bus_t *b = closure;

        (void)js;
        b->async_failed++;
        if (pae->Err == NATS_NO_RESPONDERS)
                atomic_store(&b->streams_lost, true);
        fprintf(stderr, "bus: async publish on %s failed: %s\n",
                pae->Msg ? natsMsg_GetSubject(pae->Msg) : "?",
                pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
}

int sf_bus_connect(const char *url, const char *user, const char *password, sf_bus_t **ret) {
        natsOptions *opts = NULL;
        jsOptions jo;
        sf_bus_t *b = calloc(1, sizeof(*b));
        natsStatus s;
        int r = -ENOMEM;

        if (!b)
                goto cleanup;
        s = natsOptions_Create(&opts);
        if (s == NATS_OK)
                s = natsOptions_SetURL(opts, url);
        /* Reconnect for ever: the bus may restart under us; Redis keeps the truth. */
        if (s == NATS_OK && user && *user)
                s = natsOptions_SetUserInfo(opts, user, password ? password : "");
        else if (s == NATS_OK && password && *password)
                s = natsOptions_SetToken(opts, password);
        if (s == NATS_OK)
                s = natsOptions_SetMaxReconnect(opts, -1);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectWait(opts, 250);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, 2000);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectedCB(opts, on_reconnected, b);
        if (s == NATS_OK)
                s = natsConnection_Connect(&b->nc, opts);
        if (s == NATS_OK) {
                jsOptions_Init(&jo);
                jo.PublishAsync.ErrHandler = on_async_error;
                jo.PublishAsync.ErrHandlerClosure = b;
                /* Bounded: past this many unacknowledged, a publish waits (StallWait, 200 ms). */
                jo.PublishAsync.MaxPending = 4096;
                s = natsConnection_JetStream(&b->js, b->nc, &jo);
        }
        r = nats_errno(s);
        if (r < 0)
                goto cleanup;
        *ret = b;
        b = NULL;
cleanup:
        natsOptions_Destroy(opts);
        sf_bus_free(b);
        return r;
}

uint64_t sf_bus_reconnects(sf_bus_t *b) { return b->reconnects; }

void sf_bus_free(sf_bus_t *b) {
        if (!b)
                return;
        if (b->js) {
                /* Async publishes still in flight get their acks (bounded) before the end. */
                jsPubOptions po;

                jsPubOptions_Init(&po);
                po.MaxWait = 2000;
                if (natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED)
                        js_PublishAsyncComplete(b->js, &po);
        }
        jsCtx_Destroy(b->js);
        natsConnection_Destroy(b->nc);
        free(b);
}

static int ensure_stream(sf_bus_t *b, const char *name, const char *subject, jsRetentionPolicy ret,
                         int64_t max_age_ns, int64_t max_msgs_per_subject) {
        jsStreamConfig cfg;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        const char *subjects[1] = {subject};
        natsStatus s;

        jsStreamConfig_Init(&cfg);
        cfg.Name = name;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Retention = ret;
        cfg.MaxAge = max_age_ns;
        cfg.MaxMsgsPerSubject = max_msgs_per_subject;
        /* Dedupe window: a re-drive of an intent after this long is a new delivery. */
        cfg.Duplicates = (int64_t)30 * 1000000000LL;
        s = js_AddStream(&si, b->js, &cfg, NULL, &jerr);
        if (s != NATS_OK) {
                jsStreamInfo_Destroy(si);
                si = NULL;
                s = js_UpdateStream(&si, b->js, &cfg, NULL, &jerr);
        }
        jsStreamInfo_Destroy(si);
        if (s != NATS_OK) {
                fprintf(stderr, "bus: stream %s: %s (jerr %d)\n", name, natsStatus_GetText(s),
                        (int)jerr);
                return nats_errno(s);
        }
        return 0;
}

int sf_bus_ensure_streams(sf_bus_t *b) {
        int r = ensure_stream(b, SF_BUS_INTENTS, "sf.intent.>", js_WorkQueuePolicy, 0, -1);
        if (r < 0)
                return r;
        /* Events are also kept per object in Redis; the stream is for live followers. */
        return ensure_stream(b, SF_BUS_EVENTS, "sf.event.>", js_LimitsPolicy,
                             (int64_t)7 * 24 * 3600 * 1000000000LL, 1000);
}

int sf_bus_publish(sf_bus_t *b, const char *subject, const char *msg_id, const void *data,
                   size_t len) {
        jsPubOptions po;
        jsErrCode jerr = 0;
        natsStatus s = NATS_OK;

        /* Disconnected: fail at once rather than hold a caller for the publish timeout;
         * callers keep the truth in Redis and re-drive. */
        if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
                return -ENOTCONN;
        jsPubOptions_Init(&po);
        po.MsgId = msg_id;
        po.MaxWait = 5000;
        for (int attempt = 0; attempt < 2; attempt++) {
                jsPubAck *pa = NULL;
                s = js_Publish(&pa, b->js, subject, data, (int)len, &po, &jerr);
                jsPubAck_Destroy(pa);
                /* No stream answers: the server lost its store (or never had it). */
                if (s != NATS_NO_RESPONDERS || attempt > 0 || sf_bus_ensure_streams(b) < 0)
                        break;
        }
        return nats_errno(s);
}

int sf_bus_publish_async(sf_bus_t *b, const char *subject, const void *data, size_t len) {
        jsPubOptions po;
        natsStatus s;

        if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
                return -ENOTCONN;
        if (atomic_exchange(&b->streams_lost, false))
                sf_bus_ensure_streams(b);
        jsPubOptions_Init(&po);
        po.MaxWait = 5000; /* no ack by then: on_async_error */
        s = js_PublishAsync(b->js, subject, data, (int)len, &po);
        return nats_errno(s);
}

int sf_bus_async_flush(sf_bus_t *b, int timeout_ms) {
        jsPubOptions po;

        jsPubOptions_Init(&po);
        po.MaxWait = timeout_ms;
        return nats_errno(js_PublishAsyncComplete(b->js, &po));
}

uint64_t sf_bus_async_failed(sf_bus_t *b) { return b->async_failed; }

int sf_bus_consumer(sf_bus_t *b, const char *stream, const char *durable, const char *filter,
                    int ack_wait_s, sf_bus_sub_t **ret) {
        jsConsumerConfig cc;
        jsConsumerInfo *ci = NULL;
        jsSubOptions so;
        jsErrCode jerr = 0;
        sf_bus_sub_t *sub = NULL;
        natsStatus s;
        int r;

        jsConsumerConfig_Init(&cc);
        cc.Durable = durable;
        cc.AckPolicy = js_AckExplicit;
        cc.FilterSubject = filter;
        cc.AckWait = (int64_t)ack_wait_s * 1000000000LL;
        cc.MaxDeliver = -1;
        cc.MaxAckPending = 1000;
        s = js_AddConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
        if (s != NATS_OK) {
                /* It exists with another config (e.g. ack wait changed): update it. */
                jsConsumerInfo_Destroy(ci);
                ci = NULL;
                s = js_UpdateConsumer(&ci, b->js, stream, &cc, NULL, &jerr);
        }
        jsConsumerInfo_Destroy(ci);
        if (s != NATS_OK) {
                fprintf(stderr, "bus: consumer %s: %s (jerr %d)\n", durable, natsStatus_GetText(s),
                        (int)jerr);
                return nats_errno(s);
        }
        sub = calloc(1, sizeof(*sub));
        if (!sub)
                return -ENOMEM;
        sub->bus = b;
        snprintf(sub->stream, sizeof(sub->stream), "%s", stream);
        snprintf(sub->durable, sizeof(sub->durable), "%s", durable);
        snprintf(sub->filter, sizeof(sub->filter), "%s", filter);
        sub->ack_wait_s = ack_wait_s;
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Consumer = durable;
        s = js_PullSubscribe(&sub->sub, b->js, filter, durable, NULL, &so, &jerr);
        r = nats_errno(s);
        if (r < 0) {
                free(sub);
                return r;
        }
        *ret = sub;
        return 0;
}

int sf_bus_sub_check(sf_bus_sub_t **subp) {
        sf_bus_sub_t *old = *subp, *fresh = NULL;
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus s;
        int r;

        if (natsConnection_Status(old->bus->nc) != NATS_CONN_STATUS_CONNECTED)
                return -ENOTCONN;
        s = js_GetConsumerInfo(&ci, old->bus->js, old->stream, old->durable, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
        if (s == NATS_OK)
                return 0;
        if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr && jerr != JSStreamNotFoundErr)
                return nats_errno(s);
        /* The server lost the stream or the consumer: make both again and re-bind. */
        r = sf_bus_ensure_streams(old->bus);
        if (r == 0)
                r = sf_bus_consumer(old->bus, old->stream, old->durable, old->filter, old->ack_wait_s, &fresh);
        if (r < 0)
                return r;
        sf_bus_sub_free(old);
        *subp = fresh;
        return 1;
}

void sf_bus_sub_free(sf_bus_sub_t *s) {
        if (!s)
                return;
        /* Destroy, never Unsubscribe: unsubscribing deletes a library-made durable. */
        natsSubscription_Destroy(s->sub);
        free(s);
}

int sf_bus_fetch_many(sf_bus_sub_t *s, int max, int timeout_ms, sf_bus_msg_t **ret, int *ret_n) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus st;
        int n = 0;

        *ret_n = 0;
        if (max < 1)
                return -EINVAL;
        st = natsSubscription_Fetch(&list, s->sub, max, timeout_ms, &jerr);
        if (st != NATS_OK || list.Count == 0) {
                natsMsgList_Destroy(&list);
                return st == NATS_OK || st == NATS_TIMEOUT ? -ETIMEDOUT : nats_errno(st);
        }
        for (int i = 0; i < list.Count && n < max; i++) {
                jsMsgMetaData *meta = NULL;
                sf_bus_msg_t *m = calloc(1, sizeof(*m));

                if (!m)
                        break; /* the rest is redelivered after the ack wait */
                m->msg = list.Msgs[i];
                list.Msgs[i] = NULL;
                m->delivered = 1;
                if (natsMsg_GetMetaData(&meta, m->msg) == NATS_OK) {
                        m->delivered = meta->NumDelivered;
                        m->seq = meta->Sequence.Stream;
                        jsMsgMetaData_Destroy(meta);
                }
                ret[n++] = m;
        }
        natsMsgList_Destroy(&list);
        *ret_n = n;
        return n > 0 ? 0 : -ENOMEM;
}

int sf_bus_fetch(sf_bus_sub_t *s, int timeout_ms, sf_bus_msg_t **ret) {
        int n = 0, r = sf_bus_fetch_many(s, 1, timeout_ms, ret, &n);

        if (r == -ETIMEDOUT)
                return r;
        return r < 0 ? r : 0;
}

const void *sf_bus_msg_data(sf_bus_msg_t *m, size_t *ret_len) {
        *ret_len = (size_t)natsMsg_GetDataLength(m->msg);
        return natsMsg_GetData(m->msg);
}

const char *sf_bus_msg_subject(sf_bus_msg_t *m) { return natsMsg_GetSubject(m->msg); }

uint64_t sf_bus_msg_delivered(sf_bus_msg_t *m) { return m->delivered; }

const char *sf_bus_msg_id(sf_bus_msg_t *m) {
        const char *v = NULL;

        if (natsMsgHeader_Get(m->msg, "Nats-Msg-Id", &v) != NATS_OK)
                return NULL;
        return v;
}

int sf_bus_ack(sf_bus_msg_t *m) { return nats_errno(natsMsg_AckSync(m->msg, NULL, NULL)); }

int sf_bus_nak(sf_bus_msg_t *m, int delay_ms) {
        return nats_errno(delay_ms > 0 ? natsMsg_NakWithDelay(m->msg, delay_ms, NULL)
                                       : natsMsg_Nak(m->msg, NULL));
}

int sf_bus_term(sf_bus_msg_t *m) { return nats_errno(natsMsg_Term(m->msg, NULL)); }

int sf_bus_progress(sf_bus_msg_t *m) { return nats_errno(natsMsg_InProgress(m->msg, NULL)); }

void sf_bus_msg_free(sf_bus_msg_t *m) {
        if (!m)
                return;
        natsMsg_Destroy(m->msg);
        free(m);
}

uint64_t sf_bus_msg_seq(sf_bus_msg_t *m) { return m->seq; }

int sf_bus_follow(sf_bus_t *b, const char *stream, const char *filter, uint64_t start_seq,
                  sf_bus_follow_t **ret) {
        jsSubOptions so;
        jsErrCode jerr = 0;
        sf_bus_follow_t *f;
        natsStatus s;

        if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
                return -ENOTCONN;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Ordered = true;
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = start_seq ? start_seq : 1;
        s = js_SubscribeSync(&f->sub, b->js, filter, NULL, &so, &jerr);
        if (s != NATS_OK) {
                fprintf(stderr, "bus: follow %s: %s (jerr %d)\n", stream, natsStatus_GetText(s), (int)jerr);
                free(f);
                return nats_errno(s);
        }
        *ret = f;
        return 0;
}

int sf_bus_follow_next(sf_bus_follow_t *f, int timeout_ms, sf_bus_msg_t **ret) {
        jsMsgMetaData *meta = NULL;
        natsMsg *msg = NULL;
        sf_bus_msg_t *m;
        natsStatus s;

        s = natsSubscription_NextMsg(&msg, f->sub, timeout_ms);
        if (s != NATS_OK)
                return nats_errno(s);
        m = calloc(1, sizeof(*m));
        if (!m) {
                natsMsg_Destroy(msg);
                return -ENOMEM;
        }
        m->msg = msg;
        m->delivered = 1;
        if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
                m->seq = meta->Sequence.Stream;
                jsMsgMetaData_Destroy(meta);
        }
        *ret = m;
        return 0;
}

void sf_bus_follow_free(sf_bus_follow_t *f) {
        if (!f)
                return;
        /* Ephemeral: unsubscribing deletes the consumer at once instead of leaving it to
         * the server's inactivity timer. */
        natsSubscription_Unsubscribe(f->sub);
        natsSubscription_Destroy(f->sub);
        free(f);
}

int sf_bus_stream_seqs(sf_bus_t *b, const char *stream, uint64_t *ret_first, uint64_t *ret_last) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s;

        if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
                return -ENOTCONN;
        s = js_GetStreamInfo(&si, b->js, stream, NULL, &jerr);
        if (s != NATS_OK)
                return nats_errno(s);
        /* An empty stream may report first 0; what matters is "nothing before last + 1". */
        *ret_last = si->State.LastSeq;
        *ret_first = si->State.Msgs ? si->State.FirstSeq : si->State.LastSeq + 1;
        jsStreamInfo_Destroy(si);
        return 0;
}

struct sf_bus_watch {
        natsSubscription *sub;
        sf_bus_watch_fn cb;
        void *ud;
};

static void on_watch_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure) {
        sf_bus_watch_t *w = closure;

        (void)nc, (void)sub;
        w->cb(natsMsg_GetSubject(m), natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), w->ud);
        natsMsg_Destroy(m);
}

int sf_bus_watch(sf_bus_t *b, const char *filter, sf_bus_watch_fn cb, void *ud, sf_bus_watch_t **ret) {
        sf_bus_watch_t *w;
        natsStatus s;

        if (!b || !filter || !cb || !ret)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->cb = cb;
        w->ud = ud;
        s = natsConnection_Subscribe(&w->sub, b->nc, filter, on_watch_msg, w);
        if (s != NATS_OK) {
                free(w);
                return nats_errno(s);
        }
        *ret = w;
        return 0;
}

void sf_bus_watch_free(sf_bus_watch_t *w) {
        if (!w)
                return;
        /* Drain waits for a callback already running (Unsubscribe would not). */
        if (natsSubscription_Drain(w->sub) == NATS_OK)
                natsSubscription_WaitForDrainCompletion(w->sub, 5000);
        else
                natsSubscription_Unsubscribe(w->sub);
        natsSubscription_Destroy(w->sub);
        free(w);
}
