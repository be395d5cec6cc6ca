/* Integration: Redis CAS, locks with fencing, intents recorded before publish.
 * Needs redis-server and nats-server (tests/run.sh starts them; SF_REDIS_PORT, SF_NATS_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "event.h"
#include "object.h"
#include "intent.h"
#include "ipam.h"
#include "keys.h"
#include "lock.h"
#include "store.h"
#include "util.h"

static sf_ctx_t ctx;

static void msleep(int ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

static int setup(void **state) {
        (void)state;
        return sf_ctx_open(&ctx, true, 5);
}

static int teardown(void **state) {
        (void)state;
        sf_ctx_close(&ctx);
        return 0;
}

static void test_cas_conflict(void **state) {
        char uuid[SF_UUID_LEN];
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        uint64_t rev = 0;

        (void)state;
        sf_uuid_new(uuid);
        json_object_object_add(doc, "name", json_object_new_string("casobj"));
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 0, doc, NULL, &rev), 0);
        assert_int_equal(rev, 1);
        /* A second creator loses. */
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 0, doc, NULL, NULL), -ESTALE);
        /* A writer holding an old revision loses. */
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 1, doc, NULL, &rev), 0);
        assert_int_equal(rev, 2);
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 1, doc, NULL, NULL), -ESTALE);
        assert_int_equal(sf_store_get(ctx.store, "thing", uuid, &got, &rev), 0);
        assert_int_equal(rev, 2);
        assert_string_equal(sf_json_str(got, "name"), "casobj");
        assert_int_equal(sf_store_get(ctx.store, "thing", "no-such", NULL, NULL), -ENOENT);
}

static int incr(json_object *doc, void *ud) {
        (void)ud;
        json_object_object_add(doc, "n", json_object_new_int64(sf_json_int(doc, "n", 0) + 1));
        return 0;
}

typedef struct {
        const char *uuid;
        int n;
} racer_t;

static void *racer(void *arg) {
        racer_t *r = arg;
        sf_store_t *s = NULL;
        int rc;

        if (sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &s) < 0)
                return NULL;
        for (int i = 0; i < r->n; i++)
                if ((rc = sf_store_update(s, "thing", r->uuid, NULL, incr, NULL, NULL)) < 0) { fprintf(stderr, "racer: %d\n", rc);
                        break;
                }
        sf_store_free(s);
        return NULL;
}

static void test_cas_concurrent_updates(void **state) {
        char uuid[SF_UUID_LEN];
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL;
        racer_t r = {.uuid = uuid, .n = 300};
        pthread_t t[3];

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 0, doc, NULL, NULL), 0);
        for (int i = 0; i < 3; i++)
                pthread_create(&t[i], NULL, racer, &r);
        for (int i = 0; i < 3; i++)
                pthread_join(t[i], NULL);
        assert_int_equal(sf_store_get(ctx.store, "thing", uuid, &got, NULL), 0);
        /* No lost update: every increment landed exactly once. */
        assert_int_equal(sf_json_int(got, "n", 0), 900);
}

static void test_lock_expiry_and_fencing(void **state) {
        char name[64], uuid[SF_UUID_LEN];
        sf_lock_t *a = NULL, *b = NULL;
        _cleanup_json_ json_object *doc = json_object_new_object();
        sf_fence_t fa, fb;
        uint64_t rev = 0;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(name, sizeof(name), "test/%s", uuid);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "holder-a", 300, 0, false, &a), 0);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "holder-b", 300, 0, false, &b), -EBUSY);
        fa = sf_lock_fence(a);
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 0, doc, &fa, &rev), 0);
        /* A stalls past its TTL; B takes over with a newer token. */
        msleep(400);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "holder-b", 5000, 0, false, &b), 0);
        assert_true(sf_lock_token(b) > sf_lock_token(a));
        assert_int_equal(sf_lock_refresh(ctx.store, a), -ENOLCK);
        assert_true(sf_lock_lost(a));
        /* A wakes up and writes: refused even though its revision is current. */
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, rev, doc, &fa, NULL), -ENOLCK);
        fb = sf_lock_fence(b);
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, rev, doc, &fb, &rev), 0);
        assert_int_equal(rev, 2);
        /* A's release must not free B's lock. */
        sf_lock_release(ctx.store, a);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "holder-c", 300, 0, false, &a), -EBUSY);
        sf_lock_release(ctx.store, b);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "holder-c", 300, 0, false, &a), 0);
        sf_lock_release(ctx.store, a);
}

