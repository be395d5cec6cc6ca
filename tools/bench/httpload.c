/* httpload: a small HTTP/1.1 load generator for `make bench`.
 *
 *   httpload [-c CONNS] [-d SECONDS] [-w WARMUP_S] [-H "Header: value"]... URL [PATH...]
 *
 * One thread, epoll, CONNS keep-alive connections to URL's host:port; each connection
 * sends one request at a time (no pipelining), cycling through the fixed request list
 * (the PATHs, or URL's own path). Every request's latency (send to last body byte) is
 * recorded; after the warm-up, for SECONDS, and the summary is one JSON object on
 * stdout: requests, errors (non-2xx or broken connections), rps, p50/p90/p99/max in ms.
 * Responses must carry Content-Length (sf-api's always do). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define MAX_PATHS   4096
#define RBUF_START  (64 * 1024)

typedef struct conn {
        int fd;
        size_t req;            /* index of the request in flight */
        char *out;             /* request bytes still to send */
        size_t out_len, out_off;
        char *in;              /* grows to hold the largest response */
        size_t in_len, in_cap;
        int64_t sent_ns;
        bool busy;
} conn_t;

typedef struct load {
        struct sockaddr_storage addr;
        socklen_t addrlen;
        char host[256];
        char **reqs;           /* the request texts, built once */
        size_t *req_lens;
        size_t nreqs, next;
        int epfd;
        /* latencies of the measured window, ns */
        int64_t *lat;
        size_t nlat, caplat;
        uint64_t errors, reconnects;
        int64_t measure_from, measure_until;
} load_t;

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

static int record_latency(load_t *l, int64_t ns) {
        if (l->nlat == l->caplat) {
                size_t cap = l->caplat ? l->caplat * 2 : 1 << 16;
                int64_t *n = realloc(l->lat, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                l->lat = n;
                l->caplat = cap;
        }
        l->lat[l->nlat++] = ns;
        return 0;
}

/* http://host:port/path -> address and path; only plain http. */
static int url_split(const char *url, load_t *l, char *path, size_t pathlen) {
        const char *p = url, *hs, *he, *ps;
        char port[8] = "80";
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;

        if (strncmp(p, "http://", 7) != 0)
                return -EINVAL;
        hs = p + 7;
        ps = strchr(hs, '/');
        he = ps ? ps : hs + strlen(hs);
        snprintf(path, pathlen, "%s", ps ? ps : "/");
        snprintf(l->host, sizeof(l->host), "%.*s", (int)(he - hs), hs);
        {
                char *colon = strrchr(l->host, ':');

                if (colon) {
                        snprintf(port, sizeof(port), "%s", colon + 1);
                        *colon = 0;
                }
        }
        if (getaddrinfo(l->host, port, &hints, &ai) != 0 || !ai)
                return -EHOSTUNREACH;
        memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
        l->addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
        /* Host header keeps the port */
        snprintf(l->host, sizeof(l->host), "%.*s", (int)(he - hs), hs);
        return 0;
}

static int conn_open(load_t *l, conn_t *c) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        int one = 1;

        c->fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (struct sockaddr *)&l->addr, l->addrlen) < 0 && errno != EINPROGRESS)
                return -errno;
        c->in_len = 0;
        c->busy = false;
        return epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void conn_close(load_t *l, conn_t *c) {
        if (c->fd >= 0) {
                epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
        }
        c->fd = -1;
}

static void conn_start_request(load_t *l, conn_t *c) {
        c->req = l->next;
        l->next = (l->next + 1) % l->nreqs;
        c->out = l->reqs[c->req];
        c->out_len = l->req_lens[c->req];
        c->out_off = 0;
        c->busy = true;
        c->sent_ns = now_ns();
}

static int conn_send(conn_t *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                c->out_off += (size_t)n;
        }
        return 0;
}

