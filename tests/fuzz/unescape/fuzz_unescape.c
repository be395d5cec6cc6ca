/* URL percent-decoding as the server does it before routing (api/http.c
 * sf_http_url_unescape), against a reference decoder: %XX (two hex digits) is one byte,
 * anything else stays; a URL that would decode to a NUL or another control character is
 * left exactly as it came. */
#include "../fuzz.h"

#include <ctype.h>

#include "http.h"

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

static size_t reference(const char *s, char *out) {
        size_t o = 0;

        for (size_t i = 0; s[i]; i++) {
                if (s[i] == '%' && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
                        out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                        i += 2;
                } else {
                        out[o++] = s[i];
                }
        }
        out[o] = 0;
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_str(data, size), *orig = strdup(s), *want = malloc(size + 1);
        size_t n, wn;
        bool control = false;

        if (!orig || !want)
                abort();
        wn = reference(orig, want);
        for (size_t i = 0; i < wn; i++)
                control |= (unsigned char)want[i] < 0x20 || want[i] == 0x7f;
        n = sf_http_url_unescape(s);
        if (control) {
                FUZZ_CHECK(n == strlen(orig) && strcmp(s, orig) == 0);
        } else {
                FUZZ_CHECK(n == wn && memcmp(s, want, wn + 1) == 0);
        }
        free(want);
        free(orig);
        free(s);
        return 0;
}