/* A check right after the lock was found ours is answered at once; past the window
 * (ttl/10) it asks Redis again, and so sees a lock that is gone. */
static void test_lock_check_window(void **state) {
        char name[64], uuid[SF_UUID_LEN], key[128];
        sf_lock_t *a = NULL;
        _cleanup_reply_ redisReply *r = NULL;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(name, sizeof(name), "test/%s", uuid);
        snprintf(key, sizeof(key), SF_KEY_LOCK, name);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "holder-a", 2000, 0, false, &a), 0);
        assert_int_equal(sf_lock_check(ctx.store, a), 0);
        /* Taken away behind its back (as a wiped Redis would). */
        r = sf_store_cmd(ctx.store, "DEL %s", key);
        assert_non_null(r);
        msleep(250); /* past the window: 200 ms for a 2 s lock */
        assert_int_equal(sf_lock_check(ctx.store, a), -ENOLCK);
        assert_true(sf_lock_lost(a));
        sf_lock_release(ctx.store, a);
}

/* sf_store_update's first guess (the connection's last view of the document) is only
 * trusted by a successful write: a stale guess is re-read, and a decision not to write
 * made on the guess is made again on the current document. */
static int add_one(json_object *doc, void *ud) {
        (void)ud;
        json_object_object_add(doc, "n", json_object_new_int64(sf_json_int(doc, "n", 0) + 1));
        return 0;
}

static int only_if_open(json_object *doc, void *ud) {
        (void)ud;
        if (strcmp(sf_json_str(doc, "state") ?: "", "open") != 0)
                return 1;
        json_object_object_add(doc, "state", json_object_new_string("closed"));
        return 0;
}

static void test_update_guess(void **state) {
        char uuid[SF_UUID_LEN];
        sf_store_t *other = NULL;
        _cleanup_json_ json_object *doc = json_object_new_object(), *got = NULL, *theirs = NULL;
        uint64_t rev = 0, ours = 0;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &other), 0);
        json_object_object_add(doc, "state", json_object_new_string("closed"));
        assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 0, doc, NULL, &rev), 0);
        /* Another connection changes it: our guess (n absent, closed) is stale. */
        assert_int_equal(sf_store_get(other, "thing", uuid, &theirs, &rev), 0);
        json_object_object_add(theirs, "n", json_object_new_int64(41));
        json_object_object_add(theirs, "state", json_object_new_string("open"));
        assert_int_equal(sf_store_put(other, "thing", uuid, rev, theirs, NULL, NULL), 0);
        /* "Nothing to do" on the stale guess (closed) must not stand: it is open now. */
        assert_int_equal(sf_store_update(ctx.store, "thing", uuid, NULL, only_if_open, NULL, &got), 0);
        assert_string_equal(sf_json_str(got, "state"), "closed");
        json_object_put(got);
        got = NULL;
        /* A stale guess for a write: refused by the revision, applied to a fresh read. */
        assert_int_equal(sf_store_get(other, "thing", uuid, &got, &rev), 0);
        assert_int_equal(sf_store_put(other, "thing", uuid, rev, got, NULL, NULL), 0);
        json_object_put(got);
        got = NULL;
        assert_int_equal(sf_store_update(ctx.store, "thing", uuid, NULL, add_one, NULL, NULL), 0);
        assert_int_equal(sf_store_get(ctx.store, "thing", uuid, &got, &ours), 0);
        assert_int_equal(sf_json_int(got, "n", 0), 42);
        json_object_put(got);
        got = NULL;
        /* Deleted and made again by another connection, up to the revision of our guess:
         * the revision matches, the text does not, so the guess is not written back. */
        assert_int_equal(sf_store_purge(other, "thing", uuid), 0);
        json_object_put(theirs);
        theirs = json_object_new_object();
        json_object_object_add(theirs, "fresh", json_object_new_boolean(true));
        assert_int_equal(sf_store_put(other, "thing", uuid, 0, theirs, NULL, &rev), 0);
        while (rev < ours)
                assert_int_equal(sf_store_put(other, "thing", uuid, rev, theirs, NULL, &rev), 0);
        assert_int_equal(rev, ours);
        assert_int_equal(sf_store_update(ctx.store, "thing", uuid, NULL, add_one, NULL, NULL), 0);
        assert_int_equal(sf_store_get(ctx.store, "thing", uuid, &got, NULL), 0);
        assert_true(sf_json_bool(got, "fresh", false));
        assert_int_equal(sf_json_int(got, "n", 0), 1);
        sf_store_free(other);
}

