/* Pure authentication primitives (no storage): bcrypt key hashes, nonces, and the
 * flask-jwt-extended compatible access tokens of upstream Shaken Fist (api.md §3). */
#pragma once
#include <stdbool.h>

#define SF_AUTH_NONCE_LEN 16

typedef struct sf_auth_claims {
        char ns[64];      /* sub[0] */
        char keyname[64]; /* sub[1] */
        char nonce[32];   /* "" if the token carries none */
        long exp;         /* epoch seconds */
} sf_auth_claims_t;

/* Tests only: bcrypt cost for new hashes (default 12, valid 4..31). Not thread-safe. */
void sf_auth_set_bcrypt_cost(int cost);

/* bcrypt ($2b$) hash of secret with a fresh salt, e.g. "$2b$12$...". The caller decides how
 * to store it (upstream stores base64 of this string). -ENOMEM, -EIO on libcrypt failure. */
int sf_auth_hash_key(const char *secret, char **ret_hash);

/* 0 if secret matches hash, -EACCES if not, -EINVAL if hash is not a usable crypt hash.
 * The comparison of the crypt output is constant-time. */
int sf_auth_verify_key(const char *secret, const char *hash);

/* SF_AUTH_NONCE_LEN random [A-Za-z0-9] characters plus NUL. */
int sf_auth_nonce(char out[SF_AUTH_NONCE_LEN + 1]);

/* HS256 JWT signed with secret_seed: sub=[ns, keyname], iss=zone, nonce, type="access",
 * fresh=false, jti=uuid4, iat=nbf=now, exp=now+duration_s. -EINVAL on empty secret or args. */
int sf_auth_token_issue(const char *secret_seed, const char *zone, const char *ns,
                        const char *keyname, const char *nonce, int duration_s, char **ret_jwt);

/* Check an Authorization header value ("Bearer <jwt>"): HS256 only, signature, exp/nbf/iat,
 * type "access", sub a 2-string array. On -EACCES *ret_error_message (if non-NULL) gets the
 * upstream message to send with 401 (static string), e.g. "Signature has expired".
 * Other negative errnos (-ENOMEM) are server errors. Namespace/key/nonce checks against
 * storage are the caller's job. */
int sf_auth_token_verify(const char *secret_seed, const char *authorization_header,
                         sf_auth_claims_t *ret, const char **ret_error_message);
