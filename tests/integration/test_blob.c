/* Integration: sf-blob against real redis/nats and a real HTTP server (python3
 * http.server, which answers If-Modified-Since with 304).  The worker is this binary
 * re-executed with --worker, as sf-blob would run it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ctx.h"
#include "event.h"
#include "exec.h"
#include "intent.h"
#include "lock.h"
#include "log.h"
#include "netpolicy.h"
#include "store.h"
#include "util.h"
#include "worker.h"
#include "../../workers/blob/blob.h"
#include "../../workers/blob/fetch.h"

static sf_ctx_t ctx;
static char node[40];
static char storage[] = "/tmp/sf-blob-store.XXXXXX";
static char webroot[] = "/tmp/sf-blob-web.XXXXXX";
static char httplog[PATH_MAX];
static int http_port;
static pid_t http_pid, worker_pid;
static char art1[SF_UUID_LEN]; /* shared by the fetch / revalidate / change cases */
static sf_netpolicy_t loopback_ok; /* direct fetches: loopback servers allowed */
static sf_blob_fetch_limits_t lim = {.timeout_s = 120, .max_bytes = 1 << 30, .policy = &loopback_ok};

static void msleep(int ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* ---- the worker side ---- */

static volatile sig_atomic_t stop_flag;
static void on_term(int sig) { (void)sig; stop_flag = 1; }

static int worker_main(void) {
        sf_ctx_t wctx;

        sf_log_init("test-sf-blob");
        signal(SIGTERM, on_term);
        if (sf_ctx_open(&wctx, true, 5) < 0)
                return 1;
        sf_worker_run(&wctx, sf_blob_worker(), &stop_flag);
        sf_ctx_close(&wctx);
        return 0;
}

/* ---- helpers ---- */

static int free_port(void) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static bool port_open(int port) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

        close(fd);
        return ok;
}

/* A file in the web root with random content of len bytes and the given mtime. */
static void put_web_file(const char *name, size_t len, time_t mtime) {
        char path[PATH_MAX];
        _cleanup_free_ unsigned char *buf = malloc(len);
        struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};

        assert_non_null(buf);
        assert_int_equal(sf_random_bytes(buf, len), 0);
        snprintf(path, sizeof(path), "%s/%s", webroot, name);
        assert_int_equal(sf_file_write_atomic(path, buf, len, 0644), 0);
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void sha512_file(const char *path, char out[129], size_t *ret_len) {
        _cleanup_free_ char *data = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        size_t len = 0;

        assert_int_equal(sf_file_read(path, &data, &len), 0);
        assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha512(), NULL), 1);
        for (unsigned int i = 0; i < mdlen; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
        if (ret_len)
                *ret_len = len;
}

static void web_sha(const char *name, char out[129], size_t *ret_len) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", webroot, name);
        sha512_file(path, out, ret_len);
}

/* Lines in the HTTP server's log for `GET /<name>`, and how many of them got `status`. */
static void http_requests(const char *name, int status, int *ret_all, int *ret_status) {
        _cleanup_free_ char *log = NULL, *req = sf_strdupf("\"GET /%s HTTP/1.1\"", name);
        char code[16];
        int all = 0, st = 0;

        msleep(200); /* the server logs after answering */
        snprintf(code, sizeof(code), " %d ", status);
        assert_int_equal(sf_file_read(httplog, &log, NULL), 0);
        for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
                char *p = strstr(line, req);
                if (!p)
                        continue;
                all++;
                if (strncmp(p + strlen(req), code, strlen(code)) == 0)
                        st++;
        }
        *ret_all = all;
        *ret_status = st;
}

static int count_files(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;

        if (!d)
                return 0;
        while ((e = readdir(d))) {
                char p[PATH_MAX];
                if (e->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                n += e->d_type == DT_DIR ? count_files(p) : 1;
        }
        closedir(d);
        return n;
}

static int blob_files(void) {
        char p[PATH_MAX];

        snprintf(p, sizeof(p), "%s/blobs", storage);
        return count_files(p);
}

static void make_artifact(const char *url, int max_versions, const char *fetching, char uuid[SF_UUID_LEN]) {
        _cleanup_json_ json_object *doc = json_object_new_object();

        sf_uuid_new(uuid);
        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(doc, "namespace", json_object_new_string("system"));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "artifact_type", json_object_new_string("image"));
        json_object_object_add(doc, "source_url", json_object_new_string(url));
        json_object_object_add(doc, "max_versions", json_object_new_int(max_versions));
        json_object_object_add(doc, "shared", json_object_new_boolean(0));
        json_object_object_add(doc, "index", json_object_new_int(0));
        json_object_object_add(doc, "blobs", json_object_new_object());
        if (fetching)
                json_object_object_add(doc, "fetching_blob", json_object_new_string(fetching));
        assert_int_equal(sf_store_put(ctx.store, "artifact", uuid, 0, doc, NULL, NULL), 0);
}