/* A complete response in c->in: its total length and status, else 0 (need more), -1 bad. */
static ssize_t response_complete(conn_t *c, int *status, bool *close_after) {
        char *end, *p;
        long clen = -1;
        size_t hlen;

        c->in[c->in_len] = 0;
        end = strstr(c->in, "\r\n\r\n");
        if (!end)
                return 0;
        hlen = (size_t)(end - c->in) + 4;
        if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1)
                return -1;
        *close_after = false;
        for (p = strstr(c->in, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
                if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
                        clen = strtol(p + 17, NULL, 10);
                else if (strncasecmp(p + 2, "Connection: close", 17) == 0)
                        *close_after = true;
        }
        if (clen < 0)
                return -1;
        if (c->in_len < hlen + (size_t)clen)
                return 0;
        return (ssize_t)(hlen + (size_t)clen);
}

/* Read what is there; on a complete response record it and start the next request. */
static int conn_receive(load_t *l, conn_t *c, bool stopping) {
        for (;;) {
                int status = 0;
                bool close_after = false;
                ssize_t n, done;

                if (c->in_cap - c->in_len < 16384) {
                        char *nb = realloc(c->in, c->in_cap * 2);

                        if (!nb)
                                return -ENOMEM;
                        c->in = nb;
                        c->in_cap *= 2;
                }
                n = recv(c->fd, c->in + c->in_len, c->in_cap - 1 - c->in_len, 0);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (n == 0)
                        return -ECONNRESET;
                c->in_len += (size_t)n;
                done = response_complete(c, &status, &close_after);
                if (done < 0)
                        return -EPROTO;
                if (done == 0)
                        continue;
                {
                        int64_t t = now_ns();

                        if (c->sent_ns >= l->measure_from && t <= l->measure_until) {
                                if (status < 200 || status >= 300)
                                        l->errors++;
                                else if (record_latency(l, t - c->sent_ns) < 0)
                                        return -ENOMEM;
                        }
                }
                memmove(c->in, c->in + done, c->in_len - (size_t)done);
                c->in_len -= (size_t)done;
                c->busy = false;
                if (close_after)
                        return -ECONNRESET;
                if (stopping)
                        return 0;
                conn_start_request(l, c);
                return conn_send(c);
        }
}

static int build_requests(load_t *l, char **paths, size_t npaths, char **headers, size_t nheaders) {
        l->reqs = calloc(npaths, sizeof(char *));
        l->req_lens = calloc(npaths, sizeof(size_t));
        if (!l->reqs || !l->req_lens)
                return -ENOMEM;
        for (size_t i = 0; i < npaths; i++) {
                char buf[8192];
                size_t used = (size_t)snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: %s\r\n", paths[i], l->host);

                for (size_t h = 0; h < nheaders && used < sizeof(buf); h++)
                        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s\r\n", headers[h]);
                if (used < sizeof(buf))
                        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "\r\n");
                if (used >= sizeof(buf))
                        return -E2BIG;
                l->reqs[i] = strdup(buf);
                if (!l->reqs[i])
                        return -ENOMEM;
                l->req_lens[i] = used;
        }
        l->nreqs = npaths;
        return 0;
}

static double pct_ms(const int64_t *v, size_t n, double p) {
        size_t i;

        if (!n)
                return 0;
        i = (size_t)(p * (double)(n - 1) + 0.5);
        return (double)v[i] / 1e6;
}

static void usage(void) {
        fprintf(stderr, "usage: httpload [-c conns] [-d seconds] [-w warmup_seconds] [-H 'Name: value']... "
                        "http://host:port/path [path...]\n");
        exit(2);
}

