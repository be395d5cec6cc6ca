#include "fetch.h"

#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PROGRESS_EVERY_MS 2000

typedef struct fetch_state {
        const char *partial;
        int fd;
        int werr; /* errno of a failed open/write: the transfer is aborted with it */
        EVP_MD_CTX *md;
        uint64_t size;
        char etag[256];
        char last_modified[128];
        void (*progress)(void *ud);
        void *ud;
        int64_t last_progress_ms;
        const sf_blob_fetch_limits_t *limits;
        bool too_big;   /* the body passed limits->max_bytes */
        bool stopped;   /* limits->stop was set */
        char denied[200]; /* why the policy refused an address ("" if it did not) */
} fetch_state_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

bool sf_blob_url_ok(const char *url) {
        return url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0);
}

/* "Name: value\r\n" -> value, trimmed, if the header is `name`. */
static void header_value(const char *buf, size_t len, const char *name, char *out, size_t outlen) {
        size_t nl = strlen(name);
        const char *v, *end = buf + len;

        if (len <= nl || strncasecmp(buf, name, nl) != 0 || buf[nl] != ':')
                return;
        for (v = buf + nl + 1; v < end && (*v == ' ' || *v == '\t'); v++)
                ;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        snprintf(out, outlen, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
        fetch_state_t *st = ud;
        size_t len = size * n;

        /* A new status line starts a new response (redirect hop): only the last counts. */
        if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                st->etag[0] = st->last_modified[0] = 0;
                return len;
        }
        header_value(buf, len, "etag", st->etag, sizeof(st->etag));
        header_value(buf, len, "last-modified", st->last_modified, sizeof(st->last_modified));
        return len;
}

static int open_partial(fetch_state_t *st) {
        st->fd = open(st->partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (st->fd < 0)
                return -errno;
        /* qemu runs as another user and must read blobs: do not depend on the umask. */
        if (fchmod(st->fd, 0644) < 0)
                return -errno;
        return 0;
}

/* libcurl only hands us the final response's body (redirect bodies are skipped). */
static size_t on_write(char *buf, size_t size, size_t n, void *ud) {
        fetch_state_t *st = ud;
        size_t len = size * n, done = 0;
        int r;

        if (st->limits->max_bytes && st->size + len > st->limits->max_bytes) {
                st->too_big = true; /* an endless body stops here */
                return 0;
        }
        if (st->fd < 0 && (r = open_partial(st)) < 0) {
                st->werr = -r;
                return 0;
        }
        if (EVP_DigestUpdate(st->md, buf, len) != 1) {
                st->werr = EIO;
                return 0;
        }
        while (done < len) {
                ssize_t w = write(st->fd, buf + done, len - done);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        st->werr = errno;
                        return 0;
                }
                done += (size_t)w;
        }
        st->size += len;
        return len;
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
        fetch_state_t *st = ud;
        int64_t now = sf_mono_ms();

        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        (void)ulnow;
        if (st->limits->stop && *st->limits->stop) {
                st->stopped = true;
                return 1;
        }
        if (st->progress && now - st->last_progress_ms >= PROGRESS_EVERY_MS) {
                st->last_progress_ms = now;
                st->progress(st->ud);
        }
        return 0;
}

/* Every connection (first request, each redirect hop, each address a name resolves to)
 * opens its socket here: the policy sees the address actually connected to. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
        fetch_state_t *st = ud;
        int fd;

        if (purpose != CURLSOCKTYPE_IPCXN ||
            sf_netpolicy_check(st->limits->policy, &a->addr, st->denied, sizeof(st->denied)) < 0) {
                if (!st->denied[0])
                        snprintf(st->denied, sizeof(st->denied), "connection type %d is not allowed", purpose);
                return CURL_SOCKET_BAD;
        }
        fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int curl_errno(CURLcode cc, int werr) {
        switch (cc) {
        case CURLE_WRITE_ERROR:
                return werr ? -werr : -EIO;
        case CURLE_HTTP_RETURNED_ERROR:
                return -EREMOTEIO;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_TOO_MANY_REDIRECTS:
                return -ELOOP;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* Was the transfer stopped by one of the limits?  Then *r and the message say which. */
static bool limit_exceeded(CURL *curl, CURLcode cc, const fetch_state_t *st, char *msg, size_t len, int *r) {
        const sf_blob_fetch_limits_t *l = st->limits;
        curl_off_t total_us = 0;

        if (st->denied[0] && cc == CURLE_COULDNT_CONNECT) {
                snprintf(msg, len, "%s", st->denied);
                *r = -EACCES;
        } else if (st->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
                snprintf(msg, len, "image is larger than the limit of %llu bytes (SF_DOWNLOAD_MAX_BYTES)",
                         (unsigned long long)l->max_bytes);
                *r = -EFBIG;
        } else if (st->stopped) {
                snprintf(msg, len, "download abandoned: the worker is stopping");
                *r = -ECANCELED;
        } else if (cc == CURLE_OPERATION_TIMEDOUT && l->timeout_s > 0 &&
                   curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK &&
                   total_us >= (curl_off_t)l->timeout_s * 1000000 - 100000) {
                snprintf(msg, len, "download took longer than the limit of %d s (SF_DOWNLOAD_TIMEOUT)",
                         l->timeout_s);
                *r = -ETIME;
        } else {
                return false;
        }
        return true;
}

/* Make the rename itself durable. */
static int fsync_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int dfd = -1;

        if (!copy)
                return -ENOMEM;
        dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return -errno;
        return 0;
}