static char *web_url(const char *name) { return sf_strdupf("http://127.0.0.1:%d/%s", http_port, name); }

/* Submit blob.fetch for the artifact and wait for the worker to finish it. */
static void fetch_and_wait(const char *auuid, const char *want_state) {
        char id[SF_UUID_LEN], st[16] = "";
        int64_t t0 = sf_mono_ms();

        assert_int_equal(sf_intent_submit(&ctx, node, "blob", "blob.fetch", "artifact", auuid, "system",
                                          NULL, id), 0);
        for (int i = 0; i < 300; i++) {
                assert_int_equal(sf_intent_load(ctx.store, id, NULL, st, NULL), 0);
                if (strcmp(st, SF_INTENT_PENDING) != 0)
                        break;
                msleep(50);
        }
        print_message("blob.fetch %s -> %s in %lld ms\n", auuid, st, (long long)(sf_mono_ms() - t0));
        assert_string_equal(st, want_state);
}

static json_object *get_doc(const char *type, const char *uuid) {
        json_object *doc = NULL;

        assert_int_equal(sf_store_get(ctx.store, type, uuid, &doc, NULL), 0);
        return doc;
}

static const char *version_uuid(json_object *art, int index) {
        json_object *blobs, *v;
        char key[16];

        snprintf(key, sizeof(key), "%d", index);
        if (!json_object_object_get_ex(art, "blobs", &blobs) || !json_object_object_get_ex(blobs, key, &v))
                return NULL;
        return sf_json_str(v, "uuid");
}

/* Blob doc and file agree with the web file. */
static void check_blob(const char *buuid, const char *webname) {
        _cleanup_json_ json_object *b = get_doc("blob", buuid);
        char want[129], got[129], path[PATH_MAX];
        json_object *locs = NULL;
        size_t len = 0;
        struct stat sb;

        web_sha(webname, want, &len);
        assert_string_equal(sf_json_str(b, "state"), "created");
        assert_int_equal(sf_json_int(b, "size", -1), (int64_t)len);
        assert_string_equal(sf_json_str(b, "sha512"), want);
        assert_int_equal(sf_json_int(b, "reference_count", -1), 0);
        assert_non_null(sf_json_str(b, "modified"));
        assert_true(json_object_object_get_ex(b, "locations", &locs));
        assert_int_equal(json_object_array_length(locs), 1);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(locs, 0)), node);
        assert_int_equal(sf_blob_path(storage, buuid, path, sizeof(path)), 0);
        sha512_file(path, got, NULL);
        assert_string_equal(got, want);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0644);
        *strrchr(path, '/') = 0;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0755);
}

/* ---- sf_blob_fetch_url on its own ---- */

