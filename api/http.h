/* The sf-api HTTP layer (libmicrohttpd), independent of storage: routing, JSON bodies on
 * every method, upstream Shaken Fist response conventions (api.md §1).
 *
 * Threading: handlers run concurrently on a pool of MHD threads (SF_HTTP_THREADS). Anything
 * a handler uses that is not thread-safe (Redis/NATS connections, ...) must be per-thread,
 * e.g. created lazily in a __thread variable or a pthread key. `user` is shared by all. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct MHD_Connection;
struct MHD_Response;

#define SF_HTTP_THREADS     4
/* Expensive unauthenticated work (bcrypt in POST /auth, see sf_http_offload) runs on its
 * own small pool, so a flood of it never occupies the threads above. One thread per core
 * of a small node; at most SF_HTTP_OFFLOAD_QUEUE more wait, beyond that 503 + Retry-After. */
#define SF_HTTP_OFFLOAD_THREADS 2
#define SF_HTTP_OFFLOAD_QUEUE   16
#define SF_HTTP_MAX_PARAMS  8
#define SF_HTTP_MAX_BODY    (1024 * 1024)     /* JSON bodies: larger => 413 envelope */
/* Bodies sent as application/octet-stream (upload chunks, client max 2 MiB) are opaque:
 * not parsed as JSON (body is {}), only raw_body, and may be this large. */
#define SF_HTTP_MAX_RAW_BODY (8 * 1024 * 1024)

typedef struct sf_http_server sf_http_server_t;

typedef struct sf_http_req {
        const char *method;          /* "GET", ... (HEAD is served by GET routes) */
        const char *path;            /* URL path without query, URL-decoded */
        json_object *body;           /* parsed JSON object body; {} if empty/unparseable/not an object */
        const char *raw_body;        /* the bytes as received (NUL-terminated), for opaque uploads */
        size_t raw_len;
        const char *authorization;   /* Authorization header or NULL */
        const char *params[SF_HTTP_MAX_PARAMS]; /* captured path parameters, in order */
        size_t nparams;
        struct MHD_Connection *conn; /* for query args (e.g. ?offset=) */
        const char *handler_name;    /* for TypeError-style messages: lower-case method ("post");
                                        a handler may point it elsewhere ("InstancesEndpoint.post") */
        char request_id[37];         /* X-Request-ID we send back */
        char remote_addr[64];        /* client address ("127.0.0.1", "::1"), "" if unknown */
        void *user;                  /* server-wide user data */
} sf_http_req_t;

typedef struct sf_http_resp {
        int status;                  /* 0 = not filled in */
        char *body;                  /* malloc'd, owned by the server after return */
        size_t len;
        const char *content_type;    /* static string; NULL => application/json */
        struct MHD_Response *mhd;    /* optional: a handler-built response (streaming); the
                                        server adds X-Request-ID, queues and destroys it */
        struct sf_http_stream *stream; /* set by sf_http_stream with mhd */
        int retry_after;             /* > 0: a Retry-After header, in seconds (429, 503) */
        int (*offload)(struct sf_http_req *req, struct sf_http_resp *resp); /* sf_http_offload */
} sf_http_resp_t;

/* Return 0 after filling resp (unfilled => 200 "null\n": upstream's void success).
 * Return a negative errno without filling resp => 500 {"error": "server error: ..."}.
 * Return a negative errno after filling resp (e.g. via sf_http_check_keys) => resp is sent. */
typedef int (*sf_http_handler_fn)(sf_http_req_t *req, sf_http_resp_t *resp);

typedef struct sf_http_route {
        const char *method;          /* "GET", "POST", "PUT", "DELETE" */
        const char *pattern;         /* "/instances/{}/events": {} captures one non-empty segment */
        sf_http_handler_fn fn;
} sf_http_route_t;

/* Serve routes on bind_addr (IPv4 or IPv6 literal) only; port 0 picks a free port (see
 * sf_http_port). Routes are matched in table order: list literal routes before {} ones that
 * would shadow them. routes and user must outlive the server. */
int sf_http_start(const char *bind_addr, int port, const sf_http_route_t *routes, size_t nroutes,
                  void *user, sf_http_server_t **ret);
void sf_http_stop(sf_http_server_t *s); /* NULL is fine; waits for running and queued handlers */
int sf_http_port(sf_http_server_t *s);   /* the port actually bound */

/* Finish this request on the offload pool: return sf_http_offload(req, resp, fn) from a
 * handler (after its cheap checks) and fn(req, resp) runs there with the same req (but
 * req->conn NULL) and answers as a handler does. If the pool's queue is full the client
 * gets 503 {"error": "server busy, retry later"} with Retry-After instead. Returns 0. */
int sf_http_offload(sf_http_req_t *req, sf_http_resp_t *resp, sf_http_handler_fn fn);

