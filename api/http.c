#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "util.h"

/* Werkzeug's NotFound page, byte for byte (clients only see it on unknown URLs). */
static const char page_404[] =
        "<!doctype html>\n"
        "<html lang=en>\n"
        "<title>404 Not Found</title>\n"
        "<h1>Not Found</h1>\n"
        "<p>The requested URL was not found on the server. If you entered the URL manually "
        "please check your spelling and try again.</p>\n";
#define CT_JSON "application/json"
#define CT_HTML "text/html; charset=utf-8"
/* Beyond this much discarded body past the cap the connection is simply dropped. */
#define DISCARD_LIMIT (64u * 1024 * 1024)
/* Offload threads are CPU-bound (bcrypt): the lowest priority lets request threads preempt
 * them. Nice orders threads within the process's group (autogroup, service cgroup): other
 * processes do not starve them more than they would sf-api as a whole. */
#define OFFLOAD_NICE 19
#define OFFLOAD_RETRY_AFTER_S 1
/* A streaming response's socket buffer: small, so that what a client has not read piles
 * up where sf can see it (fill is not called) instead of in megabytes of kernel buffer. */
#define STREAM_SNDBUF (64 * 1024)
#define STREAM_BLOCK  (16 * 1024)
/* Connections at once: room for the event stream's subscribers (SF_STREAM_MAX_SUBSCRIBERS)
 * and the usual requests, spread over SF_HTTP_THREADS; fds are raised to match in main. */
#define CONNECTION_LIMIT 4096

typedef struct conn_ctx conn_ctx_t;

struct sf_http_stream {
        pthread_mutex_t lock;
        struct MHD_Connection *conn; /* set when queued */
        sf_http_server_t *srv;
        sf_http_stream_t *prev, *next; /* the server's live streams (resumed on stop) */
        bool suspended, wake_pending, closing, aborted;
        sf_http_fill_fn fill;
        void *ud;
        void (*ud_free)(void *ud);
        unsigned write_timeout_s;
};

struct sf_http_server {
        struct MHD_Daemon *d;
        const sf_http_route_t *routes;
        size_t nroutes;
        void *user;
        int port;
        /* The offload pool: a bounded FIFO of suspended connections. */
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t workers[SF_HTTP_OFFLOAD_THREADS];
        size_t nworkers;
        conn_ctx_t *queue[SF_HTTP_OFFLOAD_QUEUE];
        size_t qhead, qlen;
        bool stopping;
        sf_http_stream_t *streams; /* under lock */
};

/* Per-request state kept across MHD's access-handler calls. */
struct conn_ctx {
        const sf_http_route_t *route; /* NULL => 404/405 */
        bool path_known;
        int match_err;
        char *scratch;
        const char *params[SF_HTTP_MAX_PARAMS];
        size_t nparams;
        char *buf;
        size_t len, cap, max, discarded;
        bool too_big, raw;
        int64_t start_ms;
        /* Offloaded requests: what the pool thread needs, owned here since MHD's strings
         * are only borrowed for the call that hands the request over. */
        struct MHD_Connection *conn;
        char *method, *url, *authorization;
        json_object *body;
        sf_http_req_t req;
        sf_http_resp_t resp;
        sf_http_handler_fn offload;
        int handler_r;
        bool answered; /* the pool ran fn: answer when MHD calls us again */
};

static void json_putp(json_object **o) { if (*o) json_object_put(*o); }
#define _cleanup_jsonc_ __attribute__((cleanup(json_putp)))

/* ---- response helpers ---- */

static void resp_reset(sf_http_resp_t *r) {
        free(r->body);
        if (r->mhd)
                MHD_destroy_response(r->mhd); /* a stream's ud_free runs here */
        r->body = NULL;
        r->len = 0;
        r->mhd = NULL;
        r->stream = NULL;
        r->content_type = NULL;
}

static int resp_set(sf_http_resp_t *r, int status, const char *ct, char *body, size_t len) {
        resp_reset(r);
        r->status = status;
        r->content_type = ct;
        r->body = body;
        r->len = len;
        return 0;
}

