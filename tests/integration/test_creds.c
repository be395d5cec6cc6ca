/* Integration: Redis and NATS answer only with the node's credentials, and sf's own
 * connections carry them on every (re)connect.  Needs redis-server (requirepass) and
 * nats-server (authorization) as tests/run.sh starts them from tools/sf-creds, with
 * SF_REDIS_PASSWORD_FILE, SF_NATS_USER and SF_NATS_PASSWORD_FILE set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;

static int setup(void **state) {
        (void)state;
        return sf_ctx_open(&ctx, true, 5);
}

static int teardown(void **state) {
        (void)state;
        sf_ctx_close(&ctx);
        return 0;
}

static redisContext *raw_connect(void) {
        struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
        redisContext *c = redisConnectWithTimeout(ctx.cfg.redis_host, ctx.cfg.redis_port, tv);

        assert_non_null(c);
        assert_int_equal(c->err, 0);
        return c;
}

/* The harness really set credentials: otherwise every test below proves nothing. */
static void test_credentials_configured(void **state) {
        (void)state;
        assert_true(strlen(ctx.cfg.redis_password) >= 16);
        assert_string_equal(ctx.cfg.nats_user, "sf");
        assert_true(strlen(ctx.cfg.nats_password) >= 16);
}

static void test_redis_refuses_without_password(void **state) {
        redisContext *c = raw_connect();
        redisReply *r;

        (void)state;
        r = redisCommand(c, "PING");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_true(strncmp(r->str, "NOAUTH", 6) == 0);
        freeReplyObject(r);
        r = redisCommand(c, "KEYS *");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        /* A wrong password is refused too. */
        r = redisCommand(c, "AUTH %s", "not-the-password");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        redisFree(c);
}

static void test_store_reauths_after_reconnect(void **state) {
        sf_store_t *victim = NULL;
        redisReply *r;
        long long id;

        (void)state;
        assert_int_equal(sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &victim), 0);
        r = sf_store_cmd(victim, "CLIENT ID");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        id = r->integer;
        freeReplyObject(r);
        /* Drop its connection from another one: the next command reconnects, and the new
         * connection must AUTH again to be served. */
        r = sf_store_cmd(ctx.store, "CLIENT KILL ID %lld", id);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        r = sf_store_cmd(victim, "PING");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        assert_string_equal(r->str, "PONG");
        freeReplyObject(r);
        r = sf_store_cmd(victim, "CLIENT ID");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_true(r->integer != id);
        freeReplyObject(r);
        sf_store_free(victim);
}

static void test_store_wrong_password_refused(void **state) {
        sf_store_t *s = NULL;

        (void)state;
        sf_store_set_password("not-the-password");
        assert_int_equal(sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &s), -EACCES);
        assert_null(s);
        sf_store_set_password(ctx.cfg.redis_password);
        assert_int_equal(sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &s), 0);
        sf_store_free(s);
}

static void test_nats_refuses_without_credentials(void **state) {
        natsConnection *nc = NULL;
        natsOptions *opts = NULL;
        natsStatus s;

        (void)state;
        assert_int_equal(natsOptions_Create(&opts), NATS_OK);
        assert_int_equal(natsOptions_SetURL(opts, ctx.cfg.nats_url), NATS_OK);
        assert_int_equal(natsOptions_SetTimeout(opts, 2000), NATS_OK);
        s = natsConnection_Connect(&nc, opts);
        assert_int_not_equal(s, NATS_OK);
        assert_null(nc);
        /* Nor with the right user and a wrong password. */
        assert_int_equal(natsOptions_SetUserInfo(opts, ctx.cfg.nats_user, "not-the-password"),
                         NATS_OK);
        s = natsConnection_Connect(&nc, opts);
        assert_int_not_equal(s, NATS_OK);
        assert_null(nc);
        natsOptions_Destroy(opts);
}

static void test_bus_with_credentials(void **state) {
        sf_bus_t *b = NULL;

        (void)state;
        assert_int_equal(sf_bus_connect(ctx.cfg.nats_url, NULL, NULL, &b), -EACCES);
        assert_int_equal(sf_bus_connect(ctx.cfg.nats_url, ctx.cfg.nats_user, "not-the-password",
                                        &b), -EACCES);
        assert_int_equal(sf_bus_connect(ctx.cfg.nats_url, ctx.cfg.nats_user,
                                        ctx.cfg.nats_password, &b), 0);
        assert_int_equal(sf_bus_ensure_streams(b), 0);
        sf_bus_free(b);
}

/* A *_FILE that cannot be read is a configuration error, not "no password". */
static void test_config_password_file_missing(void **state) {
        sf_config_t cfg;
        char *saved = strdup(getenv("SF_REDIS_PASSWORD_FILE") ? getenv("SF_REDIS_PASSWORD_FILE") : "");

        (void)state;
        assert_non_null(saved);
        setenv("SF_REDIS_PASSWORD_FILE", "/nonexistent/sf-redis-password", 1);
        assert_int_equal(sf_config_load(&cfg), -ENOENT);
        setenv("SF_REDIS_PASSWORD_FILE", saved, 1);
        assert_int_equal(sf_config_load(&cfg), 0);
        assert_string_equal(cfg.redis_password, ctx.cfg.redis_password);
        free(saved);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_credentials_configured),
                cmocka_unit_test(test_redis_refuses_without_password),
                cmocka_unit_test(test_store_reauths_after_reconnect),
                cmocka_unit_test(test_store_wrong_password_refused),
                cmocka_unit_test(test_nats_refuses_without_credentials),
                cmocka_unit_test(test_bus_with_credentials),
                cmocka_unit_test(test_config_password_file_missing),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
