/* Integration: an event's bus copy (what GET /events/stream sends) is the record Redis
 * stored, timestamp included, also when the Redis script bumps it to keep timestamps
 * unique per object; a follower reads the stream in order from a sequence.
 * Needs redis-server and nats-server (tests/run.sh starts them; SF_REDIS_PORT, SF_NATS_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "event.h"
#include "keys.h"
#include "sf.pb-c.h"
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

/* The next bus copy of the object's events: its timestamp as stored text ("%.6f"). */
static void bus_next(sf_bus_follow_t *f, uint64_t *ret_seq, char *ts, size_t tslen, char *msg, size_t msglen) {
        sf_bus_msg_t *m = NULL;
        const void *data;
        size_t len;
        Sf__Event *ev;

        assert_int_equal(sf_bus_follow_next(f, 5000, &m), 0);
        data = sf_bus_msg_data(m, &len);
        ev = sf__event__unpack(NULL, len, data);
        assert_non_null(ev);
        snprintf(ts, tslen, "%.6f", ev->timestamp);
        snprintf(msg, msglen, "%s", ev->message);
        *ret_seq = sf_bus_msg_seq(m);
        sf__event__free_unpacked(ev, NULL);
        sf_bus_msg_free(m);
}

static void test_bus_copy_is_the_stored_record(void **state) {
        char uuid[SF_UUID_LEN], filter[256], ts[32], msg[64], stored_ts[32];
        _cleanup_json_ json_object *list = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        sf_bus_follow_t *f = NULL;
        uint64_t first, last, seq1, seq2;
        double future = sf_now() + 100;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(filter, sizeof(filter), "sf.event.evns.instance.%s", uuid);
        assert_int_equal(sf_bus_stream_seqs(ctx.bus, SF_BUS_EVENTS, &first, &last), 0);
        assert_int_equal(sf_bus_follow(ctx.bus, SF_BUS_EVENTS, filter, last + 1, &f), 0);

        /* The object's last event "is" 100 s ahead: the script stores last + 10 us. */
        r = sf_store_cmd(ctx.store, "SET " SF_KEY_EVENTTS " %.6f", "instance", uuid, future);
        assert_non_null(r);
        assert_int_equal(sf_event_emit(&ctx, "instance", uuid, "evns", "audit", "first", NULL, -1), 0);
        assert_int_equal(sf_event_emit(&ctx, "instance", uuid, "evns", "audit", "second", NULL, -1), 0);
        assert_int_equal(sf_event_list(ctx.store, "instance", uuid, NULL, 10, &list), 0);
        assert_int_equal(json_object_array_length(list), 2);

        /* Oldest first on the bus, newest first in Redis. */
        bus_next(f, &seq1, ts, sizeof(ts), msg, sizeof(msg));
        assert_string_equal(msg, "first");
        snprintf(stored_ts, sizeof(stored_ts), "%.6f",
                 json_object_get_double(json_object_object_get(json_object_array_get_idx(list, 1), "timestamp")));
        assert_string_equal(ts, stored_ts);
        snprintf(stored_ts, sizeof(stored_ts), "%.6f", future + 0.00001);
        assert_string_equal(ts, stored_ts);

        bus_next(f, &seq2, ts, sizeof(ts), msg, sizeof(msg));
        assert_string_equal(msg, "second");
        snprintf(stored_ts, sizeof(stored_ts), "%.6f",
                 json_object_get_double(json_object_object_get(json_object_array_get_idx(list, 0), "timestamp")));
        assert_string_equal(ts, stored_ts);
        assert_true(seq2 > seq1 && seq1 > last);

        /* A follower from seq2 starts there; stream bounds include both. */
        sf_bus_follow_free(f);
        assert_int_equal(sf_bus_follow(ctx.bus, SF_BUS_EVENTS, filter, seq2, &f), 0);
        bus_next(f, &seq1, ts, sizeof(ts), msg, sizeof(msg));
        assert_int_equal(seq1, seq2);
        assert_string_equal(msg, "second");
        assert_int_equal(sf_bus_follow_next(f, 300, &(sf_bus_msg_t *){NULL}), -ETIMEDOUT);
        assert_int_equal(sf_bus_stream_seqs(ctx.bus, SF_BUS_EVENTS, &first, &last), 0);
        assert_true(first <= seq1 && last >= seq2);
        sf_bus_follow_free(f);
}

/* Several events of one object in one script (the scheduler's stages): each timestamp
 * past the previous one (and past the object's last), newest first in Redis, each audit
 * event mirrored on its namespace, and the bus copies carry the stored timestamps. */
static void test_emit_many(void **state) {
        char uuid[SF_UUID_LEN], ns[32], filter[256], ts[32], msg[64], want[32];
        const char *const messages[] = {"one", "two", "three"};
        _cleanup_json_ json_object *list = NULL, *nslist = NULL;
        _cleanup_reply_ redisReply *r = NULL;
        sf_bus_follow_t *f = NULL;
        uint64_t first, last, seq;
        double future = sf_now() + 100;
        size_t mirrored = 0;

        (void)state;
        sf_uuid_new(uuid);
        snprintf(ns, sizeof(ns), "evns%.8s", uuid);
        snprintf(filter, sizeof(filter), "sf.event.%s.instance.%s", ns, uuid);
        assert_int_equal(sf_bus_stream_seqs(ctx.bus, SF_BUS_EVENTS, &first, &last), 0);
        assert_int_equal(sf_bus_follow(ctx.bus, SF_BUS_EVENTS, filter, last + 1, &f), 0);
        r = sf_store_cmd(ctx.store, "SET " SF_KEY_EVENTTS " %.6f", "instance", uuid, future);
        assert_non_null(r);
        assert_int_equal(sf_event_emit_many(&ctx, "instance", uuid, ns, "audit", 3, messages, NULL), 0);
        assert_int_equal(sf_event_list(ctx.store, "instance", uuid, NULL, 10, &list), 0);
        assert_int_equal(json_object_array_length(list), 3);
        for (size_t i = 0; i < 3; i++) {
                json_object *ev = json_object_array_get_idx(list, 2 - i);
                assert_string_equal(sf_json_str(ev, "message"), messages[i]);
                snprintf(want, sizeof(want), "%.6f", future + 0.00001 * (double)(i + 1));
                snprintf(ts, sizeof(ts), "%.6f", json_object_get_double(json_object_object_get(ev, "timestamp")));
                assert_string_equal(ts, want);
                bus_next(f, &seq, ts, sizeof(ts), msg, sizeof(msg));
                assert_string_equal(msg, messages[i]);
                assert_string_equal(ts, want);
        }
        assert_int_equal(sf_event_list(ctx.store, "namespace", ns, "audit", 10, &nslist), 0);
        for (size_t i = 0; i < json_object_array_length(nslist); i++) {
                json_object *x = json_object_object_get(json_object_array_get_idx(nslist, i), "extra");
                if (strcmp(sf_json_str(x, "object_uuid") ?: "", uuid) == 0)
                        mirrored++;
        }
        assert_int_equal(mirrored, 3);
        sf_bus_follow_free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bus_copy_is_the_stored_record),
                cmocka_unit_test(test_emit_many),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