static void test_lock_keepalive(void **state) {
        char name[64], uuid[SF_UUID_LEN];
        sf_lock_t *a = NULL, *b = NULL;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(name, sizeof(name), "test/%s", uuid);
        /* A TTL of 1.2 s (refreshed every 400 ms) leaves a loaded CI machine 800 ms of
         * scheduling delay before the lock would lapse. */
        assert_int_equal(sf_lock_acquire(ctx.store, name, "a", 1200, 0, true, &a), 0);
        msleep(4000); /* > 3 TTLs: only the refresher keeps it */
        assert_int_equal(sf_lock_acquire(ctx.store, name, "b", 1200, 0, false, &b), -EBUSY);
        assert_false(sf_lock_lost(a));
        sf_lock_release(ctx.store, a);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "b", 1200, 1000, false, &b), 0);
        sf_lock_release(ctx.store, b);
}

static void test_lock_break_dead_holder(void **state) {
        char name[64], uuid[SF_UUID_LEN], holder[96];
        sf_lock_t *a = NULL, *b = NULL;
        pid_t child;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(name, sizeof(name), "test/%s", uuid);
        child = fork();
        if (child == 0)
                _exit(0);
        waitpid(child, NULL, 0);
        /* A lock of a dead process on our node: broken at once. */
        snprintf(holder, sizeof(holder), "nodeA/%d", (int)child);
        assert_int_equal(sf_lock_acquire(ctx.store, name, holder, 60000, 0, false, &a), 0);
        assert_int_equal(sf_lock_break_dead(ctx.store, name, "nodeB"), 0); /* not our node */
        assert_int_equal(sf_lock_break_dead(ctx.store, name, "nodeA"), 1);
        assert_int_equal(sf_lock_acquire(ctx.store, name, "nodeA/x", 60000, 0, false, &b), 0);
        /* The dead holder's token is refused from now on. */
        {
                _cleanup_json_ json_object *doc = json_object_new_object();
                sf_fence_t fa = sf_lock_fence(a), fb = sf_lock_fence(b);
                assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 0, doc, &fb, NULL), 0);
                assert_int_equal(sf_store_put(ctx.store, "thing", uuid, 1, doc, &fa, NULL), -ENOLCK);
        }
        sf_lock_release(ctx.store, a);
        sf_lock_release(ctx.store, b);
        /* A live holder (pid 1) is never broken. */
        assert_int_equal(sf_lock_acquire(ctx.store, name, "nodeA/1", 60000, 0, false, &a), 0);
        assert_int_equal(sf_lock_break_dead(ctx.store, name, "nodeA"), 0);
        sf_lock_release(ctx.store, a);
}

