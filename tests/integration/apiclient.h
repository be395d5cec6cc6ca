/* The HTTP client the in-process API tests share (test_api.c, test_apival.c): one request
 * over real HTTP with libcurl, the reply's status, body and headers, and checks of
 * upstream's error envelope.  Included (not linked) by each test, after it declares
 * `static int port;` (the API's port).  Needs <curl/curl.h>, cmocka and json-c. */
#pragma once

typedef struct reply {
        long status;
        char *body;
        size_t len;
        char ctype[128];
        char reqid[64];
} reply_t;

static void reply_free(reply_t *r) {
        free(r->body);
        memset(r, 0, sizeof(*r));
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
        reply_t *r = ud;
        size_t len = sz * n;
        char *b = realloc(r->body, r->len + len + 1);

        if (!b)
                return 0;
        memcpy(b + r->len, p, len);
        r->body = b;
        r->len += len;
        b[r->len] = 0;
        return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen) {
        size_t nl = strlen(name), vl;

        if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
                return;
        line += nl + 1, len -= nl + 1;
        while (len && *line == ' ')
                line++, len--;
        while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
                len--;
        vl = len < outlen - 1 ? len : outlen - 1;
        memcpy(out, line, vl);
        out[vl] = 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
        reply_t *r = ud;

        header_value(p, sz * n, "Content-Type", r->ctype, sizeof(r->ctype));
        header_value(p, sz * n, "X-Request-ID", r->reqid, sizeof(r->reqid));
        return sz * n;
}

/* One request.  tok: NULL = no Authorization header, "RAW:<v>" = header value <v>, else a
 * bearer token.  fmt (NULL = no body) is printf'd, then every ' becomes " so bodies read
 * like Python dicts.  Every response must carry an X-Request-ID. */
static void __attribute__((format(printf, 5, 6)))
req(reply_t *r, const char *method, const char *path, const char *tok, const char *fmt, ...) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        char url[512], hdr[1200];
        _cleanup_free_ char *body = NULL;

        memset(r, 0, sizeof(*r));
        assert_non_null(c);
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                assert_true(vasprintf(&body, fmt, ap) >= 0);
                va_end(ap);
                for (char *p = body; *p; p++)
                        if (*p == '\'')
                                *p = '"';
        }
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
        h = curl_slist_append(h, "Expect:");
        if (tok) {
                if (strncmp(tok, "RAW:", 4) == 0)
                        snprintf(hdr, sizeof(hdr), "Authorization: %s", tok + 4);
                else
                        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
                h = curl_slist_append(h, hdr);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (!r->body)
                r->body = calloc(1, 1);
        if (!sf_uuid_parse(r->reqid, NULL))
                fail_msg("%s %s: no X-Request-ID (got \"%s\")", method, path, r->reqid);
}

/* The error envelope, byte for byte: {"error": "<msg>", "status": N} (Python json.dumps). */
static void check_error(reply_t *r, long status, const char *msg) {
        char want[2048], *o;
        size_t n = 0;

        n += (size_t)snprintf(want, sizeof(want), "{\"error\": \"");
        o = want + n;
        for (const char *p = msg; *p; p++) {
                if (*p == '"' || *p == '\\')
                        *o++ = '\\';
                *o++ = *p;
        }
        snprintf(o, sizeof(want) - (size_t)(o - want), "\", \"status\": %ld}", status);
        if (r->status != status || strcmp(r->body, want) != 0)
                fail_msg("want %ld %s\n got %ld %s", status, want, r->status, r->body);
        assert_string_equal(r->ctype, "application/json");
}

/* status and a JSON body that parses; returns the parsed body (caller puts). */
static json_object *check_json(reply_t *r, long status) {
        json_object *o;

        if (r->status != status)
                fail_msg("want %ld, got %ld %s", status, r->status, r->body);
        assert_string_equal(r->ctype, "application/json");
        assert_true(r->len > 0 && r->body[r->len - 1] == '\n'); /* single line + "\n" */
        assert_null(memchr(r->body, '\n', r->len - 1));
        o = json_tokener_parse(r->body);
        if (!o && strcmp(r->body, "null\n") != 0)
                fail_msg("not JSON: %s", r->body);
        return o;
}