static void test_fetch_url(void **state) {
        _cleanup_free_ char *url = web_url("unit.bin"), *url404 = web_url("nope.bin"),
                            *redir = web_url("sub"), *refused = sf_strdupf("http://127.0.0.1:%d/x", free_port());
        char dest[PATH_MAX], dest2[PATH_MAX], partial[PATH_MAX], want[129], lm[128];
        sf_blob_fetch_result_t res = {0};
        size_t len;
        struct stat sb;

        (void)state;
        put_web_file("unit.bin", 100000, time(NULL) - 3600);
        web_sha("unit.bin", want, &len);
        snprintf(dest, sizeof(dest), "%s/unit.out", storage);
        snprintf(dest2, sizeof(dest2), "%s/unit2.out", storage);

        assert_int_equal(sf_blob_fetch_url(url, dest, NULL, NULL, &lim, &res, NULL, NULL), 0);
        assert_int_equal(res.http_status, 200);
        assert_false(res.not_modified);
        assert_int_equal(res.size, len);
        assert_string_equal(res.sha512, want);
        assert_true(res.last_modified[0]);
        assert_int_equal(stat(dest, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0644);
        snprintf(partial, sizeof(partial), "%s.partial", dest);
        assert_int_equal(access(partial, F_OK), -1);
        snprintf(lm, sizeof(lm), "%s", res.last_modified);

        /* Conditional and unchanged: 304, nothing written. */
        memset(&res, 0, sizeof(res));
        assert_int_equal(sf_blob_fetch_url(url, dest2, NULL, lm, &lim, &res, NULL, NULL), 0);
        assert_int_equal(res.http_status, 304);
        assert_true(res.not_modified);
        assert_int_equal(access(dest2, F_OK), -1);
        snprintf(partial, sizeof(partial), "%s.partial", dest2);
        assert_int_equal(access(partial, F_OK), -1);

        /* HTTP errors fail, with the status. */
        memset(&res, 0, sizeof(res));
        assert_int_equal(sf_blob_fetch_url(url404, dest2, NULL, NULL, &lim, &res, NULL, NULL), -EREMOTEIO);
        assert_int_equal(res.http_status, 404);
        assert_int_equal(access(dest2, F_OK), -1);
        assert_int_equal(access(partial, F_OK), -1);

        /* Only http(s). */
        assert_int_equal(sf_blob_fetch_url("file:///etc/passwd", dest2, NULL, NULL, &lim, &res, NULL, NULL),
                         -EPROTONOSUPPORT);
        assert_int_equal(sf_blob_fetch_url("ftp://127.0.0.1/x", dest2, NULL, NULL, &lim, &res, NULL, NULL),
                         -EPROTONOSUPPORT);
        assert_int_equal(access(dest2, F_OK), -1);

        /* Nobody listening: a transfer error, nothing on disk. */
        assert_int_equal(sf_blob_fetch_url(refused, dest2, NULL, NULL, &lim, &res, NULL, NULL), -ECONNREFUSED);
        assert_int_equal(access(partial, F_OK), -1);

        /* Redirects are followed (http.server sends /sub -> /sub/, then index.html). */
        {
                char dir[PATH_MAX];
                snprintf(dir, sizeof(dir), "%s/sub", webroot);
                assert_int_equal(sf_mkdir_p(dir, 0755), 0);
                put_web_file("sub/index.html", 5000, time(NULL) - 3600);
                web_sha("sub/index.html", want, &len);
                memset(&res, 0, sizeof(res));
                assert_int_equal(sf_blob_fetch_url(redir, dest2, NULL, NULL, &lim, &res, NULL, NULL), 0);
                assert_int_equal(res.http_status, 200);
                assert_int_equal(res.size, len);
                assert_string_equal(res.sha512, want);
        }
}

/* ---- the worker ---- */

/* (1) A new artifact: downloaded, blob recorded, version 1, created. */
static void test_fetch_new(void **state) {
        _cleanup_free_ char *url = web_url("img.bin");
        _cleanup_json_ json_object *art = NULL, *events = NULL;
        const char *b1;
        bool fetched_event = false;

        (void)state;
        put_web_file("img.bin", 300000, time(NULL) - 1000);
        make_artifact(url, 3, NULL, art1);
        fetch_and_wait(art1, SF_INTENT_DONE);
        art = get_doc("artifact", art1);
        assert_string_equal(sf_json_str(art, "state"), "created");
        assert_int_equal(sf_json_int(art, "index", 0), 1);
        assert_false(json_object_object_get_ex(art, "fetching_blob", NULL));
        b1 = version_uuid(art, 1);
        assert_non_null(b1);
        check_blob(b1, "img.bin");
        assert_int_equal(sf_event_list(ctx.store, "artifact", art1, "status", 50, &events), 0);
        for (size_t i = 0; i < json_object_array_length(events); i++) {
                json_object *m;
                if (json_object_object_get_ex(json_object_array_get_idx(events, i), "message", &m) &&
                    strcmp(json_object_get_string(m), "fetched image, 300000 bytes") == 0)
                        fetched_event = true;
        }
        assert_true(fetched_event);
}

/* (2) Unchanged source: one conditional request, 304, no new blob. */
static void test_refetch_unchanged(void **state) {
        _cleanup_json_ json_object *art = NULL;
        int all0, s0, all1, s1, files = blob_files();

        (void)state;
        http_requests("img.bin", 304, &all0, &s0);
        fetch_and_wait(art1, SF_INTENT_DONE);
        http_requests("img.bin", 304, &all1, &s1);
        assert_int_equal(all1, all0 + 1);
        assert_int_equal(s1, s0 + 1);
        art = get_doc("artifact", art1);
        assert_string_equal(sf_json_str(art, "state"), "created");
        assert_int_equal(sf_json_int(art, "index", 0), 1);
        assert_int_equal(json_object_object_length(json_object_object_get(art, "blobs")), 1);
        assert_false(json_object_object_get_ex(art, "fetching_blob", NULL));
        assert_int_equal(blob_files(), files);
}

/* (3) Changed source: version 2 with the new content; version 1 kept. */
static void test_refetch_changed(void **state) {
        _cleanup_json_ json_object *art = NULL;
        const char *b1, *b2;

        (void)state;
        put_web_file("img.bin", 200000, time(NULL));
        fetch_and_wait(art1, SF_INTENT_DONE);
        art = get_doc("artifact", art1);
        assert_int_equal(sf_json_int(art, "index", 0), 2);
        b1 = version_uuid(art, 1);
        b2 = version_uuid(art, 2);
        assert_non_null(b1);
        assert_non_null(b2);
        assert_string_not_equal(b1, b2);
        check_blob(b2, "img.bin");
}

/* Versions beyond max_versions leave the artifact. */
static void test_max_versions(void **state) {
        _cleanup_free_ char *url = web_url("mv.bin");
        _cleanup_json_ json_object *art = NULL;
        char uuid[SF_UUID_LEN];
        time_t t = time(NULL) - 3000;

        (void)state;
        make_artifact(url, 2, NULL, uuid);
        for (int i = 0; i < 3; i++) {
                put_web_file("mv.bin", 1000 + (size_t)i, t + 1000 * i);
                fetch_and_wait(uuid, SF_INTENT_DONE);
        }
        art = get_doc("artifact", uuid);
        assert_int_equal(sf_json_int(art, "index", 0), 3);
        assert_int_equal(json_object_object_length(json_object_object_get(art, "blobs")), 2);
        assert_null(version_uuid(art, 1));
        assert_non_null(version_uuid(art, 2));
        check_blob(version_uuid(art, 3), "mv.bin");
}

/* (4) 404 on an artifact that never had a version: error with a message. */
static void test_fetch_404(void **state) {
        _cleanup_free_ char *url = web_url("missing.bin");
        _cleanup_json_ json_object *art = NULL;
        char uuid[SF_UUID_LEN];
        int files = blob_files();

        (void)state;
        make_artifact(url, 3, NULL, uuid);
        fetch_and_wait(uuid, SF_INTENT_FAILED);
        art = get_doc("artifact", uuid);
        assert_string_equal(sf_json_str(art, "state"), "error");
        assert_non_null(sf_json_str(art, "error_message"));
        assert_non_null(strstr(sf_json_str(art, "error_message"), "HTTP 404"));
        assert_int_equal(sf_json_int(art, "index", -1), 0);
        assert_int_equal(blob_files(), files);
}

/* (5) Not http(s): error, nothing fetched. */
static void test_fetch_not_http(void **state) {
        _cleanup_json_ json_object *art = NULL;
        char uuid[SF_UUID_LEN];
        int files = blob_files();

        (void)state;
        make_artifact("file:///etc/passwd", 3, NULL, uuid);
        fetch_and_wait(uuid, SF_INTENT_FAILED);
        art = get_doc("artifact", uuid);
        assert_string_equal(sf_json_str(art, "state"), "error");
        assert_non_null(strstr(sf_json_str(art, "error_message"), "only http and https"));
        assert_int_equal(sf_json_int(art, "index", -1), 0);
        assert_int_equal(blob_files(), files);
}

/* A crashed attempt recorded fetching_blob: the retry downloads into that same blob. */
static void test_fetching_blob_reused(void **state) {
        _cleanup_free_ char *url = web_url("crash.bin");
        _cleanup_json_ json_object *art = NULL;
        char uuid[SF_UUID_LEN], pending[SF_UUID_LEN], path[PATH_MAX];

        (void)state;
        put_web_file("crash.bin", 4096, time(NULL) - 100);
        sf_uuid_new(pending);
        /* ... and left a half-written file behind. */
        assert_int_equal(sf_blob_path(storage, pending, path, sizeof(path)), 0);
        strcat(path, ".partial");
        *strrchr(path, '/') = 0;
        assert_int_equal(sf_mkdir_p(path, 0755), 0);
        path[strlen(path)] = '/';
        assert_int_equal(sf_file_write_atomic(path, "junk", 4, 0644), 0);

        make_artifact(url, 3, pending, uuid);
        fetch_and_wait(uuid, SF_INTENT_DONE);
        art = get_doc("artifact", uuid);
        assert_int_equal(sf_json_int(art, "index", 0), 1);
        assert_string_equal(version_uuid(art, 1), pending);
        assert_false(json_object_object_get_ex(art, "fetching_blob", NULL));
        check_blob(pending, "crash.bin");
        assert_int_equal(access(path, F_OK), -1);
}

/* A crash after the blob was recorded but before the artifact version: no download again. */
static void test_fetched_blob_committed(void **state) {
        _cleanup_free_ char *url = web_url("late.bin");
        _cleanup_json_ json_object *art = NULL;
        char uuid[SF_UUID_LEN], buuid[SF_UUID_LEN], path[PATH_MAX];
        sf_blob_fetch_result_t res = {0};
        _cleanup_json_ json_object *b = json_object_new_object(), *locs = json_object_new_array();
        int all0, s0, all1, s1;

        (void)state;
        put_web_file("late.bin", 2048, time(NULL) - 100);
        sf_uuid_new(buuid);
        assert_int_equal(sf_blob_path(storage, buuid, path, sizeof(path)), 0);
        *strrchr(path, '/') = 0;
        assert_int_equal(sf_mkdir_p(path, 0755), 0);
        path[strlen(path)] = '/';
        assert_int_equal(sf_blob_fetch_url(url, path, NULL, NULL, &lim, &res, NULL, NULL), 0);
        json_object_array_add(locs, json_object_new_string(node));
        json_object_object_add(b, "uuid", json_object_new_string(buuid));
        json_object_object_add(b, "state", json_object_new_string("created"));
        json_object_object_add(b, "namespace", json_object_new_string("system"));
        json_object_object_add(b, "size", json_object_new_int64((int64_t)res.size));
        json_object_object_add(b, "sha512", json_object_new_string(res.sha512));
        json_object_object_add(b, "modified", json_object_new_string(res.last_modified));
        json_object_object_add(b, "reference_count", json_object_new_int(0));
        json_object_object_add(b, "locations", json_object_get(locs));
        assert_int_equal(sf_store_put(ctx.store, "blob", buuid, 0, b, NULL, NULL), 0);

        make_artifact(url, 3, buuid, uuid);
        http_requests("late.bin", 200, &all0, &s0);
        fetch_and_wait(uuid, SF_INTENT_DONE);
        http_requests("late.bin", 200, &all1, &s1);
        assert_int_equal(all1, all0);
        art = get_doc("artifact", uuid);
        assert_string_equal(sf_json_str(art, "state"), "created");
        assert_int_equal(sf_json_int(art, "index", 0), 1);
        assert_string_equal(version_uuid(art, 1), buuid);
}

/* Same bytes under a newer Last-Modified: downloaded, found identical, discarded; the
 * blob learns the new validators.  Then the source vanishes: the cached version stays. */
static void test_revalidate_same_bytes_then_404(void **state) {
        _cleanup_free_ char *url = web_url("edge.bin");
        _cleanup_json_ json_object *art = NULL, *b = NULL, *events = NULL;
        char uuid[SF_UUID_LEN], path[PATH_MAX], b1[SF_UUID_LEN], mod1[64];
        struct timespec ts[2] = {{.tv_sec = 0}, {.tv_sec = 0}};
        int files, all0, s0, all1, s1;
        bool kept_event = false;

        (void)state;
        put_web_file("edge.bin", 3000, time(NULL) - 2000);
        make_artifact(url, 3, NULL, uuid);
        fetch_and_wait(uuid, SF_INTENT_DONE);
        art = get_doc("artifact", uuid);
        snprintf(b1, sizeof(b1), "%s", version_uuid(art, 1));
        b = get_doc("blob", b1);
        snprintf(mod1, sizeof(mod1), "%s", sf_json_str(b, "modified"));
        json_object_put(art);
        json_object_put(b);

        files = blob_files();
        snprintf(path, sizeof(path), "%s/edge.bin", webroot);
        ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 1000;
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
        http_requests("edge.bin", 200, &all0, &s0);
        fetch_and_wait(uuid, SF_INTENT_DONE);
        http_requests("edge.bin", 200, &all1, &s1);
        assert_int_equal(s1, s0 + 1); /* a full download happened ... */
        art = get_doc("artifact", uuid);
        assert_int_equal(sf_json_int(art, "index", 0), 1); /* ... and was discarded */
        assert_int_equal(blob_files(), files);
        b = get_doc("blob", b1);
        assert_string_not_equal(sf_json_str(b, "modified"), mod1);
        json_object_put(art);

        assert_int_equal(unlink(path), 0);
        fetch_and_wait(uuid, SF_INTENT_DONE);
        art = get_doc("artifact", uuid);
        assert_string_equal(sf_json_str(art, "state"), "created");
        assert_int_equal(sf_json_int(art, "index", 0), 1);
        assert_false(json_object_object_get_ex(art, "fetching_blob", NULL));
        assert_int_equal(sf_event_list(ctx.store, "artifact", uuid, "status", 50, &events), 0);
        for (size_t i = 0; i < json_object_array_length(events); i++) {
                json_object *m;
                if (json_object_object_get_ex(json_object_array_get_idx(events, i), "message", &m) &&
                    strstr(json_object_get_string(m), "HTTP 404") &&
                    strstr(json_object_get_string(m), "keeping version 1"))
                        kept_event = true;
        }
        assert_true(kept_event);
}

/* Another fetch holds the artifact lock: the intent waits (not counted) and then runs. */
static void test_lock_busy_waits(void **state) {
        _cleanup_free_ char *url = web_url("busy.bin");
        _cleanup_json_ json_object *art = NULL;
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN], name[64], st[16] = "";
        sf_lock_t *lock = NULL;
        int attempts = -1;

        (void)state;
        put_web_file("busy.bin", 1000, time(NULL) - 100);
        make_artifact(url, 3, NULL, uuid);
        snprintf(name, sizeof(name), "artifact/%s", uuid);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "test", 30000, 0, true, &lock), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "blob", "blob.fetch", "artifact", uuid, "system",
                                          NULL, id), 0);
        msleep(4000); /* longer than the handler's own lock wait */
        assert_int_equal(sf_intent_load(ctx.store, id, NULL, st, &attempts), 0);
        assert_string_equal(st, SF_INTENT_PENDING);
        assert_true(attempts <= 1); /* WAITs are not failures */
        sf_lock_release(ctx.store, lock);
        for (int i = 0; i < 200 && strcmp(st, SF_INTENT_PENDING) == 0; i++) {
                msleep(50);
                sf_intent_load(ctx.store, id, NULL, st, NULL);
        }
        assert_string_equal(st, SF_INTENT_DONE);
        art = get_doc("artifact", uuid);
        assert_int_equal(sf_json_int(art, "index", 0), 1);
}

