/* Unit tests for api/auth.c: bcrypt keys, nonces, JWT issue/verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "../../api/auth.h"

#define SEED "test-secret-seed"

static int setup(void **state) {
        (void)state;
        sf_auth_set_bcrypt_cost(4);
        return 0;
}

static void test_bcrypt(void **state) {
        char *h1 = NULL, *h2 = NULL;

        (void)state;
        assert_int_equal(sf_auth_hash_key("s3cret", &h1), 0);
        assert_int_equal(sf_auth_hash_key("s3cret", &h2), 0);
        assert_memory_equal(h1, "$2b$04$", 7);
        assert_int_equal(strlen(h1), 60);
        assert_string_not_equal(h1, h2); /* fresh salt each time */
        assert_int_equal(sf_auth_verify_key("s3cret", h1), 0);
        assert_int_equal(sf_auth_verify_key("s3cret", h2), 0);
        assert_int_equal(sf_auth_verify_key("s3cres", h1), -EACCES);
        assert_int_equal(sf_auth_verify_key("", h1), -EACCES);
        assert_int_equal(sf_auth_verify_key("s3cret", "garbage"), -EINVAL);
        assert_int_equal(sf_auth_verify_key("s3cret", ""), -EINVAL);
        /* The classic OpenBSD bcrypt test vector, as $2a$ and $2b$ (what Python's bcrypt writes). */
        assert_int_equal(sf_auth_verify_key("U*U",
                "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"), 0);
        assert_int_equal(sf_auth_verify_key("U*U",
                "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"), 0);
        assert_int_equal(sf_auth_verify_key("U*V",
                "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"), -EACCES);
        free(h1);
        free(h2);
}

static void test_nonce(void **state) {
        char a[SF_AUTH_NONCE_LEN + 1], b[SF_AUTH_NONCE_LEN + 1];

        (void)state;
        assert_int_equal(sf_auth_nonce(a), 0);
        assert_int_equal(sf_auth_nonce(b), 0);
        assert_int_equal(strlen(a), 16);
        assert_string_not_equal(a, b);
        for (int i = 0; i < 16; i++)
                assert_true((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') ||
                            (a[i] >= '0' && a[i] <= '9'));
}

static char *bearer(const char *tok) {
        char *h = NULL;

        assert_true(asprintf(&h, "Bearer %s", tok) > 0);
        return h;
}

static void test_token_roundtrip(void **state) {
        sf_auth_claims_t c;
        const char *msg = NULL;
        char *tok = NULL, *hdr, *subjs;
        jwt_t *jwt = NULL;
        long now = (long)time(NULL);

        (void)state;
        assert_int_equal(sf_auth_token_issue(SEED, "shakenfist", "ns1", "deploy", "abcdEFGH12345678", 900, &tok), 0);
        hdr = bearer(tok);
        assert_int_equal(sf_auth_token_verify(SEED, hdr, &c, &msg), 0);
        assert_string_equal(c.ns, "ns1");
        assert_string_equal(c.keyname, "deploy");
        assert_string_equal(c.nonce, "abcdEFGH12345678");
        assert_true(c.exp >= now + 899 && c.exp <= now + 901);

        /* Claims as flask-jwt-extended writes them. */
        assert_int_equal(jwt_decode(&jwt, tok, (const unsigned char *)SEED, strlen(SEED)), 0);
        assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
        assert_string_equal(jwt_get_grant(jwt, "iss"), "shakenfist");
        assert_string_equal(jwt_get_grant(jwt, "type"), "access");
        assert_int_equal(jwt_get_grant_bool(jwt, "fresh"), 0);
        assert_int_equal(strlen(jwt_get_grant(jwt, "jti")), 36);
        assert_int_equal(jwt_get_grant_int(jwt, "exp") - jwt_get_grant_int(jwt, "iat"), 900);
        assert_int_equal(jwt_get_grant_int(jwt, "nbf"), jwt_get_grant_int(jwt, "iat"));
        subjs = jwt_get_grants_json(jwt, "sub");
        assert_string_equal(subjs, "[\"ns1\",\"deploy\"]");
        free(subjs);
        jwt_free(jwt);

        /* Wrong seed => invalid. */
        assert_int_equal(sf_auth_token_verify("other-seed", hdr, &c, &msg), -EACCES);
        assert_string_equal(msg, "invalid JWT in Authorization header");
        free(hdr);

        /* Tampered signature: flip the last character. */
        tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
        hdr = bearer(tok);
        assert_int_equal(sf_auth_token_verify(SEED, hdr, &c, &msg), -EACCES);
        assert_string_equal(msg, "invalid JWT in Authorization header");
        free(hdr);
        free(tok);
}

/* Sign an arbitrary claim set with the test seed. */
static char *make_token(jwt_alg_t alg, const char *claims_json) {
        jwt_t *jwt = NULL;
        char *tok;

        assert_int_equal(jwt_new(&jwt), 0);
        assert_int_equal(jwt_add_grants_json(jwt, claims_json), 0);
        if (alg == JWT_ALG_NONE)
                assert_int_equal(jwt_set_alg(jwt, alg, NULL, 0), 0);
        else
                assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)SEED, strlen(SEED)), 0);
        tok = jwt_encode_str(jwt);
        assert_non_null(tok);
        jwt_free(jwt);
        return tok;
}