int sf_http_json(sf_http_resp_t *r, int status, json_object *obj) {
        _cleanup_jsonc_ json_object *o = obj;
        _cleanup_free_ char *s = sf_json_dumps(o);
        char *body;
        size_t n;

        if (!s)
                return -ENOMEM;
        n = strlen(s);
        body = realloc(s, n + 2);
        if (!body)
                return -ENOMEM;
        s = NULL;
        body[n] = '\n';
        body[n + 1] = 0;
        return resp_set(r, status, CT_JSON, body, n + 1);
}

int sf_http_json_text(sf_http_resp_t *r, int status, char *text, size_t len) {
        return resp_set(r, status, CT_JSON, text, len);
}

int sf_http_json_borrowed(sf_http_resp_t *r, int status, const char *text, size_t len, void (*release)(void *),
                          void *cls) {
        resp_reset(r);
        r->mhd = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)text, release, cls);
        if (!r->mhd) {
                release(cls);
                return -ENOMEM;
        }
        MHD_add_response_header(r->mhd, MHD_HTTP_HEADER_CONTENT_TYPE, CT_JSON);
        r->status = status;
        return 0;
}

int sf_http_error(sf_http_resp_t *r, int status, const char *fmt, ...) {
        _cleanup_jsonc_ json_object *o = NULL;
        _cleanup_free_ char *msg = NULL;
        char *body;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        o = json_object_new_object();
        if (!o || json_object_object_add(o, "error", json_object_new_string(msg)) ||
            json_object_object_add(o, "status", json_object_new_int(status)))
                return -ENOMEM;
        body = sf_json_dumps(o);
        if (!body)
                return -ENOMEM;
        return resp_set(r, status, CT_JSON, body, strlen(body));
}

int sf_http_raw(sf_http_resp_t *r, int status, const char *content_type, const void *data, size_t len) {
        char *body = malloc(len + 1);

        if (!body)
                return -ENOMEM;
        if (len)
                memcpy(body, data, len);
        body[len] = 0;
        return resp_set(r, status, content_type, body, len);
}

int sf_http_file(sf_http_resp_t *r, int status, const char *content_type, int fd, uint64_t offset, uint64_t size) {
        resp_reset(r);
        r->mhd = MHD_create_response_from_fd_at_offset64(size, fd, offset);
        if (!r->mhd) {
                close(fd);
                return -ENOMEM;
        }
        MHD_add_response_header(r->mhd, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        r->status = status;
        return 0;
}

/* ---- streaming ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        sf_http_stream_t *st = cls;

        (void)pos;
        for (;;) {
                ssize_t n;
                bool again = false;

                pthread_mutex_lock(&st->lock);
                if (st->aborted || st->closing) {
                        bool aborted = st->aborted;
                        pthread_mutex_unlock(&st->lock);
                        return aborted ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
                }
                st->wake_pending = false;
                pthread_mutex_unlock(&st->lock);
                n = st->fill(st->ud, buf, max);
                if (n > 0)
                        return n;
                if (n < 0)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                /* Nothing now: sleep unless a wake came while fill ran (then look again). */
                pthread_mutex_lock(&st->lock);
                if (st->wake_pending || st->aborted || st->closing) {
                        again = true;
                } else {
                        st->suspended = true;
                        MHD_suspend_connection(st->conn);
                }
                pthread_mutex_unlock(&st->lock);
                if (!again)
                        return 0;
        }
}

static void stream_free(void *cls) {
        sf_http_stream_t *st = cls;
        sf_http_server_t *s = st->srv;

        /* First the owner forgets the handle, then nobody can wake it any more. */
        if (st->ud_free)
                st->ud_free(st->ud);
        if (s) {
                pthread_mutex_lock(&s->lock);
                if (st->prev)
                        st->prev->next = st->next;
                else if (s->streams == st)
                        s->streams = st->next;
                if (st->next)
                        st->next->prev = st->prev;
                pthread_mutex_unlock(&s->lock);
        }
        pthread_mutex_destroy(&st->lock);
        free(st);
}

