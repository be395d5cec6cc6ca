#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "util.h"

#define MSG_MISSING_HEADER "Missing Authorization Header"
#define MSG_MISSING_BEARER \
        "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"
#define MSG_BAD_HEADER "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"
#define MSG_INVALID "invalid JWT in Authorization header"
#define MSG_EXPIRED "Signature has expired"
#define MSG_NBF "The token is not yet valid (nbf)"
#define MSG_IAT "The token is not yet valid (iat)"
#define MSG_TYPE "Only non-refresh tokens are allowed"

static int bcrypt_cost = 12;

void sf_auth_set_bcrypt_cost(int cost) {
        if (cost >= 4 && cost <= 31)
                bcrypt_cost = cost;
}

static void jwt_freep(jwt_t **j) { jwt_free(*j); }
static void json_putp(json_object **o) { if (*o) json_object_put(*o); }
#define _cleanup_jwt_ __attribute__((cleanup(jwt_freep)))
#define _cleanup_jsonc_ __attribute__((cleanup(json_putp)))

int sf_auth_hash_key(const char *secret, char **ret_hash) {
        /* struct crypt_data is ~32 KiB: heap, not the (possibly small) handler thread stack. */
        _cleanup_free_ struct crypt_data *cd = NULL;
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *h;
        char *out;

        if (!secret || !ret_hash)
                return -EINVAL;
        cd = calloc(1, sizeof(*cd));
        if (!cd)
                return -ENOMEM;
        /* NULL random bytes: libxcrypt draws the salt from the OS CSPRNG. */
        if (!crypt_gensalt_rn("$2b$", (unsigned long)bcrypt_cost, NULL, 0, salt, sizeof(salt)))
                return -EIO;
        h = crypt_rn(secret, salt, cd, sizeof(*cd));
        if (!h || h[0] == '*')
                return -EIO;
        out = strdup(h);
        if (!out)
                return -ENOMEM;
        *ret_hash = out;
        return 0;
}

int sf_auth_verify_key(const char *secret, const char *hash) {
        _cleanup_free_ struct crypt_data *cd = NULL;
        const char *h;
        size_t hl, ol;
        unsigned char diff = 0;

        if (!secret || !hash || strncmp(hash, "$2", 2) != 0)
                return -EINVAL;
        cd = calloc(1, sizeof(*cd));
        if (!cd)
                return -ENOMEM;
        h = crypt_rn(secret, hash, cd, sizeof(*cd));
        if (!h || h[0] == '*')
                return -EINVAL;
        hl = strlen(hash);
        ol = strlen(h);
        /* Lengths are public (same setting => same length); the bytes are compared
         * without an early exit. */
        if (hl != ol)
                return -EACCES;
        for (size_t i = 0; i < hl; i++)
                diff |= (unsigned char)(h[i] ^ hash[i]);
        return diff ? -EACCES : 0;
}

int sf_auth_nonce(char out[SF_AUTH_NONCE_LEN + 1]) {
        if (!out)
                return -EINVAL;
        sf_random_alnum(out, SF_AUTH_NONCE_LEN);
        return 0;
}

int sf_auth_token_issue(const char *secret_seed, const char *zone, const char *ns,
                        const char *keyname, const char *nonce, int duration_s, char **ret_jwt) {
        _cleanup_jwt_ jwt_t *jwt = NULL;
        _cleanup_jsonc_ json_object *sub = NULL;
        char jti[SF_UUID_LEN];
        long now = (long)time(NULL);
        char *tok;
        int r;

        if (!secret_seed || !*secret_seed || !zone || !ns || !keyname || !nonce || !ret_jwt ||
            duration_s <= 0)
                return -EINVAL;
        r = jwt_new(&jwt);
        if (r)
                return -r;
        /* sub is a JSON array, which only the grants_json entry point can express. */
        sub = json_object_new_object();
        if (!sub)
                return -ENOMEM;
        {
                json_object *arr = json_object_new_array();

                if (!arr)
                        return -ENOMEM;
                json_object_object_add(sub, "sub", arr);
                json_object_array_add(arr, json_object_new_string(ns));
                json_object_array_add(arr, json_object_new_string(keyname));
        }
        sf_uuid_new(jti);
        r = jwt_add_grants_json(jwt, json_object_to_json_string_ext(sub, JSON_C_TO_STRING_PLAIN));
        if (!r) r = jwt_add_grant(jwt, "iss", zone);
        if (!r) r = jwt_add_grant(jwt, "nonce", nonce);
        if (!r) r = jwt_add_grant(jwt, "type", "access");
        if (!r) r = jwt_add_grant_bool(jwt, "fresh", 0);
        if (!r) r = jwt_add_grant(jwt, "jti", jti);
        if (!r) r = jwt_add_grant_int(jwt, "iat", now);
        if (!r) r = jwt_add_grant_int(jwt, "nbf", now);
        if (!r) r = jwt_add_grant_int(jwt, "exp", now + duration_s);
        if (!r) r = jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret_seed,
                                (int)strlen(secret_seed));
        if (r)
                return -r;
        tok = jwt_encode_str(jwt);
        if (!tok)
                return errno ? -errno : -ENOMEM;
        *ret_jwt = tok;
        return 0;
}

/* flask-jwt-extended's header parsing: comma separated fields, exactly one starting with
 * "Bearer", which must be "Bearer <token>". Returns a pointer into a copy in buf. */