static int verify_claims(jwt_alg_t alg, const char *claims_json, const char **msg) {
        sf_auth_claims_t c;
        char *tok = make_token(alg, claims_json), *hdr = bearer(tok);
        int r = sf_auth_token_verify(SEED, hdr, &c, msg);

        free(hdr);
        free(tok);
        return r;
}

static void test_token_rejects(void **state) {
        const char *msg = NULL;
        char claims[512];
        long now = (long)time(NULL);

        (void)state;
        snprintf(claims, sizeof(claims),
                 "{\"sub\":[\"a\",\"b\"],\"type\":\"access\",\"iat\":%ld,\"nbf\":%ld,\"exp\":%ld}",
                 now - 1000, now - 1000, now - 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), -EACCES);
        assert_string_equal(msg, "Signature has expired");

        snprintf(claims, sizeof(claims),
                 "{\"sub\":[\"a\",\"b\"],\"type\":\"access\",\"iat\":%ld,\"exp\":%ld}", now, now + 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), 0);
        assert_int_equal(verify_claims(JWT_ALG_NONE, claims, &msg), -EACCES);
        assert_string_equal(msg, "invalid JWT in Authorization header");
        assert_int_equal(verify_claims(JWT_ALG_HS384, claims, &msg), -EACCES);
        assert_string_equal(msg, "invalid JWT in Authorization header");

        snprintf(claims, sizeof(claims),
                 "{\"sub\":[\"a\",\"b\"],\"type\":\"access\",\"nbf\":%ld,\"exp\":%ld}", now + 50, now + 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), -EACCES);
        assert_string_equal(msg, "The token is not yet valid (nbf)");

        snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"type\":\"access\",\"exp\":%ld}", now + 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), -EACCES);
        assert_string_equal(msg, "invalid JWT in Authorization header");
        snprintf(claims, sizeof(claims), "{\"sub\":[\"a\",1],\"type\":\"access\",\"exp\":%ld}", now + 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), -EACCES);
        snprintf(claims, sizeof(claims), "{\"sub\":[\"a\",\"b\",\"c\"],\"type\":\"access\",\"exp\":%ld}", now + 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), -EACCES);
        snprintf(claims, sizeof(claims), "{\"sub\":[\"a\",\"b\"],\"type\":\"refresh\",\"exp\":%ld}", now + 100);
        assert_int_equal(verify_claims(JWT_ALG_HS256, claims, &msg), -EACCES);
        assert_string_equal(msg, "Only non-refresh tokens are allowed");
        /* No exp at all: refused (every token we issue has one). */
        assert_int_equal(verify_claims(JWT_ALG_HS256, "{\"sub\":[\"a\",\"b\"],\"type\":\"access\"}", &msg), -EACCES);
}

static void test_header_forms(void **state) {
        sf_auth_claims_t c;
        const char *msg = NULL;
        char *tok = NULL, hdr[1024];

        (void)state;
        assert_int_equal(sf_auth_token_verify(SEED, NULL, &c, &msg), -EACCES);
        assert_string_equal(msg, "Missing Authorization Header");
        assert_int_equal(sf_auth_token_verify(SEED, "  ", &c, &msg), -EACCES);
        assert_string_equal(msg, "Missing Authorization Header");
        assert_int_equal(sf_auth_token_verify(SEED, "Basic Zm9vOmJhcg==", &c, &msg), -EACCES);
        assert_string_equal(msg, "Missing 'Bearer' type in 'Authorization' header. "
                                 "Expected 'Authorization: Bearer <JWT>'");
        assert_int_equal(sf_auth_token_verify(SEED, "Bearer", &c, &msg), -EACCES);
        assert_string_equal(msg, "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'");
        assert_int_equal(sf_auth_token_verify(SEED, "Bearer not.a.jwt", &c, &msg), -EACCES);
        assert_string_equal(msg, "invalid JWT in Authorization header");

        assert_int_equal(sf_auth_token_issue(SEED, "z", "system", "deploy", "n", 60, &tok), 0);
        /* Comma separated fields with one Bearer field are accepted, like flask-jwt-extended. */
        snprintf(hdr, sizeof(hdr), "Basic xyz, Bearer %s ", tok);
        assert_int_equal(sf_auth_token_verify(SEED, hdr, &c, &msg), 0);
        assert_string_equal(c.ns, "system");
        snprintf(hdr, sizeof(hdr), "Bearer %s extra", tok);
        assert_int_equal(sf_auth_token_verify(SEED, hdr, &c, &msg), -EACCES);
        free(tok);

        assert_int_equal(sf_auth_token_issue("", "z", "a", "b", "n", 60, &tok), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bcrypt),
                cmocka_unit_test(test_nonce),
                cmocka_unit_test(test_token_roundtrip),
                cmocka_unit_test(test_token_rejects),
                cmocka_unit_test(test_header_forms),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
