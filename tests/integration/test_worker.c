/* Integration: a worker killed (-9) mid-handler; the intent is redelivered and has
 * exactly one effect.  The test re-executes itself as the worker process
 * (`test_worker --worker`) so that the kill is a real process death. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "ctx.h"
#include "exec.h"
#include "intent.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "worker.h"

static sf_ctx_t ctx;
static char node[40];

static void msleep(int ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* ---- the worker side ---- */

static volatile sig_atomic_t stop_flag;
static void on_term(int sig) { (void)sig; stop_flag = 1; }

static int apply_once(json_object *doc, void *ud) {
        const char *id = ud;
        json_object *applied;

        if (!json_object_object_get_ex(doc, "applied", &applied)) {
                applied = json_object_new_array();
                json_object_object_add(doc, "applied", applied);
        }
        for (size_t i = 0; i < json_object_array_length(applied); i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(applied, i)), id) == 0)
                        return 1; /* this intent's effect is already committed */
        json_object_array_add(applied, json_object_new_string(id));
        json_object_object_add(doc, "effects",
                               json_object_new_int64(sf_json_int(doc, "effects", 0) + 1));
        return 0;
}

static int handle_bump(sf_work_t *w) {
        const char *crash = getenv("SF_TEST_CRASH");
        int attempts = 0;

        sf_intent_load(w->ctx->store, w->intent->id, NULL, NULL, &attempts);
        if (crash && strcmp(crash, "before-commit") == 0 && attempts == 1)
                raise(SIGKILL);
        if (sf_store_update(w->ctx->store, "counter", w->intent->object_uuid, NULL, apply_once,
                            (void *)w->intent->id, NULL) < 0) {
                sf_work_error(w, "store update failed");
                return SF_WORK_RETRY;
        }
        if (crash && strcmp(crash, "after-commit") == 0 && attempts == 1)
                raise(SIGKILL); /* committed, not yet marked done nor acked */
        return SF_WORK_DONE;
}

/* Always a transient failure: after SF_MAX_ATTEMPTS the object gets its error. */
static int handle_flaky(sf_work_t *w) {
        sf_work_error(w, "backend unavailable");
        return SF_WORK_RETRY;
}

/* Kills its worker on every attempt: a poison message. */
static int handle_poison(sf_work_t *w) {
        (void)w;
        raise(SIGKILL);
        return SF_WORK_DONE;
}

static int count_run(json_object *doc, void *ud) {
        (void)ud;
        json_object_object_add(doc, "runs", json_object_new_int64(sf_json_int(doc, "runs", 0) + 1));
        return 0;
}

/* Never ready: every delivery of every copy counts one run, then waits 300 ms. */
static int handle_wait(sf_work_t *w) {
        sf_store_update(w->ctx->store, "counter", w->intent->object_uuid, NULL, count_run, NULL, NULL);
        w->wait_ms = 300;
        sf_work_error(w, "not yet");
        return SF_WORK_WAIT;
}

/* Slow: reads, takes its time, then commits one more effect per run. */
static int handle_slow_rerun(sf_work_t *w) {
        msleep(1500);
        sf_store_update(w->ctx->store, "counter", w->intent->object_uuid, NULL, count_run, NULL, NULL);
        return SF_WORK_DONE;
}

/* Busy (reporting progress) until the test sets "release" on its counter, then bumps. */
static int handle_slow(sf_work_t *w) {
        for (int i = 0; i < 300 && !*w->stop; i++) {
                _cleanup_json_ json_object *doc = NULL;
                if (sf_store_get(w->ctx->store, "counter", w->intent->object_uuid, &doc, NULL) == 0 &&
                    sf_json_int(doc, "release", 0))
                        return handle_bump(w);
                sf_work_progress(w);
                msleep(100);
        }
        sf_work_error(w, "never released");
        return SF_WORK_RETRY;
}

/* Counts ticks in Redis, so the test sees whether the tick runs while a handler is busy. */
static void count_tick(sf_ctx_t *c, void *user) {
        (void)user;
        freeReplyObject(sf_store_cmd(c->store, "INCR sf:test:%s:ticks", c->cfg.node));
}