static void count_progress(void *ud) { (*(int *)ud)++; }

/* A slow transfer reports progress, at most every ~2 s. */
static void test_fetch_progress(void **state) {
        static const char slow[] =
                "import http.server, sys, time\n"
                "class H(http.server.BaseHTTPRequestHandler):\n"
                "    def do_GET(self):\n"
                "        self.send_response(200)\n"
                "        self.send_header('Content-Length', str(5 * 4096))\n"
                "        self.end_headers()\n"
                "        for _ in range(5):\n"
                "            self.wfile.write(b'x' * 4096); self.wfile.flush(); time.sleep(1.1)\n"
                "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";
        char port[16], dest[PATH_MAX];
        char *argv[] = {(char *)"python3", (char *)"-c", (char *)slow, port, NULL};
        _cleanup_free_ char *url = NULL;
        sf_blob_fetch_result_t res = {0};
        int p = free_port(), calls = 0, status;
        pid_t pid;

        (void)state;
        snprintf(port, sizeof(port), "%d", p);
        assert_int_equal(sf_exec_spawn(argv, "/dev/null", &pid), 0);
        for (int i = 0; i < 100 && !port_open(p); i++)
                msleep(50);
        url = sf_strdupf("http://127.0.0.1:%d/slow", p);
        snprintf(dest, sizeof(dest), "%s/slow.out", storage);
        int64_t t0 = sf_mono_ms(), ms;
        assert_int_equal(sf_blob_fetch_url(url, dest, NULL, NULL, &lim, &res, count_progress, &calls), 0);
        ms = sf_mono_ms() - t0;
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_int_equal(res.size, 5 * 4096);
        print_message("progress called %d times over %lld ms\n", calls, (long long)ms);
        /* At most one call per ~2 s of transfer (a loaded machine stretches the
         * server's ~5.5 s), and more than one. */
        assert_true(calls >= 2 && calls <= 1 + ms / 2000);
}