static void test_intent_recorded_before_publish(void **state) {
        char id[SF_UUID_LEN], st[16], node[32], uuid[SF_UUID_LEN];
        const char *args[] = {"disk", "0", NULL};
        Sf__Intent *in = NULL;
        int attempts = -1, n = 0;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(node, sizeof(node), "it-%.8s", uuid);
        assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                          "system", args, id), 0);
        assert_int_equal(sf_intent_load(ctx.store, id, &in, st, &attempts), 0);
        assert_string_equal(st, "pending");
        assert_int_equal(attempts, 0);
        assert_string_equal(in->kind, "instance.create");
        assert_string_equal(in->object_uuid, uuid);
        assert_string_equal(sf_intent_arg(in, "disk"), "0");
        sf__intent__free_unpacked(in, NULL);
        /* Untouched for 0 s: re-driven; once done it is left alone. */
        assert_int_equal(sf_intent_redrive(&ctx, node, NULL, 0, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(sf_intent_finish(ctx.store, id, "done", NULL), 0);
        assert_int_equal(sf_intent_redrive(&ctx, node, NULL, 0, &n), 0);
        assert_int_equal(n, 0);
}

/* Absent means Redis said nil; a half-written record or an error reply is not absent. */
static void test_get_absent_only_on_nil(void **state) {
        char u[SF_UUID_LEN], v[SF_UUID_LEN];
        char **ids = NULL;
        _cleanup_reply_ redisReply *a = NULL, *b = NULL, *c = NULL;

        (void)state;
        sf_uuid_new(u);
        sf_uuid_new(v);
        assert_int_equal(sf_store_get(ctx.store, "thing", u, NULL, NULL), -ENOENT);
        a = sf_store_cmd(ctx.store, "HSET sf:obj:thing:%s rev 3", u); /* no doc */
        assert_int_not_equal(sf_store_get(ctx.store, "thing", u, NULL, NULL), -ENOENT);
        b = sf_store_cmd(ctx.store, "SET sf:obj:thing:%s notahash", v); /* WRONGTYPE */
        assert_int_equal(sf_store_get(ctx.store, "thing", v, NULL, NULL), -EIO);
        c = sf_store_cmd(ctx.store, "SET sf:idx:thing:ns:%s notaset", v);
        assert_true(sf_store_index(ctx.store, "thing", "ns", v, &ids, NULL) < 0);
        assert_null(ids);
        freeReplyObject(sf_store_cmd(ctx.store, "DEL sf:obj:thing:%s sf:obj:thing:%s sf:idx:thing:ns:%s", u, v, v));
}

/* Keeps Redis busy (a Lua loop) for ms, so replies to everyone else are late. */
static void *busy_redis(void *arg) {
        static const char BUSY_LUA[] =
                "local t0 = redis.call('TIME')\n"
                "local s = t0[1] * 1000000 + t0[2]\n"
                "while true do\n"
                "  local t = redis.call('TIME')\n"
                "  if t[1] * 1000000 + t[2] - s > tonumber(ARGV[1]) * 1000 then return 1 end\n"
                "end";
        sf_store_t *s = NULL;

        if (sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &s) == 0) {
                freeReplyObject(sf_store_cmd_once(s, "EVAL %s 0 %d", BUSY_LUA, (int)(intptr_t)arg));
                sf_store_free(s);
        }
        return NULL;
}

/* A command whose reply is lost (here: Redis busy past the client's timeout, the
 * command still queued and applied later) must not be sent again: HINCRBY of intent
 * attempts and the event push would be applied twice. */
static void test_lost_reply_not_resent(void **state) {
        char id[SF_UUID_LEN], node[32], uuid[SF_UUID_LEN];
        sf_store_t *s = NULL;
        pthread_t th;
        int attempts = -1, r;
        json_object *evs = NULL;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(node, sizeof(node), "lr-%.8s", uuid);
        assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                          "system", NULL, id), 0);
        assert_int_equal(sf_store_connect(ctx.cfg.redis_host, ctx.cfg.redis_port, &s), 0);
        sf_store_set_timeout(s, 250);

        pthread_create(&th, NULL, busy_redis, (void *)(intptr_t)700);
        msleep(100);
        r = sf_intent_attempt(s, id, 1, NULL);
        pthread_join(th, NULL);
        msleep(100);
        assert_int_equal(sf_intent_load(ctx.store, id, NULL, NULL, &attempts), 0);
        assert_int_equal(attempts, 1); /* applied once, though the reply was lost */
        assert_int_equal(r, -EIO);     /* and the caller is told it does not know */

        {
                sf_ctx_t c2 = ctx;
                c2.store = s;
                c2.bus = NULL;
                pthread_create(&th, NULL, busy_redis, (void *)(intptr_t)700);
                msleep(100);
                sf_event_emit(&c2, "thing", uuid, "system", "audit", "lost reply", NULL, -1);
                pthread_join(th, NULL);
                msleep(100);
        }
        assert_int_equal(sf_event_list(ctx.store, "thing", uuid, NULL, 100, &evs), 0);
        assert_int_equal(json_object_array_length(evs), 1);
        json_object_put(evs);
        sf_store_free(s);
        sf_intent_finish(ctx.store, id, "done", NULL);
}

