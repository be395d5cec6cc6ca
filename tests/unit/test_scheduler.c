/* The scheduler's core (api/scheduler.c, api.md §7 step 2) from a table of node metrics:
 * every filter, every 507 message, affinity, load, forced placement, random ties. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scheduler.h"
#include "util.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define NOW 1700000000.0
#define GIB 1073741824LL

/* A healthy node: 4 CPUs, 24000 MiB (10000 available), 100 GiB free, idle. */
#define NODE(n)                                                                                              \
        .name = n, .state = "created", .lastseen = NOW - 3, .has_metrics = true, .is_hypervisor = true,    \
        .cpu_max = 4, .cpu_max_per_instance = 16, .cpu_total_instance_vcpus = 0, .cpu_load_1 = 0.5,         \
        .memory_max = 24000, .memory_available = 10000, .memory_total_instance_actual = 0,                  \
        .disk_free_instances = 100 * GIB, .node_queue_waiting = 0, .affinity = 0

static const sf_sched_policy_t policy = {.cpu_overcommit = 16, .ram_overcommit = 3.0, .ram_reservation_gib = 2.0,
                                         .min_free_disk_gib = 20, .now = NOW, .checkin_max_s = 120};

typedef struct row {
        const char *what;
        sf_sched_node_t nodes[3];
        size_t n;
        sf_sched_ask_t ask;
        const char *want_node;  /* the pick, or NULL */
        const char *want_msg;   /* the refusal, or NULL */
        int want_r;
} row_t;

#define ASK(c, m, d) {.cpus = c, .memory = m, .disk_gib = d}