static void hex(const unsigned char *in, size_t len, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * len] = 0;
}

int sf_blob_fetch_url(const char *url, const char *dest_path, const char *etag,
                      const char *last_modified, const sf_blob_fetch_limits_t *limits,
                      sf_blob_fetch_result_t *ret, void (*progress)(void *ud), void *ud) {
        _cleanup_free_ char *partial = NULL, *h_etag = NULL, *h_ims = NULL;
        fetch_state_t st = {.fd = -1, .progress = progress, .ud = ud, .limits = limits};
        sf_blob_fetch_result_t res = {0};
        struct curl_slist *hdrs = NULL, *tmp;
        char errbuf[CURL_ERROR_SIZE] = "";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        CURL *curl = NULL;
        CURLcode cc;
        int r = 0;

        if (!url || !dest_path || !ret || !limits || !limits->policy)
                return -EINVAL;
        if (!sf_blob_url_ok(url)) {
                snprintf(ret->error, sizeof(ret->error), "only http and https URLs can be fetched");
                ret->http_status = 0;
                return -EPROTONOSUPPORT;
        }
        pthread_once(&curl_once, curl_init_once);
        partial = sf_strdupf("%s.partial", dest_path);
        st.partial = partial;
        st.md = EVP_MD_CTX_new();
        curl = curl_easy_init();
        if (!partial || !st.md || !curl) {
                r = -ENOMEM;
                goto cleanup;
        }
        if (EVP_DigestInit_ex(st.md, EVP_sha512(), NULL) != 1) {
                r = -EIO;
                goto cleanup;
        }
        if (etag && *etag) {
                h_etag = sf_strdupf("If-None-Match: %s", etag);
                if (!h_etag || !(tmp = curl_slist_append(hdrs, h_etag))) {
                        r = -ENOMEM;
                        goto cleanup;
                }
                hdrs = tmp;
        }
        if (last_modified && *last_modified) {
                h_ims = sf_strdupf("If-Modified-Since: %s", last_modified);
                if (!h_ims || !(tmp = curl_slist_append(hdrs, h_ims))) {
                        r = -ENOMEM;
                        goto cleanup;
                }
                hdrs = tmp;
        }

        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* never via http_proxy & co: we check the real peer */
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &st);
        if (limits->timeout_s > 0)
                curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)limits->timeout_s);
        if (limits->max_bytes) /* a Content-Length over the cap is refused before any byte */
                curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limits->max_bytes);
        curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM games in a threaded process */
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
        /* A stalled transfer is aborted; a slow but moving one may take as long as it needs. */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "sf-blob/1");
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &st);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);

        st.last_progress_ms = sf_mono_ms();
        cc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res.http_status);
        if (cc != CURLE_OK) {
                r = curl_errno(cc, st.werr);
                if (limit_exceeded(curl, cc, &st, res.error, sizeof(res.error), &r))
                        goto cleanup;
                if (cc == CURLE_WRITE_ERROR && st.werr)
                        snprintf(res.error, sizeof(res.error), "writing %s: %s", partial,
                                 strerror(st.werr));
                else if (cc == CURLE_HTTP_RETURNED_ERROR)
                        snprintf(res.error, sizeof(res.error), "HTTP %ld", res.http_status);
                else
                        snprintf(res.error, sizeof(res.error), "%s",
                                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
                goto cleanup;
        }
        snprintf(res.etag, sizeof(res.etag), "%s", st.etag);
        snprintf(res.last_modified, sizeof(res.last_modified), "%s", st.last_modified);
        if (res.http_status == 304) {
                res.not_modified = true;
                goto cleanup;
        }
        if (res.http_status < 200 || res.http_status > 299) {
                /* e.g. a 3xx without Location: not something we can store */
                snprintf(res.error, sizeof(res.error), "HTTP %ld", res.http_status);
                r = -EREMOTEIO;
                goto cleanup;
        }
        /* An empty body never reached on_write. */
        if (st.fd < 0 && (r = open_partial(&st)) < 0) {
                snprintf(res.error, sizeof(res.error), "creating %s: %s", partial, strerror(-r));
                goto cleanup;
        }
        if (EVP_DigestFinal_ex(st.md, md, &mdlen) != 1) {
                snprintf(res.error, sizeof(res.error), "sha512 failed");
                r = -EIO;
                goto cleanup;
        }
        if (fsync(st.fd) < 0 || rename(partial, dest_path) < 0) {
                r = -errno;
                snprintf(res.error, sizeof(res.error), "storing %s: %s", dest_path, strerror(-r));
                goto cleanup;
        }
        /* The data is on disk; a lost rename only costs a re-download. */
        r = fsync_parent(dest_path);
        if (r < 0)
                log_warn("fsync of the directory of %s failed: %s", dest_path, strerror(-r));
        r = 0;
        hex(md, mdlen, res.sha512);
        res.size = st.size;
cleanup:
        if (st.fd >= 0)
                close(st.fd);
        /* Nothing half-written survives: not on error, not a stale one on 304. */
        if ((r < 0 || res.not_modified) && partial)
                unlink(partial);
        if (r == 0) {
                *ret = res;
        } else {
                ret->http_status = res.http_status;
                snprintf(ret->error, sizeof(ret->error), "%s", res.error[0] ? res.error : strerror(-r));
        }
        curl_slist_free_all(hdrs);
        if (curl)
                curl_easy_cleanup(curl);
        EVP_MD_CTX_free(st.md);
        return r;
}
