/* Integration: POST /auth cannot be used to starve sf-api (issue 5 item 8). sf-api's
 * handlers in-process over real HTTP (libcurl), real Redis and NATS (tests/run.sh).
 *  - a per-address rate limit answers 429 (upstream envelope, Retry-After);
 *  - 32 clients, each from its own loopback address, post wrong keys (bcrypt cost 12) for
 *    10 s while an authenticated client's GETs keep p99 under 100 ms (plus their p99
 *    without flood, a few ms on a quiet node; best of 3 rounds);
 *  - the failures become a bounded number of aggregated audit events whose counts add up.
 * Only HTTP and the event list are used, so the same file runs against older code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "ctx.h"
#include "event.h"
#include "http.h"
#include "util.h"

#define FLOOD_CLIENTS 32
#define FLOOD_SECONDS 10
#define FLOOD_ROUNDS 3
#define BASELINE_SECONDS 3
#define FLOOD_PAUSE_MS 100   /* a refused (429/503) flooder retries after this */
#define GET_PAUSE_MS 20
#define P99_LIMIT_MS 100.0 /* over the no-flood p99, see test_flood */
#define AUDIT_WINDOW_S 3     /* SF_AUTH_AUDIT_WINDOW for this process */
#define RATE_BURST 20        /* the defaults (SF_AUTH_BURST, SF_AUTH_RATE per minute) */
#define RATE_PER_MIN 120

static sf_ctx_t ctx;
static sf_http_server_t *srv;
static int port;
static char sfx[9];
static char sys_key[33], sys_tok[1024];
static char flood_ns[32];
static long flood_401;     /* wrong-key answers during the flood: what the audit must count */
static long flood_seconds; /* how long it flooded in all */

typedef struct reply {
        long status;
        char body[4096];
        size_t len;
        char retry_after[32];
        double secs;
} reply_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
        reply_t *r = ud;
        size_t len = sz * n, room = sizeof(r->body) - 1 - r->len;

        memcpy(r->body + r->len, p, len < room ? len : room);
        r->len += len < room ? len : room;
        r->body[r->len] = 0;
        return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
        reply_t *r = ud;
        size_t len = sz * n;

        if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
                sscanf(p + 12, " %31[0-9]", r->retry_after);
        return len;
}

/* One request on handle c (kept alive between calls). from: source address or NULL. */
static int http_do(CURL *c, reply_t *r, const char *method, const char *path, const char *tok,
                   const char *from, const char *body) {
        struct curl_slist *h = NULL;
        char url[256], hdr[1100];
        CURLcode rc;

        memset(r, 0, sizeof(*r));
        curl_easy_reset(c);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (from)
                curl_easy_setopt(c, CURLOPT_INTERFACE, from);
        h = curl_slist_append(h, "Content-Type: application/json");
        if (tok) {
                snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
                h = curl_slist_append(h, hdr);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->secs);
        curl_slist_free_all(h);
        return rc == CURLE_OK ? 0 : -EIO;
}

static int auth_token(const char *from, const char *ns, const char *key, char *out, size_t outlen) {
        CURL *c = curl_easy_init();
        _cleanup_json_ json_object *o = NULL;
        char body[256];
        reply_t r;
        int ret = -EACCES;

        snprintf(body, sizeof(body), "{\"namespace\": \"%s\", \"key\": \"%s\"}", ns, key);
        if (c && http_do(c, &r, "POST", "/auth", NULL, from, body) == 0 && r.status == 200 &&
            (o = json_tokener_parse(r.body)) && sf_json_str(o, "access_token")) {
                snprintf(out, outlen, "%s", sf_json_str(o, "access_token"));
                ret = 0;
        }
        curl_easy_cleanup(c);
        return ret;
}

static int setup(void **state) {
        char flood_key[33];

        (void)state;
        sf_random_alnum(sfx, 8);
        sf_random_alnum(sys_key, 32);
        sf_random_alnum(flood_key, 32);
        snprintf(flood_ns, sizeof(flood_ns), "flood-%s", sfx);
        {
                char secret[33];

                sf_random_alnum(secret, 32);
                setenv("SF_AUTH_SECRET", secret, 1);
        }
        setenv("SF_AUTH_AUDIT_WINDOW", "3", 1);
        setenv("SF_STORAGE", "/tmp", 1);
        if (sf_ctx_open(&ctx, true, 5) < 0 || !ctx.cfg.auth_secret[0])
                return -1;
        if (sf_api_init(&ctx.cfg, ctx.bus) < 0 || sf_api_ns_ensure(&ctx, "system") < 0)
                return -1;
        /* The authenticated client's key is cheap; the flooded one has the real cost. */
        sf_auth_set_bcrypt_cost(4);
        if (sf_api_ns_set_key(&ctx, "system", "flood-test", sys_key) < 0)
                return -1;
        sf_auth_set_bcrypt_cost(12);
        if (sf_api_ns_ensure(&ctx, flood_ns) < 0 || sf_api_ns_set_key(&ctx, flood_ns, "k", flood_key) < 0)
                return -1;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                return -1;
        if (sf_http_start("127.0.0.1", 0, sf_api_routes, sf_api_nroutes, NULL, &srv) < 0)
                return -1;
        port = sf_http_port(srv);
        return auth_token("127.0.0.1", "system", sys_key, sys_tok, sizeof(sys_tok));
}

