/* libcurl, loaded on first use: sf links no libcurl at all, and each curl_* function the
 * CLI calls is defined here to resolve the real one from libcurl.so.4 (dlopen, once) and
 * call it. So `sf --help`, `sf version` and offline completion never pay for mapping and
 * relocating libcurl and its 30-odd libraries (most of the start-up time: docs/bench.md,
 * cli_help_ms), while every command that talks to the API loads it at curl_global_init.
 * A curl function used anywhere in cli/ and missing here fails the link (an undefined
 * reference): add one line below. If libcurl.so.4 cannot be loaded, sf says so and exits 1. */
#define CURL_DISABLE_TYPECHECK /* the type-checking macros would rename the definitions */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define SF_LIBCURL_SONAME "libcurl.so.4"

static void *curl_symbol(const char *name) {
        static void *lib;
        void *fn;
        if (!lib && !(lib = dlopen(SF_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL))) {
                fprintf(stderr, "ERROR: cannot load %s: %s\n", SF_LIBCURL_SONAME, dlerror());
                exit(1);
        }
        if (!(fn = dlsym(lib, name))) {
                fprintf(stderr, "ERROR: %s has no %s: %s\n", SF_LIBCURL_SONAME, name, dlerror());
                exit(1);
        }
        return fn;
}

/* RET name(PARAMS) { return real(ARGS); } with the real function resolved once. */
#define CURL_LAZY(ret, name, params, args)                                                \
        ret name params {                                                              \
                static ret(*real) params;                                                 \
                if (!real)                                                                \
                        *(void **)&real = curl_symbol(#name);                             \
                return real args;                                                         \
        }
#define CURL_LAZY_VOID(name, params, args)                                                \
        void name params {                                                             \
                static void(*real) params;                                                \
                if (!real)                                                                \
                        *(void **)&real = curl_symbol(#name);                             \
                real args;                                                                \
        }

CURL_LAZY(CURLcode, curl_global_init, (long flags), (flags))
CURL_LAZY_VOID(curl_global_cleanup, (void), ())
CURL_LAZY(CURL *, curl_easy_init, (void), ())
CURL_LAZY_VOID(curl_easy_cleanup, (CURL * h), (h))
CURL_LAZY(CURLcode, curl_easy_perform, (CURL * h), (h))
CURL_LAZY(CURLcode, curl_easy_pause, (CURL * h, int bitmask), (h, bitmask))
CURL_LAZY(const char *, curl_easy_strerror, (CURLcode code), (code))
CURL_LAZY(char *, curl_easy_escape, (CURL * h, const char *s, int len), (h, s, len))
CURL_LAZY_VOID(curl_free, (void *p), (p))
CURL_LAZY(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))
CURL_LAZY_VOID(curl_slist_free_all, (struct curl_slist * l), (l))
CURL_LAZY(CURLM *, curl_multi_init, (void), ())
CURL_LAZY(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
CURL_LAZY(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *h), (m, h))
CURL_LAZY(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *h), (m, h))
CURL_LAZY(CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))
CURL_LAZY(CURLMcode, curl_multi_poll, (CURLM * m, struct curl_waitfd * fds, unsigned n, int timeout_ms, int *numfds),
          (m, fds, n, timeout_ms, numfds))
CURL_LAZY(CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))

/* The variadic two take exactly one argument after the option: a long, a pointer, a
 * function pointer or a curl_off_t, each passed in one 64-bit register on x86-64 and
 * aarch64, so it is forwarded as a pointer-sized word, as libcurl reads it back. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
        static CURLcode (*real)(CURL *, CURLoption, ...);
        va_list ap;
        void *arg;
        if (!real)
                *(void **)&real = curl_symbol("curl_easy_setopt");
        va_start(ap, opt);
        arg = va_arg(ap, void *);
        va_end(ap);
        return real(h, opt, arg);
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
        static CURLcode (*real)(CURL *, CURLINFO, ...);
        va_list ap;
        void *arg;
        if (!real)
                *(void **)&real = curl_symbol("curl_easy_getinfo");
        va_start(ap, info);
        arg = va_arg(ap, void *);
        va_end(ap);
        return real(h, info, arg);
}