static const row_t rows[] = {
        {"no nodes at all", {{NODE("a")}}, 0, ASK(1, 1024, 8), NULL, "No nodes with metrics", -ENOSPC},
        {"node without metrics", {{NODE("a"), .has_metrics = false}}, 1, ASK(1, 1024, 8), NULL, "No nodes with metrics", -ENOSPC},
        {"missing node", {{NODE("a"), .state = "missing"}}, 1, ASK(1, 1024, 8), NULL, "No nodes with metrics", -ENOSPC},
        {"deleted node", {{NODE("a"), .state = "deleted"}}, 1, ASK(1, 1024, 8), NULL, "No nodes with metrics", -ENOSPC},
        {"heartbeat too old", {{NODE("a"), .lastseen = NOW - 121}}, 1, ASK(1, 1024, 8), NULL, "No nodes with metrics", -ENOSPC},
        {"heartbeat just in time", {{NODE("a"), .lastseen = NOW - 120}}, 1, ASK(1, 1024, 8), "a", NULL, 0},
        {"not a hypervisor", {{NODE("a"), .is_hypervisor = false}, {NODE("b")}}, 2, ASK(1, 1024, 8), "b", NULL, 0},
        {"only non-hypervisors", {{NODE("a"), .is_hypervisor = false}}, 1, ASK(1, 1024, 8), NULL, "No nodes with metrics", -ENOSPC},
        {"queue too long skipped", {{NODE("a"), .node_queue_waiting = 21}, {NODE("b"), .node_queue_waiting = 20}}, 2,
         ASK(1, 1024, 8), "b", NULL, 0},
        /* Upstream: an empty queue stage is refused by the next stage's message. */
        {"every queue too long", {{NODE("a"), .node_queue_waiting = 21}}, 1, ASK(1, 1024, 8), NULL,
         "Requested vCPUs exceeds vCPU limit", -ENOSPC},
        {"too many vCPUs", {{NODE("a")}}, 1, ASK(17, 1024, 8), NULL, "Requested vCPUs exceeds vCPU limit", -ENOSPC},
        {"vCPUs at the limit", {{NODE("a")}}, 1, ASK(16, 1024, 8), "a", NULL, 0},
        {"CPU overcommitted", {{NODE("a"), .cpu_total_instance_vcpus = 64}}, 1, ASK(1, 1024, 8), NULL,
         "No nodes with enough idle CPU", -ENOSPC},
        {"CPU at the ratio", {{NODE("a"), .cpu_total_instance_vcpus = 63}}, 1, ASK(1, 1024, 8), "a", NULL, 0},
        {"CPU picks the node with room", {{NODE("a"), .cpu_total_instance_vcpus = 64}, {NODE("b")}}, 2,
         ASK(1, 1024, 8), "b", NULL, 0},
        {"RAM reservation", {{NODE("a"), .memory_available = 2048 + 1024 - 1}}, 1, ASK(1, 1024, 8), NULL,
         "No nodes with enough idle RAM", -ENOSPC},
        {"RAM reservation exactly met", {{NODE("a"), .memory_available = 2048 + 1024}}, 1, ASK(1, 1024, 8), "a", NULL, 0},
        {"RAM overcommit ratio", {{NODE("a"), .memory_max = 10000, .memory_total_instance_actual = 28977}}, 1,
         ASK(1, 1024, 8), NULL, "No nodes with enough idle RAM", -ENOSPC},
        {"RAM overcommit ratio exactly met", {{NODE("a"), .memory_max = 10000, .memory_total_instance_actual = 28976}},
         1, ASK(1, 1024, 8), "a", NULL, 0},
        {"CPU before RAM: one fails each", {{NODE("a"), .cpu_total_instance_vcpus = 64}, {NODE("b"), .memory_available = 100}},
         2, ASK(1, 1024, 8), NULL, "No nodes with enough idle RAM", -ENOSPC},
        {"disk minus the minimum free", {{NODE("a"), .disk_free_instances = 30 * GIB}}, 1, ASK(1, 1024, 11), NULL,
         "No nodes with enough disk space", -ENOSPC},
        {"disk exactly enough", {{NODE("a"), .disk_free_instances = 30 * GIB}}, 1, ASK(1, 1024, 10), "a", NULL, 0},
        {"disk picks the node with room", {{NODE("a"), .disk_free_instances = 30 * GIB}, {NODE("b")}}, 2,
         ASK(1, 1024, 11), "b", NULL, 0},
        {"affinity +100 co-locates", {{NODE("a")}, {NODE("b"), .affinity = 100}, {NODE("c")}}, 3, ASK(1, 1024, 8), "b",
         NULL, 0},
        {"affinity -100 separates", {{NODE("a"), .affinity = -100}, {NODE("b"), .affinity = -100}, {NODE("c")}}, 3,
         ASK(1, 1024, 8), "c", NULL, 0},
        {"affinity before load", {{NODE("a"), .affinity = 5, .cpu_load_1 = 9}, {NODE("b"), .cpu_load_1 = 0}}, 2,
         ASK(1, 1024, 8), "a", NULL, 0},
        {"lowest load", {{NODE("a"), .cpu_load_1 = 2.5}, {NODE("b"), .cpu_load_1 = 1.9}, {NODE("c"), .cpu_load_1 = 3}}, 3,
         ASK(1, 1024, 8), "b", NULL, 0},
        {"forced placement", {{NODE("a")}, {NODE("b"), .cpu_load_1 = 7}}, 2, {.cpus = 1, .memory = 1024, .placed_on = "b"},
         "b", NULL, 0},
        {"forced onto an unknown node", {{NODE("a")}}, 1, {.cpus = 1, .memory = 1024, .placed_on = "zz"}, NULL,
         "node not found", -ENOENT},
        {"forced onto a missing node", {{NODE("a")}, {NODE("b"), .state = "missing"}}, 2,
         {.cpus = 1, .memory = 1024, .placed_on = "b"}, NULL, "node not found", -ENOENT},
        {"forced still filtered", {{NODE("a")}, {NODE("b"), .memory_available = 100}}, 2,
         {.cpus = 1, .memory = 1024, .placed_on = "b"}, NULL, "No nodes with enough idle RAM", -ENOSPC},
};

static void test_table(void **state) {
        (void)state;
        for (size_t i = 0; i < SF_ARRAY_SIZE(rows); i++) {
                const row_t *row = &rows[i];
                const char *msg = NULL;
                size_t idx = 99;
                unsigned seed = 1;
                int r = sf_sched_pick(row->nodes, row->n, &row->ask, &policy, &seed, NULL, NULL, &idx, &msg);

                if (r != row->want_r)
                        fail_msg("%s: returned %d, want %d (%s)", row->what, r, row->want_r, msg ? msg : "");
                if (row->want_msg && (!msg || strcmp(msg, row->want_msg) != 0))
                        fail_msg("%s: message \"%s\", want \"%s\"", row->what, msg ? msg : "", row->want_msg);
                if (row->want_node && (idx >= row->n || strcmp(row->nodes[idx].name, row->want_node) != 0))
                        fail_msg("%s: picked %s, want %s", row->what, idx < row->n ? row->nodes[idx].name : "-",
                                 row->want_node);
        }
}