/* Streaming responses (text/event-stream): the body is produced by fill(ud, buf, max),
 * called on an MHD request thread (never twice at once for one stream), which returns the
 * bytes it wrote (> 0), 0 when it has nothing now, or SF_HTTP_STREAM_END to finish the
 * response.  On 0 the connection is suspended: it costs no thread and no polling until
 * sf_http_stream_wake (from any thread) lets MHD call fill again.  A connection that stays
 * unwritable for write_timeout_s is closed.  ud is owned by the response once this
 * returns 0: ud_free(ud) runs when MHD is done with it (after that the stream handle is
 * invalid: whoever wakes it must forget it in ud_free).  *ret (may be NULL) is the handle
 * for wake/abort.  0 or -ENOMEM. */
#define SF_HTTP_STREAM_END ((ssize_t)-1)
typedef struct sf_http_stream sf_http_stream_t;
typedef ssize_t (*sf_http_fill_fn)(void *ud, char *buf, size_t max);
int sf_http_stream(sf_http_resp_t *resp, int status, const char *content_type, sf_http_fill_fn fill, void *ud,
                   void (*ud_free)(void *ud), unsigned write_timeout_s, sf_http_stream_t **ret);
/* fill has (or may have) something to say: run it again soon.  Thread-safe. */
void sf_http_stream_wake(sf_http_stream_t *st);
/* Close the connection now, whatever it is doing (a client too slow to keep). */
void sf_http_stream_abort(sf_http_stream_t *st);
/* A sleeping stream whose client has closed its end (MHD does not watch sleeping
 * connections) is closed now.  true if it was.  Thread-safe. */
bool sf_http_stream_reap(sf_http_stream_t *st);

/* Response helpers: each replaces whatever resp held. 0 or -ENOMEM. */
/* Single-line Python-style JSON + "\n", application/json. obj is consumed; NULL => null. */
int sf_http_json(sf_http_resp_t *r, int status, json_object *obj);
/* Already serialized JSON (text malloc'd, consumed; it should end in "\n" as sf_http_json's). */
int sf_http_json_text(sf_http_resp_t *r, int status, char *text, size_t len);
/* JSON text owned by someone else: sent from where it is, release(cls) once MHD is done
 * with it (also when this fails: -ENOMEM). */
int sf_http_json_borrowed(sf_http_resp_t *r, int status, const char *text, size_t len, void (*release)(void *),
                          void *cls);
/* {"error": "<message>", "status": N}, no trailing newline. */
int sf_http_error(sf_http_resp_t *r, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Arbitrary bytes (copied). content_type must be a static string. */
int sf_http_raw(sf_http_resp_t *r, int status, const char *content_type, const void *data, size_t len);

/* The bytes [offset, offset + size) of the open regular file fd as the body: MHD sends them
 * from the file itself (sendfile where it can), so nothing is read into memory.  fd is
 * consumed: closed once MHD is done with it, or at once if this fails (-ENOMEM).
 * content_type must be a static string. */
int sf_http_file(sf_http_resp_t *r, int status, const char *content_type, int fd, uint64_t offset, uint64_t size);

/* Pure route lookup. scratch (scratch_len >= strlen(path) + 1) receives the NUL-separated
 * captured parameters that params[] point into. Returns 0 and sets *ret_route, *ret_nparams on a
 * match, -ENOENT if nothing matches, -ENAMETOOLONG if scratch is too small or there are more
 * than SF_HTTP_MAX_PARAMS captures. *ret_path_known is always set: true if some route
 * matches the path with any method (=> 405 rather than 404). HEAD matches GET routes. */
int sf_http_route_match(const sf_http_route_t *routes, size_t n, const char *method, const char *path,
                        char *scratch, size_t scratch_len, const char *params[SF_HTTP_MAX_PARAMS],
                        size_t *ret_nparams, const sf_http_route_t **ret_route, bool *ret_path_known);

/* The body as a handler sees it (req->body): a JSON body (raw false) holding a NUL or
 * another control character is -EBADMSG (the server answers 400); else 0 and *ret_body,
 * Python's json.loads of it if that is an object, {} otherwise (and always {} when raw).
 * -ENOMEM. */
int sf_http_body_parse(const char *buf, size_t len, bool raw, json_object **ret_body);

/* Percent-decode the URL path s in place, as the server does before routing; returns the
 * new length. A URL that would decode to a NUL or another control character is left as
 * it was (so it names nothing). */
size_t sf_http_url_unescape(char *s);

/* Upstream turns each body key into a handler keyword argument: a key outside allowed
 * (NULL-terminated) is a TypeError => 400 "<name>() got an unexpected keyword argument 'k'".
 * "uuid" is always unexpected (upstream renames it to passed_uuid, which nobody accepts).
 * Returns 0, or -EINVAL after filling resp. */
int sf_http_check_keys(sf_http_req_t *req, sf_http_resp_t *resp, const char *const *allowed);

/* Typed body getters. str: -ENOENT if absent or null, -EINVAL if not a string; *ret points
 * into req->body. bool/int: absent or null => def; bool accepts true/false and integers
 * (truthiness); int accepts integers, integral doubles and decimal strings; else -EINVAL. */
int sf_http_body_str(sf_http_req_t *req, const char *key, const char **ret);
int sf_http_body_bool(sf_http_req_t *req, const char *key, bool def, bool *ret);
int sf_http_body_int(sf_http_req_t *req, const char *key, int64_t def, int64_t *ret);