/* ---- the limits (SF_DOWNLOAD_TIMEOUT, SF_DOWNLOAD_MAX_BYTES, lib/netpolicy.h) ---- */

static int bad_port;
static pid_t bad_pid;

static void no_leftovers(const char *dest) {
        char partial[PATH_MAX];

        snprintf(partial, sizeof(partial), "%s.partial", dest);
        assert_int_equal(access(dest, F_OK), -1);
        assert_int_equal(access(partial, F_OK), -1);
}

/* Fetch url with limits l; returns the result code, elapsed ms in *ms. */
static int fetch_limited(const char *url, const sf_blob_fetch_limits_t *l, sf_blob_fetch_result_t *res,
                         int64_t *ms) {
        char dest[PATH_MAX];
        int64_t t0 = sf_mono_ms();
        int r;

        snprintf(dest, sizeof(dest), "%s/limited.out", storage);
        memset(res, 0, sizeof(*res));
        r = sf_blob_fetch_url(url, dest, NULL, NULL, l, res, NULL, NULL);
        *ms = sf_mono_ms() - t0;
        print_message("%s -> %d (%s) in %lld ms\n", url, r, res->error, (long long)*ms);
        if (r < 0)
                no_leftovers(dest);
        return r;
}

static void test_fetch_size_limit(void **state) {
        _cleanup_free_ char *endless = sf_strdupf("http://127.0.0.1:%d/endless", bad_port),
                            *huge = sf_strdupf("http://127.0.0.1:%d/huge", bad_port);
        sf_blob_fetch_limits_t l = lim;
        sf_blob_fetch_result_t res;
        int64_t ms;

        (void)state;
        /* An endless body stops at the cap; nothing is left on disk. */
        l.max_bytes = 1 << 20;
        assert_int_equal(fetch_limited(endless, &l, &res, &ms), -EFBIG);
        assert_string_equal(res.error, "image is larger than the limit of 1048576 bytes (SF_DOWNLOAD_MAX_BYTES)");
        assert_true(ms < 10000);
        /* A Content-Length over the cap is refused before the body (which would take days). */
        assert_int_equal(fetch_limited(huge, &l, &res, &ms), -EFBIG);
        assert_true(ms < 5000);
}