static int pending_for(const char *object) {
        _cleanup_reply_ redisReply *ids = sf_store_cmd(ctx.store, "ZRANGE sf:intents:pending 0 -1");
        int n = 0;

        assert_non_null(ids);
        for (size_t i = 0; i < ids->elements; i++) {
                _cleanup_reply_ redisReply *o = sf_store_cmd(ctx.store, "HGET sf:intent:%s object", ids->element[i]->str);
                if (o && o->type == REDIS_REPLY_STRING && strcmp(o->str, object) == 0)
                        n++;
        }
        return n;
}

/* One open intent per object and kind: submits and re-drives add no records. */
static void test_intent_one_open(void **state) {
        char id[SF_UUID_LEN], id2[SF_UUID_LEN], node[32], uuid[SF_UUID_LEN], object[64], st[16];
        const char *args[] = {"disk", "1", NULL};
        int n = 0;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(node, sizeof(node), "oo-%.8s", uuid);
        snprintf(object, sizeof(object), "instance/%s", uuid);
        assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                          "system", NULL, id), 0);
        for (int i = 0; i < 20; i++) {
                assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                                  "system", NULL, id2), 0);
                assert_string_equal(id2, id);
        }
        for (int i = 0; i < 10; i++) {
                assert_int_equal(sf_intent_redrive(&ctx, node, NULL, 0, &n), 0);
                assert_int_equal(n, 1);
        }
        assert_int_equal(pending_for(object), 1);
        /* Only the newest published copy is live. */
        assert_int_equal(sf_intent_current(ctx.store, id, id), 0);
        {
                _cleanup_reply_ redisReply *m = sf_store_cmd(ctx.store, "HGET sf:intent:%s msgid", id);
                assert_int_equal(sf_intent_current(ctx.store, id, m->str), 1);
        }
        /* Other args, other kind: other intents. */
        assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                          "system", args, id2), 0);
        assert_string_not_equal(id2, id);
        sf_intent_finish(ctx.store, id2, "done", NULL);
        /* Started, then submitted again: done runs it once more, then it is done. */
        assert_int_equal(sf_intent_attempt(ctx.store, id, 1, NULL), 0);
        assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                          "system", NULL, id2), 0);
        assert_string_equal(id2, id);
        assert_int_equal(sf_intent_finish(ctx.store, id, "done", NULL), 1);
        assert_int_equal(sf_intent_load(ctx.store, id, NULL, st, NULL), 0);
        assert_string_equal(st, "pending");
        assert_int_equal(sf_intent_finish(ctx.store, id, "done", NULL), 0);
        assert_int_equal(pending_for(object), 0);
        /* Closed: the next submit is a new intent. */
        assert_int_equal(sf_intent_submit(&ctx, node, "compute", "instance.create", "instance", uuid,
                                          "system", NULL, id2), 0);
        assert_string_not_equal(id2, id);
        sf_intent_finish(ctx.store, id2, "done", NULL);
}

static void put_instance(const char *uuid, const char *state, double age) {
        _cleanup_json_ json_object *doc = json_object_new_object();

        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "name", json_object_new_string("purgeme"));
        json_object_object_add(doc, "namespace", json_object_new_string("purgens"));
        json_object_object_add(doc, "state", json_object_new_string(state));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now() - age));
        assert_int_equal(sf_store_put(ctx.store, "instance", uuid, 0, doc, NULL, NULL), 0);
}

static bool in_index(const char *type, const char *index, const char *value, const char *uuid) {
        char **ids = NULL;
        bool found = false;

        assert_int_equal(sf_store_index(ctx.store, type, index, value, &ids, NULL), 0);
        for (char **p = ids; *p; p++)
                found |= strcmp(*p, uuid) == 0;
        sf_strv_free(ids);
        return found;
}