/* Equal nodes: every one gets picked for some seed, and a seed always picks the same. */
static void test_ties_random(void **state) {
        sf_sched_node_t nodes[3] = {{NODE("a")}, {NODE("b")}, {NODE("c")}};
        sf_sched_ask_t ask = ASK(1, 1024, 8);
        int seen[3] = {0};

        (void)state;
        for (unsigned s = 1; s <= 300; s++) {
                unsigned seed = s, again = s;
                size_t idx, idx2;
                const char *msg;
                assert_int_equal(sf_sched_pick(nodes, 3, &ask, &policy, &seed, NULL, NULL, &idx, &msg), 0);
                assert_int_equal(sf_sched_pick(nodes, 3, &ask, &policy, &again, NULL, NULL, &idx2, &msg), 0);
                assert_int_equal(idx, idx2);
                seen[idx]++;
        }
        for (int i = 0; i < 3; i++)
                if (seen[i] < 50)
                        fail_msg("node %d picked %d times of 300", i, seen[i]);
}

typedef struct stages {
        char log[2048];
} stages_t;

static void record_stage(void *ud, const char *message, const sf_sched_node_t *nodes, const size_t *cand,
                         size_t ncand) {
        stages_t *st = ud;
        size_t len = strlen(st->log);

        len += (size_t)snprintf(st->log + len, sizeof(st->log) - len, "%s:", message);
        for (size_t i = 0; i < ncand && len < sizeof(st->log); i++)
                len += (size_t)snprintf(st->log + len, sizeof(st->log) - len, "%s%s", i ? "," : "", nodes[cand[i]].name);
        if (len < sizeof(st->log))
                snprintf(st->log + len, sizeof(st->log) - len, ";");
}

/* One audit stage per filter, with the candidates left after it. */
static void test_stages(void **state) {
        sf_sched_node_t nodes[3] = {{NODE("a")}, {NODE("b"), .memory_available = 100}, {NODE("c"), .is_hypervisor = false}};
        sf_sched_ask_t ask = ASK(1, 1024, 8);
        stages_t st = {""};
        unsigned seed = 1;
        const char *msg;
        size_t idx;

        (void)state;
        assert_int_equal(sf_sched_pick(nodes, 3, &ask, &policy, &seed, record_stage, &st, &idx, &msg), 0);
        assert_string_equal(st.log, "schedule initial candidates:a,b,c;"
                                    "schedule are hypervisors:a,b;"
                                    "schedule have reasonable queue state:a,b;"
                                    "schedule have enough actual cpu:a,b;"
                                    "schedule have enough idle cpu:a,b;"
                                    "schedule have enough idle ram:a;"
                                    "schedule have enough idle disk:a;"
                                    "schedule have highest affinity:a;"
                                    "schedule have lowest cpu load:a;"
                                    "schedule final candidates:a;");
        memset(&st, 0, sizeof(st));
        ask.placed_on = "b";
        assert_int_equal(sf_sched_pick(nodes, 3, &ask, &policy, &seed, record_stage, &st, &idx, &msg), -ENOSPC);
        assert_string_equal(st.log, "schedule forced candidates:b;"
                                    "schedule initial candidates:b;"
                                    "schedule are hypervisors:b;"
                                    "schedule have reasonable queue state:b;"
                                    "schedule have enough actual cpu:b;"
                                    "schedule have enough idle cpu:b;"
                                    "schedule have enough idle ram:;");
}

static void test_affinity_score(void **state) {
        json_object *aff = json_tokener_parse("{\"web\": 100, \"db\": -50}");
        json_object *peers[4] = {json_tokener_parse("[\"web\"]"), json_tokener_parse("[\"web\", \"db\"]"),
                                 json_tokener_parse("[\"x\"]"), NULL};

        (void)state;
        assert_int_equal(sf_sched_affinity(aff, peers, 4), 150);
        assert_int_equal(sf_sched_affinity(NULL, peers, 4), 0);
        assert_int_equal(sf_sched_affinity(aff, peers + 2, 2), 0);
        json_object_put(aff);
        for (int i = 0; i < 4; i++)
                json_object_put(peers[i]);
}

static void test_disk_sum(void **state) {
        json_object *disks = json_tokener_parse("[{\"size\": 8}, {\"size\": null}, {\"base\": \"x\"}, {\"size\": 2}]");

        (void)state;
        assert_int_equal(sf_sched_disk_gib(disks), 10);
        assert_int_equal(sf_sched_disk_gib(NULL), 0);
        json_object_put(disks);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),        cmocka_unit_test(test_ties_random),
                cmocka_unit_test(test_stages),       cmocka_unit_test(test_affinity_score),
                cmocka_unit_test(test_disk_sum),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