int sf_http_stream(sf_http_resp_t *resp, int status, const char *content_type, sf_http_fill_fn fill, void *ud,
                   void (*ud_free)(void *ud), unsigned write_timeout_s, sf_http_stream_t **ret) {
        sf_http_stream_t *st = calloc(1, sizeof(*st));
        struct MHD_Response *mr;

        if (!st)
                return -ENOMEM;
        pthread_mutex_init(&st->lock, NULL);
        st->fill = fill;
        st->write_timeout_s = write_timeout_s;
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st, stream_free);
        if (!mr) {
                pthread_mutex_destroy(&st->lock);
                free(st);
                return -ENOMEM;
        }
        /* From here on the response owns st and ud. */
        st->ud = ud;
        st->ud_free = ud_free;
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(mr, "X-Accel-Buffering", "no"); /* proxies: do not buffer */
        resp_reset(resp);
        resp->status = status;
        resp->mhd = mr;
        resp->stream = st;
        if (ret)
                *ret = st;
        return 0;
}

void sf_http_stream_wake(sf_http_stream_t *st) {
        pthread_mutex_lock(&st->lock);
        if (st->suspended) {
                st->suspended = false;
                MHD_resume_connection(st->conn);
        } else {
                st->wake_pending = true;
        }
        pthread_mutex_unlock(&st->lock);
}

void sf_http_stream_abort(sf_http_stream_t *st) {
        pthread_mutex_lock(&st->lock);
        st->aborted = true;
        if (st->suspended) {
                st->suspended = false;
                MHD_resume_connection(st->conn);
        } else if (st->conn) {
                /* Blocked on a full socket, so fill is not called: make the next send fail.
                 * The fd is still this connection's: MHD closes it only after the response
                 * is freed, and the owner forgets this handle in ud_free. */
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (ci)
                        shutdown(ci->connect_fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&st->lock);
}

bool sf_http_stream_reap(sf_http_stream_t *st) {
        bool gone = false;

        pthread_mutex_lock(&st->lock);
        if (st->suspended && !st->aborted) {
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                char c;
                ssize_t n = ci ? recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) : 1;

                /* EOF or a reset: the client left.  Data or EAGAIN: still there. */
                gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
                if (gone) {
                        st->aborted = true;
                        st->suspended = false;
                        MHD_resume_connection(st->conn);
                }
        }
        pthread_mutex_unlock(&st->lock);
        return gone;
}

/* ---- routing ---- */

