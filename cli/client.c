/* See client.h. */
#include "client.h"
#include "json.h"   /* lib/json.c: pure, json-c only */
#include "out.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void set_from_env(char **dst, const char *var) {
        const char *v = getenv(var);
        if (!*dst && v && *v)
                *dst = strdup(v);
}

/* A config file: JSON {"namespace", "key", "apiurl"}, all three present; fills only what
 * is still unset. A missing or unreadable file (EACCES included) is skipped silently. */
static void load_file(sf_client_t *c, const char *path) {
        json_object *doc = json_object_from_file(path), *ns, *key, *url;
        if (!doc)
                return;
        if (json_object_object_get_ex(doc, "namespace", &ns) && json_object_object_get_ex(doc, "key", &key) &&
            json_object_object_get_ex(doc, "apiurl", &url)) {
                if (!c->namespace && json_object_is_type(ns, json_type_string))
                        c->namespace = strdup(json_object_get_string(ns));
                if (!c->key && json_object_is_type(key, json_type_string))
                        c->key = strdup(json_object_get_string(key));
                if (!c->apiurl && json_object_is_type(url, json_type_string))
                        c->apiurl = strdup(json_object_get_string(url));
        }
        json_object_put(doc);
}

int sf_client_configure(sf_client_t *c) {
        set_from_env(&c->namespace, "SHAKENFIST_NAMESPACE");
        set_from_env(&c->key, "SHAKENFIST_KEY");
        set_from_env(&c->apiurl, "SHAKENFIST_API_URL");
        set_from_env(&c->async_strategy, "SHAKENFIST_ASYNC");
        if (!c->apiurl) {
                const char *home = getenv("HOME");
                if (home) {
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/.shakenfist", home);
                        load_file(c, path);
                }
        }
        if (!c->apiurl)
                load_file(c, "/etc/sf/shakenfist.json");
        if (!c->async_strategy)
                c->async_strategy = strdup("pause");
        return c->apiurl ? 0 : -ENOENT;
}

typedef struct {
        char *buf;
        size_t len;
        /* Downloads (sf_client_download): the body of a 200 goes here instead of buf. */
        FILE *file;
        CURL *h;                  /* the exchange in progress, for its status */
        unsigned long long written;
        int write_errno;          /* writing to file failed (the transfer was aborted) */
} membuf_t;

/* Forget a failed answer before the next try; a download keeps its file. */
static void membuf_reset(membuf_t *m) {
        free(m->buf);
        m->buf = NULL;
        m->len = 0;
        m->write_errno = 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
        membuf_t *m = ud;
        char *nb;

        if (m->file) {
                long status = 0;

                curl_easy_getinfo(m->h, CURLINFO_RESPONSE_CODE, &status);
                if (status == 200) {
                        errno = 0;
                        if (fwrite(p, size, n, m->file) != n) {
                                m->write_errno = errno ? errno : EIO;
                                return 0; /* aborts the transfer */
                        }
                        m->written += size * n;
                        return size * n;
                }
        }
        nb = realloc(m->buf, m->len + size * n + 1);
        if (!nb)
                return 0;
        memcpy(nb + m->len, p, size * n);
        m->len += size * n;
        nb[m->len] = 0;
        m->buf = nb;
        return size * n;
}

/* Python's json.dumps(body, indent=4, sort_keys=True), as upstream sends it. */
static char *dump_body(json_object *body) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                abort();
        sf_out_json(f, body);
        fclose(f);
        if (len && buf[len - 1] == '\n')
                buf[len - 1] = 0;
        return buf;
}

/* One HTTP exchange; returns the status (0 = could not connect), body into *out. */
static long exchange(sf_client_t *c, const char *method, const char *path, json_object *body, int with_auth,
                     int compact, membuf_t *out) {
        CURL *h = curl_easy_init();
        struct curl_slist *hdrs = NULL;
        char *url, *payload = NULL, auth[8192];
        long status = 0;

        if (!h)
                return 0;
        if (asprintf(&url, "%s%s", c->apiurl, path) < 0)
                abort();
        out->h = h;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_USERAGENT, SF_CLI_USER_AGENT);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (c->timeout_ms > 0)
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        if (body && json_object_is_type(body, json_type_object) && json_object_object_length(body) > 0) {
                payload = compact ? sf_json_dumps(body) : dump_body(body);
                if (!payload)
                        abort();
                hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        } else if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        }
        if (with_auth && c->token) {
                snprintf(auth, sizeof(auth), "Authorization: %s", c->token);
                hdrs = curl_slist_append(hdrs, auth);
        }
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (c->verbose)
                fprintf(stderr, "%s %s%s%s\n", method, url, payload ? "\n" : "", payload ? payload : "");
        if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (c->verbose)
                fprintf(stderr, "-> %ld %s\n", status, out->buf ? out->buf : "");
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        free(payload);
        free(url);
        return status;
}