int main(int argc, char **argv) {
        load_t l = {.epfd = -1};
        char *headers[MAX_HEADERS], *paths[MAX_PATHS], first[4096];
        size_t nheaders = 0, npaths = 0;
        int nconns = 16, opt, r = 0;
        double dur = 5, warm = 1;
        conn_t *conns;
        int64_t start, end;

        while ((opt = getopt(argc, argv, "c:d:w:H:")) != -1) {
                switch (opt) {
                case 'c': nconns = atoi(optarg); break;
                case 'd': dur = atof(optarg); break;
                case 'w': warm = atof(optarg); break;
                case 'H':
                        if (nheaders == MAX_HEADERS)
                                usage();
                        headers[nheaders++] = optarg;
                        break;
                default: usage();
                }
        }
        if (optind >= argc || nconns < 1 || nconns > 10000 || dur <= 0 || warm < 0)
                usage();
        if (url_split(argv[optind], &l, first, sizeof(first)) < 0) {
                fprintf(stderr, "httpload: bad or unresolvable URL %s\n", argv[optind]);
                return 2;
        }
        if (optind + 1 == argc)
                paths[npaths++] = first;
        for (int i = optind + 1; i < argc && npaths < MAX_PATHS; i++)
                paths[npaths++] = argv[i];
        if (build_requests(&l, paths, npaths, headers, nheaders) < 0) {
                fprintf(stderr, "httpload: cannot build requests\n");
                return 1;
        }
        l.epfd = epoll_create1(EPOLL_CLOEXEC);
        conns = calloc((size_t)nconns, sizeof(*conns));
        if (l.epfd < 0 || !conns)
                return 1;
        start = now_ns();
        l.measure_from = start + (int64_t)(warm * 1e9);
        l.measure_until = l.measure_from + (int64_t)(dur * 1e9);
        for (int i = 0; i < nconns; i++) {
                conns[i].in = malloc(RBUF_START);
                conns[i].in_cap = RBUF_START;
                if (!conns[i].in || (r = conn_open(&l, &conns[i])) < 0) {
                        fprintf(stderr, "httpload: connect: %s\n", strerror(conns[i].in ? -r : ENOMEM));
                        return 1;
                }
                conn_start_request(&l, &conns[i]);
        }
        for (;;) {
                struct epoll_event evs[256];
                int64_t t = now_ns();
                bool stopping = t >= l.measure_until;
                int n;

                if (stopping) {
                        bool any = false;

                        for (int i = 0; i < nconns; i++)
                                any |= conns[i].busy && conns[i].fd >= 0;
                        /* let requests sent inside the window finish, but not for ever */
                        if (!any || t > l.measure_until + 5000000000LL)
                                break;
                }
                n = epoll_wait(l.epfd, evs, 256, 100);
                for (int i = 0; i < n; i++) {
                        conn_t *c = evs[i].data.ptr;

                        r = 0;
                        if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN))
                                r = -ECONNRESET;
                        if (!r && evs[i].events & EPOLLOUT) {
                                r = conn_send(c);
                                if (!r && c->out_off == c->out_len) {
                                        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

                                        epoll_ctl(l.epfd, EPOLL_CTL_MOD, c->fd, &ev);
                                }
                        }
                        if (!r && evs[i].events & EPOLLIN)
                                r = conn_receive(&l, c, stopping);
                        if (r == -ENOMEM)
                                return 1;
                        if (r < 0) {
                                /* count a broken in-flight request and carry on with a new connection */
                                if (c->busy && c->sent_ns >= l.measure_from)
                                        l.errors++;
                                conn_close(&l, c);
                                if (stopping)
                                        continue;
                                l.reconnects++;
                                if (conn_open(&l, c) < 0)
                                        continue;
                                conn_start_request(&l, c);
                        } else if (c->busy && c->out_off < c->out_len) {
                                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};

                                epoll_ctl(l.epfd, EPOLL_CTL_MOD, c->fd, &ev);
                        }
                }
        }
        end = l.measure_until;
        qsort(l.lat, l.nlat, sizeof(*l.lat), cmp_i64);
        printf("{\"connections\": %d, \"requests\": %zu, \"errors\": %llu, \"reconnects\": %llu, "
               "\"duration_s\": %.3f, \"rps\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
               "\"max_ms\": %.3f}\n",
               nconns, l.nlat, (unsigned long long)l.errors, (unsigned long long)l.reconnects,
               (double)(end - l.measure_from) / 1e9, (double)l.nlat / ((double)(end - l.measure_from) / 1e9),
               pct_ms(l.lat, l.nlat, 0.50), pct_ms(l.lat, l.nlat, 0.90), pct_ms(l.lat, l.nlat, 0.99),
               l.nlat ? (double)l.lat[l.nlat - 1] / 1e6 : 0.0);
        for (int i = 0; i < nconns; i++) {
                conn_close(&l, &conns[i]);
                free(conns[i].in);
        }
        for (size_t i = 0; i < l.nreqs; i++)
                free(l.reqs[i]);
        free(l.reqs);
        free(l.req_lens);
        free(l.lat);
        free(conns);
        close(l.epfd);
        return 0;
}