static void test_fetch_time_limit(void **state) {
        _cleanup_free_ char *trickle = sf_strdupf("http://127.0.0.1:%d/trickle", bad_port);
        sf_blob_fetch_limits_t l = lim;
        sf_blob_fetch_result_t res;
        int64_t ms;

        (void)state;
        l.timeout_s = 2;
        assert_int_equal(fetch_limited(trickle, &l, &res, &ms), -ETIME);
        assert_string_equal(res.error, "download took longer than the limit of 2 s (SF_DOWNLOAD_TIMEOUT)");
        assert_true(ms >= 1900 && ms < 6000);
}

/* The policy judges the address connected to: literal, a name, after a redirect; env
 * proxies do not hide the peer. */
static void test_fetch_destinations(void **state) {
        _cleanup_free_ char *web = web_url("unit.bin"),
                            *by_name = sf_strdupf("http://localhost:%d/", ctx.cfg.redis_port),
                            *redirect = sf_strdupf("http://127.0.0.1:%d/redirect?to=http://localhost:%d/unit.bin",
                                                   bad_port, http_port),
                            *want = NULL;
        sf_config_t cfg = ctx.cfg;
        sf_netpolicy_t p;
        sf_blob_fetch_limits_t l = lim;
        sf_blob_fetch_result_t res;
        int64_t ms;

        (void)state;
        put_web_file("unit.bin", 100000, time(NULL) - 3600);
        l.policy = &p;

        /* the defaults: loopback is off limits */
        cfg.download_allow[0] = 0;
        assert_int_equal(sf_netpolicy_init(&p, &cfg), 0);
        assert_int_equal(fetch_limited(web, &l, &res, &ms), -EACCES);
        want = sf_strdupf("destination 127.0.0.1:%d is not allowed (loopback)", http_port);
        assert_string_equal(res.error, want);

        /* loopback allowed, but a name resolving to the node's Redis port is still refused */
        snprintf(cfg.download_allow, sizeof(cfg.download_allow), "127.0.0.0/8,::1");
        assert_int_equal(sf_netpolicy_init(&p, &cfg), 0);
        assert_int_equal(fetch_limited(by_name, &l, &res, &ms), -EACCES);
        assert_non_null(strstr(res.error, "is not allowed (a service port of this node)"));

        /* a redirect to a port that is not allowed is refused at connect time */
        snprintf(cfg.download_allow, sizeof(cfg.download_allow), "127.0.0.1:%d", bad_port);
        assert_int_equal(sf_netpolicy_init(&p, &cfg), 0);
        assert_int_equal(fetch_limited(redirect, &l, &res, &ms), -EACCES);
        free(want);
        want = sf_strdupf(":%d is not allowed (loopback)", http_port); /* [::1] or 127.0.0.1 */
        assert_non_null(strstr(res.error, want));
        /* ... and followed once that port is allowed too */
        snprintf(cfg.download_allow, sizeof(cfg.download_allow), "127.0.0.1:%d,127.0.0.1:%d", bad_port,
                 http_port);
        assert_int_equal(sf_netpolicy_init(&p, &cfg), 0);
        assert_int_equal(fetch_limited(redirect, &l, &res, &ms), 0);
        assert_int_equal(res.size, 100000);

        /* a proxy from the environment is not used (it would hide the real peer) */
        setenv("http_proxy", "http://127.0.0.1:9/", 1);
        setenv("HTTP_PROXY", "http://127.0.0.1:9/", 1);
        assert_int_equal(fetch_limited(redirect, &l, &res, &ms), 0);
        unsetenv("http_proxy");
        unsetenv("HTTP_PROXY");
}

