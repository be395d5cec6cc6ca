/* Bench: fan-out latency of GET /events/stream.  N subscribers (one epoll thread, raw
 * sockets) follow the stream with a system token; a publisher thread emits E events
 * through sf_event_emit (Redis + JetStream, as sf's daemons do) at R a second, each
 * carrying its number in extra.  Latency = receipt by a subscriber - the time just before
 * the emit (one clock: same process).  Prints one JSON object:
 *   {"subscribers", "events", "samples", "missed", "p50_ms", "p99_ms", "max_ms"}
 * Usage: sse_fanout PORT TOKEN [subscribers=200] [events=400] [rate=40]
 * Env: the SF_* settings of the node (Redis, NATS) for the publisher. */
#include "ctx.h"
#include "event.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MARK "\"bench_seq\": "

typedef struct {
        int fd;
        bool headers_done, hello;
        /* chunked decoding */
        enum { CH_SIZE, CH_DATA, CH_DATA_END } ch;
        size_t ch_left;
        char sizebuf[32];
        size_t sizelen;
        /* the current line of the decoded stream */
        char line[8192];
        size_t linelen;
        char hdr[4];
        size_t got;
} sub_t;

static int nevents = 400, rate = 40, nsubs = 200;
static int64_t *pub_at;        /* publish time of event i (epoch us), 0 = not yet */
static double *lat;            /* samples, ms */
static size_t nlat;
static unsigned char *seen;    /* seen[sub * nevents + i] */

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *publisher(void *arg) {
        sf_ctx_t *ctx = arg;
        char uuid[SF_UUID_LEN];

        sf_uuid_new(uuid);
        for (int i = 0; i < nevents; i++) {
                json_object *extra = json_object_new_object();
                struct timespec ts = {0, 1000000000L / rate};

                json_object_object_add(extra, "bench_seq", json_object_new_int(i));
                __atomic_store_n(&pub_at[i], sf_now_us(), __ATOMIC_RELEASE);
                sf_event_emit(ctx, "instance", uuid, "system", "status", "bench", extra, -1);
                json_object_put(extra);
                nanosleep(&ts, NULL);
        }
        return NULL;
}

static void line_done(sub_t *s, size_t idx, double t) {
        char *p;
        long i;

        s->line[s->linelen] = 0;
        if (strcmp(s->line, ": sf event stream") == 0)
                s->hello = true;
        if (strncmp(s->line, "data: ", 6) != 0 || !(p = strstr(s->line, MARK)))
                return;
        i = strtol(p + strlen(MARK), NULL, 10);
        if (i < 0 || i >= nevents || seen[idx * (size_t)nevents + (size_t)i])
                return;
        seen[idx * (size_t)nevents + (size_t)i] = 1;
        lat[nlat++] = (t - (double)__atomic_load_n(&pub_at[i], __ATOMIC_ACQUIRE) / 1e6) * 1000.0;
}

static void decoded(sub_t *s, size_t idx, const char *d, size_t n, double t) {
        for (size_t k = 0; k < n; k++) {
                if (d[k] == '\n') {
                        line_done(s, idx, t);
                        s->linelen = 0;
                } else if (s->linelen + 1 < sizeof(s->line)) {
                        s->line[s->linelen++] = d[k];
                }
        }
}