static int set_error(json_object *doc, void *ud) {
        json_object_object_add(doc, "error_message", json_object_new_string(ud));
        return 0;
}

static void fail_counter(sf_work_t *w, const char *message) {
        sf_store_update(w->ctx->store, "counter", w->intent->object_uuid, NULL, set_error, (void *)message,
                        NULL);
}

static int worker_main(void) {
        static const sf_handler_t handlers[] = {
                {.kind = "counter.bump", .fn = handle_bump},
                {.kind = "counter.flaky", .fn = handle_flaky, .on_fail = fail_counter},
                {.kind = "counter.poison", .fn = handle_poison, .on_fail = fail_counter},
                {.kind = "counter.wait", .fn = handle_wait},
                {.kind = "counter.slowrun", .fn = handle_slow_rerun},
                {.kind = "counter.slow", .fn = handle_slow},
        };
        const char *conc = getenv("SF_TEST_CONCURRENCY");
        sf_worker_t w = {.name = "testw", .handlers = handlers, .nhandlers = SF_ARRAY_SIZE(handlers),
                         .concurrency = conc ? atoi(conc) : 0, .tick = count_tick, .tick_ms = 200};
        sf_ctx_t wctx;

        sf_log_init("testworker");
        signal(SIGTERM, on_term);
        if (sf_ctx_open(&wctx, true, 5) < 0)
                return 1;
        sf_worker_run(&wctx, &w, &stop_flag);
        sf_ctx_close(&wctx);
        return 0;
}

/* ---- the test side ---- */

static pid_t spawn_worker(const char *crash) {
        char *argv[] = {(char *)"/proc/self/exe", (char *)"--worker", NULL};
        pid_t pid = 0;

        if (crash)
                setenv("SF_TEST_CRASH", crash, 1);
        else
                unsetenv("SF_TEST_CRASH");
        assert_int_equal(sf_exec_spawn(argv, "/dev/stderr", &pid), 0);
        return pid;
}

static void run_case(const char *crash) {
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN], st[16] = "";
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        int status = 0;
        pid_t pid;

        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "counter", uuid, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.bump", "counter", uuid, "system",
                                          NULL, id), 0);
        pid = spawn_worker(crash);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* Not done: the message was never acked. */
        assert_int_equal(sf_intent_load(ctx.store, id, NULL, st, NULL), 0);
        assert_string_equal(st, "pending");

        pid = spawn_worker(NULL);
        for (int i = 0; i < 150; i++) {
                sf_intent_load(ctx.store, id, NULL, st, NULL);
                if (strcmp(st, "pending") != 0)
                        break;
                msleep(100);
        }
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_string_equal(st, "done");
        assert_int_equal(sf_store_get(ctx.store, "counter", uuid, &got, NULL), 0);
        assert_int_equal(sf_json_int(got, "effects", 0), 1);
}

static void test_kill_after_commit(void **state) {
        (void)state;
        run_case("after-commit");
}

static void test_kill_before_commit(void **state) {
        (void)state;
        run_case("before-commit");
}

static void test_duplicate_publish_one_effect(void **state) {
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN], st[16] = "";
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        int n = 0, status;
        pid_t pid;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "counter", uuid, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.bump", "counter", uuid, "system",
                                          NULL, id), 0);
        msleep(1100);
        /* The reconciler re-publishes (outside the dedupe window it would be a second
         * message); either way the effect happens once. */
        assert_int_equal(sf_intent_redrive(&ctx, node, NULL, 1, &n), 0);
        assert_true(n >= 1);
        pid = spawn_worker(NULL);
        for (int i = 0; i < 100; i++) {
                sf_intent_load(ctx.store, id, NULL, st, NULL);
                if (strcmp(st, "done") == 0)
                        break;
                msleep(100);
        }
        msleep(500);
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_string_equal(st, "done");
        assert_int_equal(sf_store_get(ctx.store, "counter", uuid, &got, NULL), 0);
        assert_int_equal(sf_json_int(got, "effects", 0), 1);
}

/* Wait for the intent to leave "pending"; returns its final state. */
static void wait_intent(const char *id, char st[16], int tries) {
        for (int i = 0; i < tries; i++) {
                sf_intent_load(ctx.store, id, NULL, st, NULL);
                if (strcmp(st, "pending") != 0)
                        return;
                msleep(100);
        }
}