static bool method_matches(const char *route_method, const char *method) {
        return strcmp(route_method, method) == 0 ||
               (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* Match path against pattern segment by segment. Captures are copied NUL-terminated into
 * scratch. Returns the number of captures, -1 on mismatch, -2 if out of room. */
static int pattern_match(const char *pattern, const char *path, char *scratch, size_t scratch_len,
                         const char **params) {
        const char *p = pattern, *u = path;
        size_t used = 0;
        int np = 0;

        if (*p != '/' || *u != '/')
                return -1;
        while (*p && *u) {
                size_t pl, ul;

                if (*p != '/' || *u != '/')
                        return -1;
                p++, u++;
                pl = strcspn(p, "/");
                ul = strcspn(u, "/");
                if (pl == 2 && p[0] == '{' && p[1] == '}') {
                        if (ul == 0)
                                return -1;
                        if (np >= SF_HTTP_MAX_PARAMS || used + ul + 1 > scratch_len)
                                return -2;
                        memcpy(scratch + used, u, ul);
                        scratch[used + ul] = 0;
                        params[np++] = scratch + used;
                        used += ul + 1;
                } else if (pl != ul || memcmp(p, u, pl) != 0) {
                        return -1;
                }
                p += pl, u += ul;
        }
        return (*p || *u) ? -1 : np;
}

int sf_http_route_match(const sf_http_route_t *routes, size_t n, const char *method, const char *path,
                        char *scratch, size_t scratch_len, const char *params[SF_HTTP_MAX_PARAMS],
                        size_t *ret_nparams, const sf_http_route_t **ret_route, bool *ret_path_known) {
        const char *tmp[SF_HTTP_MAX_PARAMS];
        bool known = false, overflow = false;

        for (size_t i = 0; i < n; i++) {
                int np = pattern_match(routes[i].pattern, path, scratch, scratch_len, tmp);

                if (np == -2)
                        overflow = true;
                if (np < 0)
                        continue;
                known = true;
                if (!method_matches(routes[i].method, method))
                        continue;
                *ret_path_known = true;
                memcpy(params, tmp, sizeof(tmp[0]) * (size_t)np);
                *ret_nparams = (size_t)np;
                *ret_route = &routes[i];
                return 0;
        }
        *ret_path_known = known;
        return overflow && !known ? -ENAMETOOLONG : -ENOENT;
}

/* ---- request body helpers ---- */

int sf_http_check_keys(sf_http_req_t *req, sf_http_resp_t *resp, const char *const *allowed) {
        json_object_object_foreach(req->body, key, val) {
                const char *name = key;
                bool ok = false;

                (void)val;
                if (strcmp(key, "uuid") == 0) {
                        name = "passed_uuid";
                } else {
                        for (size_t i = 0; allowed && allowed[i]; i++)
                                if (strcmp(allowed[i], key) == 0)
                                        ok = true;
                }
                if (!ok) {
                        int r = sf_http_error(resp, 400, "%s() got an unexpected keyword argument '%s'",
                                              req->handler_name ? req->handler_name : "handler", name);
                        return r < 0 ? r : -EINVAL;
                }
        }
        return 0;
}

int sf_http_body_str(sf_http_req_t *req, const char *key, const char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(req->body, key, &v) || !v)
                return -ENOENT;
        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        *ret = json_object_get_string(v);
        return 0;
}

int sf_http_body_bool(sf_http_req_t *req, const char *key, bool def, bool *ret) {
        json_object *v;

        if (!json_object_object_get_ex(req->body, key, &v) || !v) {
                *ret = def;
                return 0;
        }
        if (json_object_is_type(v, json_type_boolean))
                *ret = json_object_get_boolean(v);
        else if (json_object_is_type(v, json_type_int))
                *ret = json_object_get_int64(v) != 0;
        else
                return -EINVAL;
        return 0;
}

int sf_http_body_int(sf_http_req_t *req, const char *key, int64_t def, int64_t *ret) {
        json_object *v;

        if (!json_object_object_get_ex(req->body, key, &v) || !v) {
                *ret = def;
                return 0;
        }
        switch (json_object_get_type(v)) {
        case json_type_int:
                *ret = json_object_get_int64(v);
                return 0;
        case json_type_double: {
                double d = json_object_get_double(v);

                /* Casting a NaN, an infinity or anything outside int64 is undefined:
                 * check the range first (2^63 is exact as a double). */
                if (!isfinite(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0 ||
                    d != (double)(int64_t)d)
                        return -EINVAL;
                *ret = (int64_t)d;
                return 0;
        }
        case json_type_string: {
                const char *s = json_object_get_string(v);
                char *end;
                long long n;

                while (isspace((unsigned char)*s))
                        s++;
                if (!*s)
                        return -EINVAL;
                errno = 0;
                n = strtoll(s, &end, 10);
                while (isspace((unsigned char)*end))
                        end++;
                if (errno || *end)
                        return -EINVAL;
                *ret = n;
                return 0;
        }
        default:
                return -EINVAL;
        }
}

/* Python's json.loads of the body, or {} on anything else (upstream §1.2). */
static json_object *parse_body(const char *buf, size_t len) {
        struct json_tokener *tok;
        json_object *o = NULL;
        size_t off;

        /* json.loads decodes bytes as strict UTF-8 first: anything else fails. Kept, such
         * strings would all come out as U+FFFD, so two keys could print as one. It also
         * refuses the 'single-quoted' keys json-c takes. */
        if (len == 0 || len > INT32_MAX || !sf_json_text_is_utf8(buf, len) ||
            sf_json_text_has_single_quote(buf, len))
                return json_object_new_object();
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, buf, (int)len);
        off = json_tokener_get_error(tok) == json_tokener_success ? tok->char_offset : 0;
        json_tokener_free(tok);
        /* Trailing non-whitespace makes json.loads fail too. */
        while (o && off < len && (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\n' || buf[off] == '\r'))
                off++;
        if (!json_object_is_type(o, json_type_object) || off != len) {
                json_object_put(o);
                o = json_object_new_object();
        }
        return o;
}

int sf_http_body_parse(const char *buf, size_t len, bool raw, json_object **ret_body) {
        json_object *o;

        /* json-c keeps \u0000 and C strings stop at it: refuse, never truncate. */
        if (!raw && sf_json_text_has_control(buf, len))
                return -EBADMSG;
        o = parse_body(buf, raw ? 0 : len);
        if (!o)
                return -ENOMEM;
        *ret_body = o;
        return 0;
}

/* ---- MHD glue ---- */

static void ctx_free(conn_ctx_t *c) {
        if (!c)
                return;
        free(c->scratch);
        free(c->buf);
        free(c->method);
        free(c->url);
        free(c->authorization);
        json_putp(&c->body);
        resp_reset(&c->resp);
        free(c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
        (void)cls, (void)conn, (void)toe;
        ctx_free(*req_cls);
        *req_cls = NULL;
}

static int body_append(conn_ctx_t *c, const char *data, size_t n) {
        if (c->too_big || c->len + n > c->max) {
                /* Keep reading (and dropping) so the client gets our 413, not a reset. */
                c->too_big = true;
                c->discarded += n;
                return c->discarded > DISCARD_LIMIT ? -EFBIG : 0;
        }
        if (c->len + n + 1 > c->cap) {
                size_t cap = c->cap ? c->cap : 4096;
                char *nb;

                while (c->len + n + 1 > cap)
                        cap *= 2;
                nb = realloc(c->buf, cap);
                if (!nb)
                        return -ENOMEM;
                c->buf = nb;
                c->cap = cap;
        }
        memcpy(c->buf + c->len, data, n);
        c->len += n;
        c->buf[c->len] = 0;
        return 0;
}

/* Comma separated methods served on a known path, for 405/OPTIONS "Allow". */
static void allow_header(const sf_http_server_t *s, const char *path, char *out, size_t outlen) {
        size_t used = 0, sl = strlen(path) + 1;
        char *scratch = malloc(sl);
        const char *params[SF_HTTP_MAX_PARAMS];

        out[0] = 0;
        if (!scratch)
                return;
        for (size_t i = 0; i < s->nroutes; i++) {
                const char *m = s->routes[i].method;

                if (pattern_match(s->routes[i].pattern, path, scratch, sl, params) < 0 || strstr(out, m))
                        continue;
                used += (size_t)snprintf(out + used, outlen - used, "%s%s%s", used ? ", " : "", m,
                                         strcmp(m, "GET") == 0 ? ", HEAD" : "");
                if (used >= outlen)
                        break;
        }
        if (used < outlen)
                snprintf(out + used, outlen - used, "%sOPTIONS", used ? ", " : "");
        free(scratch);
}

/* The stream now has a connection: remember both ways, size its socket buffer, give it
 * its write timeout.  Before this, a wake only sets wake_pending (fill has not run). */
static void stream_bind(sf_http_server_t *s, sf_http_stream_t *st, struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int sndbuf = STREAM_SNDBUF;

        if (ci)
                setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        if (st->write_timeout_s)
                MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, st->write_timeout_s);
        pthread_mutex_lock(&s->lock);
        pthread_mutex_lock(&st->lock);
        st->conn = conn;
        st->srv = s;
        st->closing = s->stopping;
        st->next = s->streams;
        if (s->streams)
                s->streams->prev = st;
        s->streams = st;
        pthread_mutex_unlock(&st->lock);
        pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result queue(sf_http_server_t *s, struct MHD_Connection *conn, sf_http_resp_t *r,
                             const char *request_id, const char *allow) {
        struct MHD_Response *mr = r->mhd;
        enum MHD_Result ret;

        if (mr) {
                r->mhd = NULL;
                if (r->stream) {
                        stream_bind(s, r->stream, conn);
                        r->stream = NULL;
                }
        } else {
                mr = MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
                                                     r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
                if (!mr)
                        return MHD_NO;
                r->body = NULL; /* MHD owns it now */
                MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        r->content_type ? r->content_type : CT_JSON);
        }
        MHD_add_response_header(mr, "X-Request-ID", request_id);
        if (r->retry_after > 0) {
                char ra[16];

                snprintf(ra, sizeof(ra), "%d", r->retry_after);
                MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, ra);
        }
        if (allow && *allow)
                MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, allow);
        ret = MHD_queue_response(conn, (unsigned)r->status, mr);
        MHD_destroy_response(mr);
        return ret;
}

/* X-Request-ID: a random (version 4) UUID.  It only has to be unique, not secret, so a
 * per-thread splitmix64 seeded once from the kernel replaces libuuid, which costs six
 * system calls per UUID (getrandom, getpid, getuid, ...). */
static uint64_t request_id_next(void) {
        static __thread uint64_t state;
        static __thread bool seeded;
        uint64_t z;

        if (!seeded) {
                if (getrandom(&state, sizeof(state), 0) != sizeof(state))
                        state = (uint64_t)sf_mono_ms() ^ ((uint64_t)gettid() << 32);
                seeded = true;
        }
        z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static void request_id_new(char out[37]) {
        uint64_t hi = request_id_next(), lo = request_id_next();

        hi = (hi & ~0xf000ULL) | 0x4000ULL;                              /* version 4 */
        lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48);              /* variant 10 */
        snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)((hi >> 16) & 0xffff),
                 (unsigned)(hi & 0xffff), (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

/* Python method names are the lower-case HTTP verbs. */
static const char *handler_name(const char *method) {
        static const char *const names[][2] = {
                {"GET", "get"}, {"POST", "post"}, {"PUT", "put"}, {"DELETE", "delete"}, {"PATCH", "patch"}};

        for (size_t i = 0; i < SF_ARRAY_SIZE(names); i++)
                if (strcmp(method, names[i][0]) == 0)
                        return names[i][1];
        return "handler";
}

static void client_address(struct MHD_Connection *conn, char *out, size_t outlen) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        out[0] = 0;
        if (sa && sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
        else if (sa && sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
}

/* Fill req for c's route; the strings are borrowed from MHD (valid during this call). */
static void req_fill(sf_http_server_t *s, conn_ctx_t *c, struct MHD_Connection *conn, const char *method,
                     const char *url, json_object *body, sf_http_req_t *req) {
        req->method = method;
        req->path = url;
        req->body = body;
        req->raw_body = c->buf ? c->buf : "";
        req->raw_len = c->len;
        req->authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        memcpy(req->params, c->params, sizeof(req->params));
        req->nparams = c->nparams;
        req->conn = conn;
        req->user = s->user;
        req->handler_name = handler_name(c->route->method);
        client_address(conn, req->remote_addr, sizeof(req->remote_addr));
}

int sf_http_offload(sf_http_req_t *req, sf_http_resp_t *resp, sf_http_handler_fn fn) {
        (void)req;
        resp->offload = fn;
        return 0;
}

static int handler_call(sf_http_handler_fn fn, sf_http_req_t *req, sf_http_resp_t *resp) {
        int r;

        resp->offload = NULL;
        r = fn(req, resp);
        if (r >= 0 && resp->status == 0 && resp->offload)
                return 0;
        if (r >= 0 && resp->status == 0)
                r = sf_http_json(resp, 200, NULL);
        return r;
}

/* Log and queue resp (a 500 envelope if the handler failed without answering). */
static enum MHD_Result respond(sf_http_server_t *s, struct MHD_Connection *conn, conn_ctx_t *c, const char *method,
                               const char *url, int r, sf_http_resp_t *resp, const char *request_id,
                               const char *allow) {
        enum MHD_Result ret;

        if (r < 0 && resp->status == 0) {
                log_err("%s %s: handler failed: %s", method, url, strerror(-r));
                if (sf_http_error(resp, 500, "server error: %s", strerror(-r)) < 0) {
                        resp_reset(resp);
                        resp->status = 500;
                }
        }
        /* 503 busy is load shedding, not a fault: a flood must not flood the log too. */
        if (resp->status >= 500 && resp->status != 503)
                log_warn("%s %s => %d [%s]", method, url, resp->status, request_id);
        else
                log_debug("%s %s => %d in %lld ms [%s]", method, url, resp->status,
                          (long long)(sf_mono_ms() - c->start_ms), request_id);
        ret = queue(s, conn, resp, request_id, allow);
        resp_reset(resp);
        return ret;
}

/* Offload pool thread: run queued handlers, then let MHD answer on a request thread. */
static void *offload_main(void *arg) {
        sf_http_server_t *s = arg;

        setpriority(PRIO_PROCESS, (id_t)gettid(), OFFLOAD_NICE);
        for (;;) {
                conn_ctx_t *c;

                pthread_mutex_lock(&s->lock);
                while (!s->qlen && !s->stopping)
                        pthread_cond_wait(&s->wake, &s->lock);
                if (!s->qlen) {
                        pthread_mutex_unlock(&s->lock);
                        return NULL;
                }
                c = s->queue[s->qhead];
                s->qhead = (s->qhead + 1) % SF_HTTP_OFFLOAD_QUEUE;
                s->qlen--;
                pthread_mutex_unlock(&s->lock);
                c->handler_r = handler_call(c->offload, &c->req, &c->resp);
                if (c->handler_r >= 0 && c->resp.offload) /* offloading twice is a bug */
                        c->handler_r = -EINVAL;
                c->answered = true;
                MHD_resume_connection(c->conn);
        }
}

/* Copy what fn needs out of MHD's buffers, suspend the connection and queue it. -EBUSY if
 * the queue is full (or the server stopping): answer on the spot instead. */
static int offload_submit(sf_http_server_t *s, conn_ctx_t *c, struct MHD_Connection *conn, sf_http_req_t *req,
                          sf_http_handler_fn fn) {
        int r = 0;

        c->method = strdup(req->method);
        c->url = strdup(req->path);
        c->authorization = req->authorization ? strdup(req->authorization) : NULL;
        if (!c->method || !c->url || (req->authorization && !c->authorization))
                return -ENOMEM;
        c->conn = conn;
        c->offload = fn;
        c->req = *req;
        c->req.method = c->method;
        c->req.path = c->url;
        c->req.authorization = c->authorization;
        c->req.body = c->body;
        c->req.conn = NULL; /* not usable from another thread */
        pthread_mutex_lock(&s->lock);
        if (s->stopping || s->qlen == SF_HTTP_OFFLOAD_QUEUE) {
                r = -EBUSY;
        } else {
                /* Suspend before the pool can see it, so its resume always follows. */
                MHD_suspend_connection(conn);
                s->queue[(s->qhead + s->qlen) % SF_HTTP_OFFLOAD_QUEUE] = c;
                s->qlen++;
                pthread_cond_signal(&s->wake);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
        sf_http_server_t *s = cls;
        conn_ctx_t *c = *req_cls;
        sf_http_req_t req = {0};
        sf_http_resp_t resp = {0};
        char allow[128] = "";
        int r = 0;

        (void)version;
        if (!c) {
                size_t sl = strlen(url) + 1;
                const char *ct;

                c = calloc(1, sizeof(*c));
                if (!c)
                        return MHD_NO;
                c->start_ms = sf_mono_ms();
                c->scratch = malloc(sl);
                if (!c->scratch) {
                        free(c);
                        return MHD_NO;
                }
                c->match_err = sf_http_route_match(s->routes, s->nroutes, method, url, c->scratch, sl,
                                                   c->params, &c->nparams, &c->route, &c->path_known);
                ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
                c->raw = ct && strncasecmp(ct, "application/octet-stream", 24) == 0;
                c->max = c->raw ? SF_HTTP_MAX_RAW_BODY : SF_HTTP_MAX_BODY;
                *req_cls = c;
                return MHD_YES;
        }
        if (c->answered)
                return respond(s, conn, c, method, url, c->handler_r, &c->resp, c->req.request_id, "");
        if (*upload_data_size) {
                r = body_append(c, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return r < 0 ? MHD_NO : MHD_YES;
        }

        request_id_new(req.request_id);
        if (!c->route && c->path_known && strcmp(method, "OPTIONS") == 0) {
                allow_header(s, url, allow, sizeof(allow));
                r = sf_http_raw(&resp, 200, CT_HTML, "", 0);
        } else if (!c->route && c->path_known) {
                allow_header(s, url, allow, sizeof(allow));
                json_object *o = json_object_new_object();

                if (!o || json_object_object_add(o, "message", json_object_new_string(
                                "The method is not allowed for the requested URL."))) {
                        json_object_put(o);
                        r = -ENOMEM;
                } else {
                        r = sf_http_json(&resp, 405, o);
                }
        } else if (!c->route) {
                r = sf_http_raw(&resp, 404, CT_HTML, page_404, sizeof(page_404) - 1);
        } else if (c->too_big) {
                r = sf_http_error(&resp, 413, "request body too large (limit %zu bytes)", c->max);
        } else if ((r = sf_http_body_parse(c->buf, c->len, c->raw, &c->body)) == -EBADMSG) {
                r = sf_http_error(&resp, 400, "request strings must not contain NUL or control characters");
        } else if (r == 0) {
                req_fill(s, c, conn, method, url, c->body, &req);
                r = handler_call(c->route->fn, &req, &resp);
                if (r >= 0 && resp.status == 0 && resp.offload) {
                        r = offload_submit(s, c, conn, &req, resp.offload);
                        resp.offload = NULL;
                        if (r == 0)
                                return MHD_YES;
                        if (r == -EBUSY) {
                                r = sf_http_error(&resp, 503, "server busy, retry later");
                                resp.retry_after = OFFLOAD_RETRY_AFTER_S;
                        }
                }
        }
        return respond(s, conn, c, method, url, r, &resp, req.request_id, allow);
}

/* Percent-decoding of the URL that never yields a NUL or another control character: such
 * a URL stays escaped and so names nothing ("/instances/vm1%00x" would otherwise be cut at
 * the NUL and reach vm1). */
size_t sf_http_url_unescape(char *s) {
        size_t n = strlen(s), len;
        _cleanup_free_ char *decoded = strndup(s, n);

        if (!decoded)
                return n;
        len = MHD_http_unescape(decoded);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)decoded[i] < 0x20 || decoded[i] == 0x7f)
                        return n;
        memcpy(s, decoded, len + 1);
        return len;
}

static size_t url_unescape(void *cls, struct MHD_Connection *conn, char *s) {
        (void)cls, (void)conn;
        return sf_http_url_unescape(s);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
        char line[512];
        size_t n;

        (void)cls;
        vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n && line[n - 1] == '\n')
                line[--n] = 0;
        /* Only streaming responses are chunked, and their clients end them by going away. */
        if (strncmp(line, "Failed to send the chunked response body", 40) == 0 ||
            strncmp(line, "Failed to send the footers", 26) == 0)
                log_debug("http: %s", line);
        else
                log_warn("http: %s", line);
}

int sf_http_start(const char *bind_addr, int port, const sf_http_route_t *routes, size_t nroutes,
                  void *user, sf_http_server_t **ret) {
        struct sockaddr_storage ss = {0};
        unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
        const union MHD_DaemonInfo *info;
        sf_http_server_t *s = NULL;
        int r = 0;

        if (!bind_addr || port < 0 || port > 65535 || (!routes && nroutes) || !ret)
                return -EINVAL;
        if (inet_pton(AF_INET, bind_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
                ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        } else if (inet_pton(AF_INET6, bind_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
                flags |= MHD_USE_IPv6;
        } else {
                log_err("http: bad bind address '%s'", bind_addr);
                return -EINVAL;
        }
        flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->routes = routes;
        s->nroutes = nroutes;
        s->user = user;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        for (; s->nworkers < SF_HTTP_OFFLOAD_THREADS; s->nworkers++) {
                r = -pthread_create(&s->workers[s->nworkers], NULL, offload_main, s);
                if (r < 0) {
                        log_err("http: cannot start the offload pool: %s", strerror(-r));
                        goto cleanup;
                }
        }
        errno = 0;
        s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                                /* First, so MHD's own messages go through sf_log too. */
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)SF_HTTP_THREADS,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
                                MHD_OPTION_UNESCAPE_CALLBACK, url_unescape, NULL,
                                MHD_OPTION_END);
        if (!s->d) {
                r = errno ? -errno : -EADDRNOTAVAIL;
                log_err("http: cannot listen on %s:%d: %s", bind_addr, port, strerror(-r));
                goto cleanup;
        }
        info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info && info->port ? info->port : port;
        log_info("http: listening on %s port %d", bind_addr, s->port);
        *ret = s;
        s = NULL;
cleanup:
        sf_http_stop(s);
        return r;
}

void sf_http_stop(sf_http_server_t *s) {
        if (!s)
                return;
        /* Drain the offload pool first: MHD must not stop with suspended connections. */
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->wake);
        for (sf_http_stream_t *st = s->streams; st; st = st->next) {
                pthread_mutex_lock(&st->lock);
                st->closing = true;
                if (st->suspended) {
                        st->suspended = false;
                        MHD_resume_connection(st->conn);
                }
                pthread_mutex_unlock(&st->lock);
        }
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < s->nworkers; i++)
                pthread_join(s->workers[i], NULL);
        if (s->d)
                MHD_stop_daemon(s->d);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

int sf_http_port(sf_http_server_t *s) { return s ? s->port : -EINVAL; }