/* ---- setup ---- */

static int setup(void **state) {
        char u[SF_UUID_LEN], port[16];
        char *http_argv[] = {(char *)"python3", (char *)"-u", (char *)"-m", (char *)"http.server",
                             (char *)"--bind", (char *)"127.0.0.1", port, (char *)"--directory",
                             webroot, NULL};
        char *worker_argv[] = {(char *)"/proc/self/exe", (char *)"--worker", NULL};

        (void)state;
        sf_uuid_new(u);
        snprintf(node, sizeof(node), "bt-%.8s", u);
        if (!mkdtemp(storage) || !mkdtemp(webroot))
                return -1;
        chmod(storage, 0755);
        setenv("SF_NODE", node, 1);
        setenv("SF_STORAGE", storage, 1);
        http_port = free_port();
        snprintf(port, sizeof(port), "%d", http_port);
        if (sf_netpolicy_allow(&loopback_ok, "127.0.0.0/8,::1") < 0)
                return -1;
        {
                char allow[64]; /* the worker may fetch from our web server, nothing else local */
                snprintf(allow, sizeof(allow), "127.0.0.1:%d", http_port);
                setenv("SF_DOWNLOAD_ALLOW", allow, 1);
        }
        snprintf(httplog, sizeof(httplog), "%s/http.log", storage);
        if (sf_exec_spawn(http_argv, httplog, &http_pid) < 0)
                return -1;
        for (int i = 0; i < 100 && !port_open(http_port); i++)
                msleep(50);
        if (!port_open(http_port))
                return -1;
        if (sf_ctx_open(&ctx, true, 5) < 0)
                return -1;
        {
                char bport[16];
                char *bad_argv[] = {(char *)"python3", (char *)"tests/tools/badhttp.py", bport, NULL};
                bad_port = free_port();
                snprintf(bport, sizeof(bport), "%d", bad_port);
                if (sf_exec_spawn(bad_argv, "/dev/null", &bad_pid) < 0)
                        return -1;
                for (int i = 0; i < 100 && !port_open(bad_port); i++)
                        msleep(50);
                if (!port_open(bad_port))
                        return -1;
        }
        return sf_exec_spawn(worker_argv, "/dev/stderr", &worker_pid);
}