/* Raw bytes: skip the response head, then undo the chunked encoding. */
static void feed(sub_t *s, size_t idx, const char *b, size_t n, double t) {
        size_t k = 0;

        while (!s->headers_done && k < n) {
                memmove(s->hdr, s->hdr + 1, 3);
                s->hdr[3] = b[k++];
                if (memcmp(s->hdr, "\r\n\r\n", 4) == 0)
                        s->headers_done = true;
        }
        while (k < n) {
                if (s->ch == CH_SIZE) {
                        char c = b[k++];
                        if (c == '\n') {
                                s->sizebuf[s->sizelen] = 0;
                                s->ch_left = strtoul(s->sizebuf, NULL, 16);
                                s->sizelen = 0;
                                s->ch = s->ch_left ? CH_DATA : CH_DATA_END;
                        } else if (c != '\r' && s->sizelen + 1 < sizeof(s->sizebuf)) {
                                s->sizebuf[s->sizelen++] = c;
                        }
                } else if (s->ch == CH_DATA) {
                        size_t m = n - k < s->ch_left ? n - k : s->ch_left;
                        decoded(s, idx, b + k, m, t);
                        k += m;
                        s->ch_left -= m;
                        if (!s->ch_left)
                                s->ch = CH_DATA_END;
                } else {
                        if (b[k++] == '\n')
                                s->ch = CH_SIZE;
                }
        }
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct epoll_event evs[256];
        pthread_t pub;
        sf_ctx_t ctx;
        sub_t *subs;
        char req[2048];
        int ep, port, hellos = 0;
        double deadline;
        size_t missed;

        if (argc < 3) {
                fprintf(stderr, "usage: sse_fanout PORT TOKEN [subscribers] [events] [rate]\n");
                return 2;
        }
        port = atoi(argv[1]);
        if (argc > 3)
                nsubs = atoi(argv[3]);
        if (argc > 4)
                nevents = atoi(argv[4]);
        if (argc > 5)
                rate = atoi(argv[5]);
        if (nsubs < 1 || nevents < 1 || rate < 1)
                return 2;
        if (sf_ctx_open(&ctx, true, 10) < 0)
                return 1;
        subs = calloc((size_t)nsubs, sizeof(*subs));
        pub_at = calloc((size_t)nevents, sizeof(*pub_at));
        lat = calloc((size_t)nsubs * (size_t)nevents, sizeof(*lat));
        seen = calloc((size_t)nsubs * (size_t)nevents, 1);
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!subs || !pub_at || !lat || !seen || ep < 0)
                return 1;
        sa.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        snprintf(req, sizeof(req),
                 "GET /events/stream?type=instance HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
                 argv[2]);
        for (int i = 0; i < nsubs; i++) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
                int one = 1;

                subs[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (subs[i].fd < 0 || connect(subs[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                        perror("connect");
                        return 1;
                }
                setsockopt(subs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (write(subs[i].fd, req, strlen(req)) != (ssize_t)strlen(req))
                        return 1;
                fcntl(subs[i].fd, F_SETFL, O_NONBLOCK);
                epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
        }
        /* Every subscriber connected (the stream's opening comment) before publishing. */
        deadline = now_s() + 30;
        while (hellos < nsubs && now_s() < deadline) {
                int n = epoll_wait(ep, evs, 256, 200);
                for (int k = 0; k < n; k++) {
                        size_t i = evs[k].data.u64;
                        char b[65536];
                        ssize_t r = read(subs[i].fd, b, sizeof(b));
                        bool had = subs[i].hello;

                        if (r > 0)
                                feed(&subs[i], i, b, (size_t)r, now_s());
                        if (!had && subs[i].hello)
                                hellos++;
                }
        }
        if (hellos < nsubs) {
                fprintf(stderr, "only %d of %d subscribers connected\n", hellos, nsubs);
                return 1;
        }
        pthread_create(&pub, NULL, publisher, &ctx);
        deadline = now_s() + (double)nevents / rate + 10;
        while (nlat < (size_t)nsubs * (size_t)nevents && now_s() < deadline) {
                int n = epoll_wait(ep, evs, 256, 200);
                for (int k = 0; k < n; k++) {
                        size_t i = evs[k].data.u64;
                        char b[65536];
                        ssize_t r = read(subs[i].fd, b, sizeof(b));
                        double t = now_s();

                        if (r > 0)
                                feed(&subs[i], i, b, (size_t)r, t);
                }
        }
        pthread_join(pub, NULL);
        missed = (size_t)nsubs * (size_t)nevents - nlat;
        qsort(lat, nlat, sizeof(*lat), cmp_double);
        printf("{\"subscribers\": %d, \"events\": %d, \"rate\": %d, \"samples\": %zu, \"missed\": %zu, "
               "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
               nsubs, nevents, rate, nlat, missed, nlat ? lat[nlat / 2] : -1.0,
               nlat ? lat[(size_t)((double)nlat * 0.99)] : -1.0, nlat ? lat[nlat - 1] : -1.0);
        for (int i = 0; i < nsubs; i++)
                close(subs[i].fd);
        sf_ctx_close(&ctx);
        return missed ? 1 : 0;
}