static void test_purge_deleted(void **state) {
        char old[SF_UUID_LEN], fresh[SF_UUID_LEN], live[SF_UUID_LEN];
        int n = -1;

        (void)state;
        sf_uuid_new(old);
        sf_uuid_new(fresh);
        sf_uuid_new(live);
        put_instance(old, "deleted", 7200);
        put_instance(fresh, "deleted", 10);
        put_instance(live, "created", 7200);
        assert_int_equal(sf_event_emit(&ctx, "instance", old, "purgens", "audit", "x", NULL, -1), 0);
        assert_int_equal(sf_obj_purge_deleted(&ctx, 3600, &n), 0);
        assert_true(n >= 1);
        /* Gone for good: record, events, indexes. */
        assert_int_equal(sf_store_get(ctx.store, "instance", old, NULL, NULL), -ENOENT);
        assert_false(in_index("instance", "all", NULL, old));
        assert_false(in_index("instance", "ns", "purgens", old));
        assert_false(in_index("instance", "name", "purgeme", old));
        {
                json_object *ev = NULL;
                assert_int_equal(sf_event_list(ctx.store, "instance", old, NULL, 100, &ev), 0);
                assert_int_equal(json_object_array_length(ev), 0);
                json_object_put(ev);
        }
        /* Recently deleted ones still answer by UUID; live ones are never touched. */
        assert_int_equal(sf_store_get(ctx.store, "instance", fresh, NULL, NULL), 0);
        assert_int_equal(sf_store_get(ctx.store, "instance", live, NULL, NULL), 0);
        assert_true(in_index("instance", "all", NULL, live));
        sf_store_purge(ctx.store, "instance", fresh);
        sf_store_purge(ctx.store, "instance", live);
}

static void test_ipam(void **state) {
        char uuid[SF_UUID_LEN], ip[16], ip2[16];
        sf_cidr_t c;
        const char *err = NULL;

        (void)state;
        sf_uuid_new(uuid);
        assert_int_equal(sf_cidr_parse("10.9.8.0/29", &c, &err), 0);
        assert_int_equal(sf_ipam_init(ctx.store, uuid, &c), 0);
        /* /29: 8 addresses, minus network, broadcast, router = 5 usable. */
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, "10.9.8.1", "i1", ip), -EADDRINUSE);
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, "10.9.9.1", "i1", ip), -ERANGE);
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, "10.9.8.5", "i1", ip), 0);
        assert_string_equal(ip, "10.9.8.5");
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, "10.9.8.5", "i1", ip), 0);
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, "10.9.8.5", "i2", ip), -EADDRINUSE);
        for (int i = 0; i < 4; i++)
                { char o[8]; snprintf(o, sizeof(o), "x%d", i); assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, NULL, o, ip2), 0); }
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, NULL, "y", ip2), -ENOSPC);
        /* A release by the wrong owner frees nothing. */
        assert_int_equal(sf_ipam_release(ctx.store, uuid, "10.9.8.5", "i2"), 0);
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, NULL, "y", ip2), -ENOSPC);
        assert_int_equal(sf_ipam_release(ctx.store, uuid, "10.9.8.5", "i1"), 0);
        assert_int_equal(sf_ipam_reserve(ctx.store, uuid, &c, NULL, "y", ip2), 0);
        assert_string_equal(ip2, "10.9.8.5");
        sf_ipam_drop(ctx.store, uuid);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cas_conflict),
                cmocka_unit_test(test_cas_concurrent_updates),
                cmocka_unit_test(test_lock_expiry_and_fencing),
                cmocka_unit_test(test_lock_keepalive),
                cmocka_unit_test(test_lock_check_window),
                cmocka_unit_test(test_update_guess),
                cmocka_unit_test(test_lock_break_dead_holder),
                cmocka_unit_test(test_intent_recorded_before_publish),
                cmocka_unit_test(test_purge_deleted),
                cmocka_unit_test(test_ipam),
                cmocka_unit_test(test_get_absent_only_on_nil),
                cmocka_unit_test(test_lost_reply_not_resent),
                cmocka_unit_test(test_intent_one_open),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