static int teardown(void **state) {
        int status;

        (void)state;
        if (worker_pid > 0) {
                kill(worker_pid, SIGTERM);
                waitpid(worker_pid, &status, 0);
        }
        if (http_pid > 0) {
                kill(http_pid, SIGTERM);
                waitpid(http_pid, &status, 0);
        }
        if (bad_pid > 0) {
                kill(bad_pid, SIGTERM);
                waitpid(bad_pid, &status, 0);
        }
        sf_ctx_close(&ctx);
        sf_rm_rf(storage);
        sf_rm_rf(webroot);
        return 0;
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fetch_url),
                cmocka_unit_test(test_fetch_new),
                cmocka_unit_test(test_refetch_unchanged),
                cmocka_unit_test(test_refetch_changed),
                cmocka_unit_test(test_max_versions),
                cmocka_unit_test(test_fetch_404),
                cmocka_unit_test(test_fetch_not_http),
                cmocka_unit_test(test_fetching_blob_reused),
                cmocka_unit_test(test_fetched_blob_committed),
                cmocka_unit_test(test_revalidate_same_bytes_then_404),
                cmocka_unit_test(test_lock_busy_waits),
                cmocka_unit_test(test_fetch_progress),
                cmocka_unit_test(test_fetch_size_limit),
                cmocka_unit_test(test_fetch_time_limit),
                cmocka_unit_test(test_fetch_destinations),
        };

        if (argc > 1 && strcmp(argv[1], "--worker") == 0)
                return worker_main();
        return cmocka_run_group_tests(tests, setup, teardown);
}