static int teardown(void **state) {
        (void)state;
        sf_http_stop(srv);
        srv = NULL;
        curl_global_cleanup();
        if (ctx.store && flood_ns[0])
                sf_store_purge(ctx.store, "namespace", flood_ns);
        sf_ctx_close(&ctx);
        return 0;
}

/* ---- rate limit ---- */

static void test_rate_limit(void **state) {
        CURL *c = curl_easy_init();
        _cleanup_json_ json_object *o = NULL;
        char body[128], tok[1024];
        int64_t t0 = sf_mono_ms();
        double elapsed;
        reply_t r;
        int n = 0;

        (void)state;
        assert_non_null(c);
        snprintf(body, sizeof(body), "{\"namespace\": \"nosuch-%s\", \"key\": \"x\"}", sfx);
        for (;;) {
                assert_int_equal(http_do(c, &r, "POST", "/auth", NULL, "127.0.0.200", body), 0);
                if (r.status == 429 || n > 200)
                        break;
                assert_int_equal(r.status, 404);
                n++;
        }
        elapsed = (double)(sf_mono_ms() - t0) / 1000.0;
        printf("rate limit: %d attempts admitted in %.2f s, then 429 (%s), Retry-After %s\n", n, elapsed,
               r.body, r.retry_after);
        assert_int_equal(r.status, 429);
        assert_true(n >= RATE_BURST);
        assert_true(n <= RATE_BURST + 1 + (int)(elapsed * RATE_PER_MIN / 60.0));
        o = json_tokener_parse(r.body);
        assert_non_null(o);
        assert_string_equal(sf_json_str(o, "error"), "too many authentication attempts, retry later");
        assert_int_equal(sf_json_int(o, "status", 0), 429);
        assert_true(atoi(r.retry_after) >= 1);
        /* Another address still authenticates; the limited one still makes authenticated calls. */
        assert_int_equal(auth_token("127.0.0.201", "system", sys_key, tok, sizeof(tok)), 0);
        assert_int_equal(http_do(c, &r, "GET", "/networks", tok, "127.0.0.200", NULL), 0);
        assert_int_equal(r.status, 200);
        curl_easy_cleanup(c);
}

/* ---- flood ---- */

typedef struct flooder {
        pthread_t t;
        int idx;
        int64_t until_ms;
        long n401, n429, n503, other;
} flooder_t;