static const char *parse_bearer(const char *header, char *buf, size_t buflen, const char **msg) {
        char *s, *end, *field, *save = NULL, *found = NULL;
        int nfound = 0;

        if (!header) {
                *msg = MSG_MISSING_HEADER;
                return NULL;
        }
        if (strlen(header) >= buflen) {
                *msg = MSG_INVALID;
                return NULL;
        }
        strcpy(buf, header);
        /* .strip().strip(",") */
        s = buf;
        while (*s == ' ' || *s == '\t' || *s == ',')
                s++;
        end = s + strlen(s);
        while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == ','))
                *--end = 0;
        if (!*s) {
                *msg = MSG_MISSING_HEADER;
                return NULL;
        }
        for (field = strtok_r(s, ",", &save); field; field = strtok_r(NULL, ",", &save)) {
                while (*field == ' ' || *field == '\t')
                        field++;
                if (strncmp(field, "Bearer", 6) == 0 &&
                    (field[6] == 0 || field[6] == ' ' || field[6] == '\t')) {
                        found = field;
                        nfound++;
                }
        }
        if (nfound != 1) {
                *msg = MSG_MISSING_BEARER;
                return NULL;
        }
        /* Exactly two whitespace separated parts: "Bearer" and the token. */
        {
                char *tok = found + 6, *te, *rest;

                while (*tok == ' ' || *tok == '\t')
                        tok++;
                for (te = tok; *te && *te != ' ' && *te != '\t'; te++)
                        ;
                for (rest = te; *rest == ' ' || *rest == '\t'; rest++)
                        ;
                if (!*tok || *rest) {
                        *msg = MSG_BAD_HEADER;
                        return NULL;
                }
                *te = 0;
                return tok;
        }
}

static int copy_str(char *dst, size_t dstlen, json_object *o) {
        const char *s;

        if (!json_object_is_type(o, json_type_string))
                return -EINVAL;
        s = json_object_get_string(o);
        if (!*s || strlen(s) >= dstlen)
                return -EINVAL;
        memcpy(dst, s, strlen(s) + 1);
        return 0;
}

int sf_auth_token_verify(const char *secret_seed, const char *authorization_header,
                         sf_auth_claims_t *ret, const char **ret_error_message) {
        _cleanup_jwt_ jwt_t *jwt = NULL;
        _cleanup_free_ char *hdrbuf = NULL;
        _cleanup_free_ char *subjs = NULL;
        _cleanup_jsonc_ json_object *sub = NULL;
        const char *msg = MSG_INVALID, *token, *type, *nonce;
        sf_auth_claims_t c = {0};
        long now = (long)time(NULL), exp, nbf, iat;
        size_t buflen;
        int r = -EACCES;

        if (!secret_seed || !*secret_seed || !ret)
                return -EINVAL;
        buflen = authorization_header ? strlen(authorization_header) + 1 : 1;
        if (buflen > 16384) {
                goto cleanup;
        }
        hdrbuf = malloc(buflen);
        if (!hdrbuf) {
                r = -ENOMEM;
                goto cleanup;
        }
        token = parse_bearer(authorization_header, hdrbuf, buflen, &msg);
        if (!token)
                goto cleanup;
        msg = MSG_INVALID;
        /* libjwt verifies the signature for whatever alg the header names; pin HS256
         * afterwards so "none" or a different HMAC size never passes. */
        if (jwt_decode(&jwt, token, (const unsigned char *)secret_seed, (int)strlen(secret_seed)) != 0 ||
            !jwt || jwt_get_alg(jwt) != JWT_ALG_HS256)
                goto cleanup;
        errno = 0;
        exp = jwt_get_grant_int(jwt, "exp");
        if (errno)
                goto cleanup;
        /* PyJWT order: exp, then iat, then nbf; no leeway. */
        if (exp <= now) {
                msg = MSG_EXPIRED;
                goto cleanup;
        }
        errno = 0;
        iat = jwt_get_grant_int(jwt, "iat");
        if (errno == EINVAL)
                goto cleanup;
        if (!errno && iat > now) {
                msg = MSG_IAT;
                goto cleanup;
        }
        errno = 0;
        nbf = jwt_get_grant_int(jwt, "nbf");
        if (errno == EINVAL)
                goto cleanup;
        if (!errno && nbf > now) {
                msg = MSG_NBF;
                goto cleanup;
        }
        type = jwt_get_grant(jwt, "type");
        if (!type || strcmp(type, "access") != 0) {
                msg = MSG_TYPE;
                goto cleanup;
        }
        subjs = jwt_get_grants_json(jwt, "sub");
        if (!subjs)
                goto cleanup;
        sub = json_tokener_parse(subjs);
        if (!json_object_is_type(sub, json_type_array) || json_object_array_length(sub) != 2 ||
            copy_str(c.ns, sizeof(c.ns), json_object_array_get_idx(sub, 0)) < 0 ||
            copy_str(c.keyname, sizeof(c.keyname), json_object_array_get_idx(sub, 1)) < 0)
                goto cleanup;
        nonce = jwt_get_grant(jwt, "nonce");
        if (nonce) {
                if (strlen(nonce) >= sizeof(c.nonce))
                        goto cleanup;
                strcpy(c.nonce, nonce);
        }
        c.exp = exp;
        *ret = c;
        msg = NULL;
        r = 0;
cleanup:
        if (r == -EACCES && ret_error_message)
                *ret_error_message = msg;
        return r;
}