static void test_retries_exhausted_error(void **state) {
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN], st[16] = "";
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        int status, attempts = 0;
        pid_t pid;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "counter", uuid, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.flaky", "counter", uuid, "system",
                                          NULL, id), 0);
        setenv("SF_MAX_ATTEMPTS", "2", 1);
        pid = spawn_worker(NULL);
        unsetenv("SF_MAX_ATTEMPTS");
        wait_intent(id, st, 150);
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_string_equal(st, "failed");
        assert_int_equal(sf_intent_load(ctx.store, id, NULL, NULL, &attempts), 0);
        assert_int_equal(attempts, 2);
        assert_int_equal(sf_store_get(ctx.store, "counter", uuid, &got, NULL), 0);
        assert_string_equal(sf_json_str(got, "error_message"), "backend unavailable");
}

static void test_poison_message_terminated(void **state) {
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN], st[16] = "";
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        int status;
        pid_t pid;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "counter", uuid, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.poison", "counter", uuid, "system",
                                          NULL, id), 0);
        setenv("SF_MAX_ATTEMPTS", "2", 1);
        /* Two workers die on it; the third sees the attempts used up and gives up. */
        for (int i = 0; i < 2; i++) {
                pid = spawn_worker(NULL);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        }
        pid = spawn_worker(NULL);
        unsetenv("SF_MAX_ATTEMPTS");
        wait_intent(id, st, 150);
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_string_equal(st, "failed");
        assert_int_equal(sf_store_get(ctx.store, "counter", uuid, &got, NULL), 0);
        assert_string_equal(sf_json_str(got, "error_message"), "gave up after 2 attempts");
}

/* Re-drives and restarts publish copies of a waiting intent; only the newest copy is
 * live, the others are dropped on delivery instead of each cycling through the handler. */
static void test_superseded_copies_dropped(void **state) {
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN];
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        int status, n = 0;
        int64_t runs;
        pid_t pid;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "counter", uuid, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.wait", "counter", uuid, "system",
                                          NULL, id), 0);
        for (int i = 0; i < 5; i++) {
                assert_int_equal(sf_intent_recover(&ctx, node, "testw", &n), 0);
                assert_int_equal(n, 1);
                assert_int_equal(sf_intent_redrive(&ctx, node, "testw", 0, &n), 0);
                assert_int_equal(n, 1);
        }
        pid = spawn_worker(NULL);
        msleep(3000);
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_int_equal(sf_store_get(ctx.store, "counter", uuid, &got, NULL), 0);
        runs = sf_json_int(got, "runs", 0);
        fprintf(stderr, "test_worker: 11 copies published, %lld handler runs in 3 s\n", (long long)runs);
        /* One live copy: about one run per 300 ms wait; eleven copies would make ~100. */
        assert_true(runs >= 1);
        assert_true(runs <= 15);
        sf_intent_finish(ctx.store, id, "failed", "test over");
}

/* A submit while the handler runs (it may have read the object before the change the
 * submitter made) returns the same intent, which then runs once more. */
static void test_submit_while_running_reruns(void **state) {
        char uuid[SF_UUID_LEN], id[SF_UUID_LEN], id2[SF_UUID_LEN] = "", st[16] = "";
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        int status, attempts = 0, r;
        pid_t pid;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "counter", uuid, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.slowrun", "counter", uuid, "system",
                                          NULL, id), 0);
        pid = spawn_worker(NULL);
        for (int i = 0; i < 100 && attempts == 0; i++) {
                msleep(50);
                sf_intent_load(ctx.store, id, NULL, NULL, &attempts);
        }
        r = sf_intent_submit(&ctx, node, "testw", "counter.slowrun", "counter", uuid, "system", NULL, id2);
        wait_intent(id, st, 100);
        kill(pid, SIGTERM); /* before any assert: a failed test must not leave its worker */
        waitpid(pid, &status, 0);
        assert_int_equal(attempts, 1);
        assert_int_equal(r, 0);
        assert_string_equal(id2, id);
        assert_string_equal(st, "done");
        assert_int_equal(sf_store_get(ctx.store, "counter", uuid, &got, NULL), 0);
        assert_int_equal(sf_json_int(got, "runs", 0), 2);
}