static void *flood_main(void *arg) {
        flooder_t *f = arg;
        CURL *c = curl_easy_init();
        char from[32], body[128];
        reply_t r;

        snprintf(from, sizeof(from), "127.0.0.%d", 10 + f->idx);
        snprintf(body, sizeof(body), "{\"namespace\": \"%s\", \"key\": \"wrong-%d\"}", flood_ns, f->idx);
        while (c && sf_mono_ms() < f->until_ms) {
                if (http_do(c, &r, "POST", "/auth", NULL, from, body) < 0) {
                        f->other++;
                        continue;
                }
                if (r.status == 401) {
                        f->n401++;
                } else if (r.status == 429 || r.status == 503) {
                        r.status == 429 ? f->n429++ : f->n503++;
                        usleep(FLOOD_PAUSE_MS * 1000);
                } else {
                        f->other++;
                }
        }
        curl_easy_cleanup(c);
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* GETs (alternately /instances and /networks) every GET_PAUSE_MS until until_ms; their
 * latency percentiles in ms. Returns the number of GETs. */
static size_t get_loop(int64_t until_ms, double *ret_p50, double *ret_p99, double *ret_max) {
        static double lat[4096];
        CURL *c = curl_easy_init();
        size_t n = 0;
        reply_t r;

        assert_non_null(c);
        while (sf_mono_ms() < until_ms && n < SF_ARRAY_SIZE(lat)) {
                assert_int_equal(http_do(c, &r, "GET", n % 2 ? "/networks" : "/instances", sys_tok, NULL, NULL), 0);
                assert_int_equal(r.status, 200);
                lat[n++] = r.secs * 1000.0;
                usleep(GET_PAUSE_MS * 1000);
        }
        curl_easy_cleanup(c);
        qsort(lat, n, sizeof(lat[0]), cmp_double);
        *ret_p50 = n ? lat[n / 2] : 0;
        *ret_p99 = n ? lat[(n * 99) / 100] : 0;
        *ret_max = n ? lat[n - 1] : 0;
        return n;
}

/* One round: the same GETs without flood for BASELINE_SECONDS, then with FLOOD_CLIENTS
 * wrong-key posters for FLOOD_SECONDS. Returns the p99 with flood minus the limit (<0 = ok). */
static double flood_round(int round) {
        static flooder_t fl[FLOOD_CLIENTS];
        long n401 = 0, n429 = 0, n503 = 0, other = 0;
        double b50, b99, bmax, p50, p99, pmax, limit;
        int64_t until;
        size_t n, nb;

        nb = get_loop(sf_mono_ms() + BASELINE_SECONDS * 1000, &b50, &b99, &bmax);
        until = sf_mono_ms() + FLOOD_SECONDS * 1000;
        for (int i = 0; i < FLOOD_CLIENTS; i++) {
                fl[i] = (flooder_t){.idx = i, .until_ms = until};
                assert_int_equal(pthread_create(&fl[i].t, NULL, flood_main, &fl[i]), 0);
        }
        usleep(200 * 1000); /* let the flood start */
        n = get_loop(until, &p50, &p99, &pmax);
        for (int i = 0; i < FLOOD_CLIENTS; i++) {
                pthread_join(fl[i].t, NULL);
                n401 += fl[i].n401, n429 += fl[i].n429, n503 += fl[i].n503, other += fl[i].other;
        }
        limit = P99_LIMIT_MS + b99;
        printf("flood round %d: no flood: %zu GETs, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", round, nb, b50, b99,
               bmax);
        printf("flood round %d: %d clients x %d s: %ld x 401, %ld x 429, %ld x 503, %ld other; "
               "authenticated GETs: %zu, p50 %.1f ms, p99 %.1f ms, max %.1f ms (limit %.1f ms)\n",
               round, FLOOD_CLIENTS, FLOOD_SECONDS, n401, n429, n503, other, n, p50, p99, pmax, limit);
        fflush(stdout);
        flood_401 += n401;
        flood_seconds += FLOOD_SECONDS;
        assert_true(n401 > 0); /* the flood did reach bcrypt */
        /* A GET every GET_PAUSE_MS: far fewer means they were stuck behind the flood. */
        return n >= 50 ? p99 - limit : 1e9;
}

/* The limit is P99_LIMIT_MS over what the same GETs see without flood just before: on a
 * quiet node that is a few ms, on a shared test machine it absorbs the other tenants' load.
 * That noise only ever adds, so the best of up to FLOOD_ROUNDS rounds counts. (Before the
 * offload pool every round had p99 > 5 s.) */
static void test_flood(void **state) {
        double best = 1e9;

        (void)state;
        for (int i = 1; i <= FLOOD_ROUNDS && best >= 0; i++) {
                double over = flood_round(i);

                best = over < best ? over : best;
        }
        assert_true(best < 0);
}

/* ---- aggregated audit ---- */

static void test_audit_aggregated(void **state) {
        _cleanup_json_ json_object *evs = NULL;
        long sum = 0, nagg = 0, nall;
        /* A pair writes at most one event per window (+1 for a partial last window). */
        long bound = FLOOD_CLIENTS * (flood_seconds / AUDIT_WINDOW_S + 2);

        (void)state;
        if (flood_401 == 0)
                skip();
        /* The last windows close AUDIT_WINDOW_S after the flood; then the writer ticks. */
        sleep(AUDIT_WINDOW_S + 3);
        assert_int_equal(sf_event_list(ctx.store, "namespace", flood_ns, "audit", 0, &evs), 0);
        nall = (long)json_object_array_length(evs);
        for (long i = 0; i < nall; i++) {
                json_object *ev = json_object_array_get_idx(evs, i), *extra = NULL;
                const char *addr;
                int a = 0;

                if (!json_object_object_get_ex(ev, "extra", &extra) || !sf_json_str(extra, "remote-address"))
                        continue;
                addr = sf_json_str(extra, "remote-address");
                assert_int_equal(sscanf(addr, "127.0.0.%d", &a), 1);
                assert_true(a >= 10 && a < 10 + FLOOD_CLIENTS);
                assert_non_null(strstr(sf_json_str(ev, "message") ?: "", "failed authentication attempts"));
                sum += sf_json_int(extra, "attempts", 0);
                nagg++;
        }
        printf("audit: %ld events for %ld failed attempts (%ld aggregated, counting %ld), bound %ld\n", nall,
               flood_401, nagg, sum, bound);
        assert_int_equal(sum, flood_401);
        assert_true(nall <= bound);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rate_limit),
                cmocka_unit_test(test_flood),
                cmocka_unit_test(test_audit_aggregated),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
