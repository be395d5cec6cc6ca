/* JWT verification and Authorization header parsing (api/auth.c sf_auth_token_verify).
 * First byte 'H': the rest is the header value as sent. Otherwise the input is a JWT
 * header JSON, a NUL, and a claims JSON, which this target signs with the server's secret
 * (HS256) so that the claim checks behind the signature are reached too. */
#include "../fuzz.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include "auth.h"

#define SECRET "fuzz-secret-0123456789"

static size_t b64url(const uint8_t *in, size_t n, char *out) {
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                             (i + 2 < n ? in[i + 2] : 0);

                out[o++] = tbl[v >> 18 & 63];
                out[o++] = tbl[v >> 12 & 63];
                if (i + 1 < n)
                        out[o++] = tbl[v >> 6 & 63];
                if (i + 2 < n)
                        out[o++] = tbl[v & 63];
        }
        out[o] = 0;
        return o;
}

static char *signed_header(const uint8_t *data, size_t size) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hl = nul ? (size_t)(nul - data) : size, pl = nul ? size - hl - 1 : 0;
        char *out = malloc(8 + 2 * (size + 64)), *p;
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;

        if (!out)
                abort();
        p = out + sprintf(out, "Bearer ");
        p += b64url(data, hl, p);
        *p++ = '.';
        p += b64url(nul ? nul + 1 : data, pl, p);
        if (!HMAC(EVP_sha256(), SECRET, sizeof(SECRET) - 1, (const unsigned char *)out + 7,
                  (size_t)(p - out - 7), mac, &maclen))
                abort();
        *p++ = '.';
        b64url(mac, maclen, p);
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *hdr = size && data[0] == 'H' ? fuzz_str(data + 1, size - 1) : signed_header(data, size);
        sf_auth_claims_t c;
        const char *msg = NULL;
        int r;

        memset(&c, 0xa5, sizeof(c));
        r = sf_auth_token_verify(SECRET, hdr, &c, &msg);
        if (r == 0) {
                /* Accepted: every claim is a bounded, non-empty C string and not expired. */
                FUZZ_CHECK(memchr(c.ns, 0, sizeof(c.ns)) && c.ns[0]);
                FUZZ_CHECK(memchr(c.keyname, 0, sizeof(c.keyname)) && c.keyname[0]);
                FUZZ_CHECK(memchr(c.nonce, 0, sizeof(c.nonce)));
                FUZZ_CHECK(c.exp > (long)time(NULL) - 5);
        } else {
                FUZZ_CHECK(r == -EACCES && msg && (msg[0] == 0 || strlen(msg) < 200));
        }
        free(hdr);
        return 0;
}