static int set_release(json_object *doc, void *ud) {
        (void)ud;
        json_object_object_add(doc, "release", json_object_new_int(1));
        return 0;
}

static long long ticks(void) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(ctx.store, "GET sf:test:%s:ticks", node);
        return r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
}

/* A slow intent, then a quick one.  Returns whether the quick one was done while the slow
 * one was still busy; *ticks_while_busy gets the ticks counted meanwhile. */
static bool quick_passes_slow(const char *concurrency, long long *ticks_while_busy) {
        char slow[SF_UUID_LEN], quick[SF_UUID_LEN], sid[SF_UUID_LEN], qid[SF_UUID_LEN];
        char sst[16] = "", qst[16] = "";
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        long long t0;
        bool passed;
        int status;
        pid_t pid;

        sf_uuid_new(slow);
        sf_uuid_new(quick);
        assert_int_equal(sf_store_put(ctx.store, "counter", slow, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_store_put(ctx.store, "counter", quick, 0, doc, NULL, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.slow", "counter", slow, "system",
                                          NULL, sid), 0);
        setenv("SF_TEST_CONCURRENCY", concurrency, 1);
        pid = spawn_worker(NULL);
        unsetenv("SF_TEST_CONCURRENCY");
        msleep(1500); /* the slow one is being handled */
        t0 = ticks();
        assert_int_equal(sf_intent_submit(&ctx, node, "testw", "counter.bump", "counter", quick, "system",
                                          NULL, qid), 0);
        wait_intent(qid, qst, 30);
        msleep(2500); /* the tick runs about once a second (the fetch waits up to 1 s) */
        sf_intent_load(ctx.store, sid, NULL, sst, NULL);
        passed = strcmp(qst, "done") == 0 && strcmp(sst, "pending") == 0;
        *ticks_while_busy = ticks() - t0;
        print_message("concurrency %s: quick %s, slow %s, %lld ticks while the slow one was busy\n", concurrency, qst, sst,
                      *ticks_while_busy);
        /* Let the slow one finish: both end done, once each. */
        assert_int_equal(sf_store_update(ctx.store, "counter", slow, NULL, set_release, NULL, NULL), 0);
        wait_intent(sid, sst, 100);
        wait_intent(qid, qst, 100);
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        assert_string_equal(sst, "done");
        assert_string_equal(qst, "done");
        assert_int_equal(sf_store_get(ctx.store, "counter", slow, &got, NULL), 0);
        assert_int_equal(sf_json_int(got, "effects", 0), 1);
        return passed;
}

/* With handler threads a slow handler delays neither another intent nor the tick; with
 * one (the default, and the old behaviour) both wait behind it. */
static void test_concurrent_handlers(void **state) {
        long long busy_ticks = 0;

        (void)state;
        assert_true(quick_passes_slow("3", &busy_ticks));
        assert_true(busy_ticks >= 2);
        assert_false(quick_passes_slow("1", &busy_ticks));
        assert_true(busy_ticks == 0);
}

static int setup(void **state) {
        char u[SF_UUID_LEN];

        (void)state;
        sf_uuid_new(u);
        snprintf(node, sizeof(node), "wt-%.8s", u);
        setenv("SF_NODE", node, 1);
        setenv("SF_ACK_WAIT", "1", 1); /* fast redelivery after the kill */
        return sf_ctx_open(&ctx, true, 5);
}

static int teardown(void **state) {
        (void)state;
        sf_ctx_close(&ctx);
        return 0;
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kill_after_commit),
                cmocka_unit_test(test_kill_before_commit),
                cmocka_unit_test(test_duplicate_publish_one_effect),
                cmocka_unit_test(test_retries_exhausted_error),
                cmocka_unit_test(test_poison_message_terminated),
                cmocka_unit_test(test_superseded_copies_dropped),
                cmocka_unit_test(test_submit_while_running_reruns),
                cmocka_unit_test(test_concurrent_handlers),
        };

        if (argc > 1 && strcmp(argv[1], "--worker") == 0)
                return worker_main();
        return cmocka_run_group_tests(tests, setup, teardown);
}
