/* Route matching with sf-api's real route table (api/routes.c): the input is "METHOD
 * path" (GET when there is no space), percent-decoded as the server does before routing
 * (sf_http_url_unescape), then matched with a scratch buffer sized as on_request sizes it.
 * A match must rebuild the path exactly from the route's pattern and the captures. */
#include "../fuzz.h"

#include <errno.h>

#include "api.h"

static void check_match(const sf_http_route_t *route, const char *path, const char *const *params,
                        size_t nparams) {
        const char *p = route->pattern;
        size_t used = 0, k = 0, plen = strlen(path);
        char *rebuilt = malloc(plen + 1);

        if (!rebuilt)
                abort();
        while (*p) {
                if (p[0] == '{' && p[1] == '}') {
                        size_t n;

                        FUZZ_CHECK(k < nparams);
                        n = strlen(params[k]);
                        FUZZ_CHECK(n > 0 && !strchr(params[k], '/') && used + n <= plen);
                        memcpy(rebuilt + used, params[k++], n);
                        used += n;
                        p += 2;
                } else {
                        FUZZ_CHECK(used < plen);
                        rebuilt[used++] = *p++;
                }
        }
        rebuilt[used] = 0;
        FUZZ_CHECK(k == nparams);
        FUZZ_CHECK(strcmp(rebuilt, path) == 0);
        free(rebuilt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *in = fuzz_str(data, size), *sp = strchr(in, ' '), *scratch;
        const char *method = "GET", *path = in, *params[SF_HTTP_MAX_PARAMS];
        const sf_http_route_t *route = NULL;
        size_t nparams = 0, sl;
        bool known = true;
        int r;

        if (sp) {
                *sp = 0;
                method = in;
                path = sp + 1;
        }
        sf_http_url_unescape((char *)path);
        sl = strlen(path) + 1;
        scratch = malloc(sl);
        if (!scratch)
                abort();
        r = sf_http_route_match(sf_api_routes, sf_api_nroutes, method, path, scratch, sl, params, &nparams,
                                &route, &known);
        if (r == 0) {
                FUZZ_CHECK(known && route && nparams <= SF_HTTP_MAX_PARAMS);
                FUZZ_CHECK(strcmp(route->method, method) == 0 ||
                           (strcmp(method, "HEAD") == 0 && strcmp(route->method, "GET") == 0));
                check_match(route, path, params, nparams);
        } else {
                FUZZ_CHECK(r == -ENOENT || r == -ENAMETOOLONG);
        }
        free(scratch);
        free(in);
        return 0;
}