/* Upstream's exception prefixes (cli.md §2.4), printed as "ERROR: <prefix>: <text>". */
void sf_client_report(long status, const char *body) {
        const char *prefix, *text = body ? body : "";
        json_object *doc = body ? json_tokener_parse(body) : NULL, *e;
        char when[64];
        time_t now = time(NULL);
        int tty = isatty(STDERR_FILENO);

        switch (status) {
        case 0: prefix = "Unable to connect to server"; break;
        case 400: prefix = "Malformed Request"; break;
        case 401: prefix = "Not authenticated"; break;
        case 403: prefix = "Not authorized"; break;
        case 404: prefix = "Resource not found"; break;
        case 406: prefix = "Dependencies not ready"; break;
        case 409: prefix = "Resource state conflict"; break;
        case 500: prefix = "Internal Server Error"; break;
        case 507: prefix = "Insufficient Resources"; break;
        default: prefix = "API error"; break;
        }
        if (status != 500 && doc && json_object_object_get_ex(doc, "error", &e) && json_object_is_type(e, json_type_string))
                text = json_object_get_string(e);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&now));
        fprintf(stderr, "%s %sERROR%s: %s", when, tty ? "\033[031m" : "", tty ? "\033[0m" : "", prefix);
        if (status == 0)
                fputc('\n', stderr);
        else if (status >= 400 && status < 600 && strcmp(prefix, "API error"))
                fprintf(stderr, ": %s\n", text);
        else
                fprintf(stderr, ": status %ld: %s\n", status, text);
        json_object_put(doc);
}

int sf_client_authenticate(sf_client_t *c) {
        json_object *body = json_object_new_object(), *doc, *tok;
        membuf_t out = {0};
        long status;

        json_object_object_add(body, "namespace", c->namespace ? json_object_new_string(c->namespace) : NULL);
        json_object_object_add(body, "key", c->key ? json_object_new_string(c->key) : NULL);
        status = exchange(c, "POST", "/auth", body, 0, 1, &out);  /* upstream: plain json.dumps */
        json_object_put(body);
        if (status != 200) {
                sf_client_report(status == 0 ? 0 : 401, out.buf);
                free(out.buf);
                return -1;
        }
        doc = json_tokener_parse(out.buf ? out.buf : "");
        free(out.buf);
        if (!doc || !json_object_object_get_ex(doc, "access_token", &tok) || !json_object_is_type(tok, json_type_string)) {
                json_object_put(doc);
                sf_client_report(401, "no access_token in /auth response");
                return -1;
        }
        free(c->token);
        if (asprintf(&c->token, "Bearer %s", json_object_get_string(tok)) < 0)
                abort();
        json_object_put(doc);
        return 0;
}

static double mono_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sf_client_deadline_s(const sf_client_t *c) {
        const char *s = c->async_strategy ? c->async_strategy : "pause";
        if (!strcmp(s, "continue"))
                return 0;
        if (!strcmp(s, "block"))
                return 3600;
        return 60;
}

/* One authenticated request, re-authenticating once on 401; the body of a 200 into *out. */
static int request(sf_client_t *c, const char *method, const char *path, json_object *body, membuf_t *out) {
        long status;

        if (!c->token && sf_client_authenticate(c) < 0)
                return -1;
        status = exchange(c, method, path, body, 1, 0, out);
        if (status == 401) {  /* token expired or its key rotated: once more with a new one */
                membuf_reset(out);
                if (sf_client_authenticate(c) < 0)
                        return -1;
                status = exchange(c, method, path, body, 1, 0, out);
        }
        /* 406: what the request depends on is not ready yet (e.g. a network still being
         * created); retried every second until the --async deadline, as upstream does
         * (cli.md §2.2 step 6). With continue the deadline has passed: the first 406 is
         * the answer. */
        for (double deadline = mono_s() + sf_client_deadline_s(c); status == 406 && mono_s() + 1 <= deadline;) {
                membuf_reset(out);
                sleep(1);
                status = exchange(c, method, path, body, 1, 0, out);
        }
        if (status != 200 || out->write_errno) {
                if (out->write_errno)
                        fprintf(stderr, "ERROR: cannot write the answer: %s\n", strerror(out->write_errno));
                else
                        sf_client_report(status, out->buf);
                membuf_reset(out);
                return -1;
        }
        return 0;
}

int sf_client_request(sf_client_t *c, const char *method, const char *path, json_object *body,
                      json_object **ret) {
        membuf_t out = {0};

        *ret = NULL;
        if (request(c, method, path, body, &out) < 0)
                return -1;
        if (out.buf && *out.buf)
                *ret = json_tokener_parse(out.buf);
        free(out.buf);
        return 0;
}

int sf_client_capable(sf_client_t *c, const char *cap) {
        if (!c->root) {
                membuf_t out = {0};
                long status = exchange(c, "GET", "/", NULL, 0, 0, &out);
                if (status == 0) {  /* upstream ignores the status, not a dead server */
                        sf_client_report(0, NULL);
                        free(out.buf);
                        return -1;
                }
                c->root = out.buf ? out.buf : strdup("");
        }
        return strstr(c->root, cap) != NULL;
}

int sf_client_request_raw(sf_client_t *c, const char *method, const char *path, json_object *body,
                          char **ret_text, size_t *ret_len) {
        membuf_t out = {0};

        if (request(c, method, path, body, &out) < 0)
                return -1;
        *ret_text = out.buf ? out.buf : strdup("");
        *ret_len = out.len;
        return *ret_text ? 0 : -1;
}

int sf_client_download(sf_client_t *c, const char *path, FILE *f, unsigned long long *ret_len) {
        membuf_t out = {.file = f};
        int r = request(c, "GET", path, NULL, &out);

        free(out.buf);
        if (r < 0)
                return -1;
        if (ret_len)
                *ret_len = out.written;
        return 0;
}

char *sf_client_escape(const char *s) {
        char *r = curl_easy_escape(NULL, s, 0), *d;
        if (!r)
                abort();
        d = strdup(r);
        curl_free(r);
        return d;
}

void sf_client_free(sf_client_t *c) {
        free(c->apiurl);
        free(c->namespace);
        free(c->key);
        free(c->async_strategy);
        free(c->token);
        free(c->root);
}
