/* Unit tests for cli/spec.c: `sf instance create`'s disk, network, video and metadata specs
 * parsed as upstream's client does (expected bodies are what upstream's Python code builds
 * for the same input), and hostile input refused with a message instead of a crash.
 * spec.c is compiled in here: the CLI is not part of the module libraries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/spec.c"

/* The spec as compact JSON with sorted keys, for comparison with upstream's json.dumps. */
static void assert_json(json_object *o, const char *want) {
        json_object *sorted = json_object_new_object();
        const char *keys[32];
        size_t n = 0;

        json_object_object_foreach(o, k, v) {
                (void)v;
                assert_true(n < 32);
                keys[n++] = k;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(keys[j], keys[i]) < 0) {
                                const char *t = keys[i];
                                keys[i] = keys[j];
                                keys[j] = t;
                        }
        for (size_t i = 0; i < n; i++) {
                json_object *v = NULL;
                json_object_object_get_ex(o, keys[i], &v);
                json_object_object_add(sorted, keys[i], json_object_get(v));
        }
        assert_string_equal(json_object_to_json_string_ext(sorted, JSON_C_TO_STRING_PLAIN), want);
        json_object_put(sorted);
}

static void test_pyint(void **state) {
        int64_t v = -7;
        (void)state;
        struct {
                const char *in;
                int r;
                int64_t v;
        } cases[] = {
                {"8", 0, 8},
                {" 8 ", 0, 8},
                {"\t+8\n", 0, 8},
                {"-1", 0, -1},
                {"08", 0, 8},
                {"1_000", 0, 1000},
                {"9223372036854775807", 0, INT64_MAX},
                {"-9223372036854775808", 0, INT64_MIN},
                {"9223372036854775808", -ERANGE, 0},
                {"99999999999999999999999999999", -ERANGE, 0},
                {"99999999999999999999999999999x", -EINVAL, 0},
                {"", -EINVAL, 0},
                {" ", -EINVAL, 0},
                {"-", -EINVAL, 0},
                {"+", -EINVAL, 0},
                {"1__0", -EINVAL, 0},
                {"_1", -EINVAL, 0},
                {"1_", -EINVAL, 0},
                {"0x10", -EINVAL, 0},
                {"1.5", -EINVAL, 0},
                {"1e3", -EINVAL, 0},
                {"1 2", -EINVAL, 0},
                {"- 1", -EINVAL, 0},
                {"8GB", -EINVAL, 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                v = -7;
                int r = sf_spec_pyint(cases[i].in, &v);
                if (r != cases[i].r)
                        fail_msg("pyint(\"%s\") = %d, want %d", cases[i].in, r, cases[i].r);
                if (r == 0 && v != cases[i].v)
                        fail_msg("pyint(\"%s\") value %lld", cases[i].in, (long long)v);
                if (r < 0 && v != -7)
                        fail_msg("pyint(\"%s\") set its result on failure", cases[i].in);
        }
}

static void test_disk_short(void **state) {
        json_object *d = NULL;
        char err[256] = "";
        (void)state;

        assert_int_equal(sf_spec_disk("8", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"base\":null,\"bus\":null,\"size\":8,\"type\":\"disk\"}");
        json_object_put(d);
        assert_int_equal(sf_spec_disk("20@http://x/debian:12.qcow2", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"base\":\"http:\\/\\/x\\/debian:12.qcow2\",\"bus\":null,\"size\":20,\"type\":\"disk\"}");
        json_object_put(d);
        /* "8@" is ['8', ''] in Python: base is the empty string, not null */
        assert_int_equal(sf_spec_disk("8@", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"base\":\"\",\"bus\":null,\"size\":8,\"type\":\"disk\"}");
        json_object_put(d);

        d = NULL;
        assert_int_equal(sf_spec_disk("", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Disk size is not an integer");
        assert_null(d);
        assert_int_equal(sf_spec_disk("@", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Disk size is not an integer");
        assert_int_equal(sf_spec_disk("@http://x/a", &d, err, sizeof(err)), -EINVAL);
        assert_int_equal(sf_spec_disk("eight@http://x/a", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Disk size is not an integer");
        assert_int_equal(sf_spec_disk("1.5", &d, err, sizeof(err)), -EINVAL);
        assert_int_equal(sf_spec_disk("99999999999999999999999", &d, err, sizeof(err)), -ERANGE);
        assert_string_equal(err, "Disk size is out of range");
        /* upstream: ValueError traceback on the unpack; here a message */
        assert_int_equal(sf_spec_disk("8@a@b", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in disk specification - should be SIZE[@BASE]: 8@a@b");
        assert_null(d);
}

static void test_disk_detailed(void **state) {
        json_object *d = NULL;
        char err[256] = "";
        (void)state;

        assert_int_equal(sf_spec_diskspec("size=8,base=http://x/a,bus=sata,type=cdrom", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"base\":\"http:\\/\\/x\\/a\",\"bus\":\"sata\",\"size\":8,\"type\":\"cdrom\"}");
        json_object_put(d);
        /* strings stay strings; an empty size is falsy in Python and stays "" */
        assert_int_equal(sf_spec_diskspec("size=,bus=virtio", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"bus\":\"virtio\",\"size\":\"\"}");
        json_object_put(d);
        /* "=,=": two elements ['', ''] -> {'': ''} */
        assert_int_equal(sf_spec_diskspec("=,=", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"\":\"\"}");
        json_object_put(d);
        /* the last of a repeated key wins, as in a Python dict */
        assert_int_equal(sf_spec_diskspec("size=1,size=2", &d, err, sizeof(err)), 0);
        assert_json(d, "{\"size\":2}");
        json_object_put(d);

        d = NULL;
        assert_int_equal(sf_spec_diskspec("", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in disk specification - should be key=value: ");
        assert_int_equal(sf_spec_diskspec("size=8,,base=x", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in disk specification - should be key=value: ");
        assert_int_equal(sf_spec_diskspec("size=8,base", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in disk specification - should be key=value: base");
        assert_int_equal(sf_spec_diskspec("base=a=b", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in disk specification - should be key=value: base=a=b");
        assert_int_equal(sf_spec_diskspec("size=big", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Disk size is not an integer");
        assert_int_equal(sf_spec_diskspec("size=18446744073709551616", &d, err, sizeof(err)), -ERANGE);
        assert_null(d);
}

static void test_network(void **state) {
        json_object *n = NULL;
        char err[256] = "";
        (void)state;

        assert_int_equal(sf_spec_network("mynet", 0, &n, err, sizeof(err)), 0);
        assert_json(n, "{\"macaddress\":null,\"model\":\"virtio\",\"network_uuid\":\"mynet\"}");
        json_object_put(n);
        assert_int_equal(sf_spec_network("mynet@10.0.0.5", 0, &n, err, sizeof(err)), 0);
        assert_json(n, "{\"address\":\"10.0.0.5\",\"macaddress\":null,\"model\":\"virtio\",\"network_uuid\":\"mynet\"}");
        json_object_put(n);
        assert_int_equal(sf_spec_network("mynet", 1, &n, err, sizeof(err)), 0);
        assert_json(n, "{\"float\":true,\"macaddress\":null,\"model\":\"virtio\",\"network_uuid\":\"mynet\"}");
        json_object_put(n);
        /* an empty address is falsy: no "address" key; "@" leaves an empty network name */
        assert_int_equal(sf_spec_network("@", 0, &n, err, sizeof(err)), 0);
        assert_json(n, "{\"macaddress\":null,\"model\":\"virtio\",\"network_uuid\":\"\"}");
        json_object_put(n);

        n = NULL;
        assert_int_equal(sf_spec_network("a@b@c", 0, &n, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in network specification - should be NETWORK[@ADDRESS]: a@b@c");
        assert_null(n);

        assert_int_equal(sf_spec_networkspec("network_uuid=n1,address=10.0.0.9,model=e1000,float=True", &n, err,
                                             sizeof(err)),
                         0);
        assert_json(n, "{\"address\":\"10.0.0.9\",\"float\":true,\"model\":\"e1000\",\"network_uuid\":\"n1\"}");
        json_object_put(n);
        assert_int_equal(sf_spec_networkspec("network_uuid=n1,float=yes", &n, err, sizeof(err)), 0);
        assert_json(n, "{\"float\":false,\"network_uuid\":\"n1\"}");
        json_object_put(n);
        assert_int_equal(sf_spec_networkspec("network_uuid=n1,macaddress=02:00:00:00:00:01", &n, err, sizeof(err)), 0);
        assert_json(n, "{\"macaddress\":\"02:00:00:00:00:01\",\"network_uuid\":\"n1\"}");
        json_object_put(n);

        n = NULL;
        assert_int_equal(sf_spec_networkspec("network_uuid", &n, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in network specification - should be key=value: network_uuid");
        assert_int_equal(sf_spec_networkspec(",", &n, err, sizeof(err)), -EINVAL);
        assert_null(n);
}

static void test_video(void **state) {
        json_object *v = NULL;
        char err[256] = "";
        (void)state;

        assert_int_equal(sf_spec_video(NULL, &v, err, sizeof(err)), 0);
        assert_json(v, "{\"memory\":16384,\"model\":\"cirrus\"}");
        json_object_put(v);
        assert_int_equal(sf_spec_video("model=qxl", &v, err, sizeof(err)), 0);
        assert_json(v, "{\"memory\":16384,\"model\":\"qxl\"}");
        json_object_put(v);
        assert_int_equal(sf_spec_video("memory=65536,vdi=vnc", &v, err, sizeof(err)), 0);
        assert_json(v, "{\"memory\":65536,\"model\":\"cirrus\",\"vdi\":\"vnc\"}");
        json_object_put(v);
        /* not an integer: left as the string upstream sends (the API refuses it) */
        assert_int_equal(sf_spec_video("memory=lots", &v, err, sizeof(err)), 0);
        assert_json(v, "{\"memory\":\"lots\",\"model\":\"cirrus\"}");
        json_object_put(v);

        v = NULL;
        assert_int_equal(sf_spec_video("", &v, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Error in video specification -  should be key=value: ");
        assert_int_equal(sf_spec_video("model", &v, err, sizeof(err)), -EINVAL);
        assert_null(v);
}

static void test_metadata(void **state) {
        json_object *md = json_object_new_object();
        char err[256] = "";
        (void)state;

        assert_int_equal(sf_spec_metadata_add(md, "owner=alice", err, sizeof(err)), 0);
        assert_int_equal(sf_spec_metadata_add(md, "tags=[\"a\", \"b\"]", err, sizeof(err)), 0);
        assert_int_equal(sf_spec_metadata_add(md, "affinity={\"fastdisk\": 10}", err, sizeof(err)), 0);
        assert_int_equal(sf_spec_metadata_add(md, "note=a=b", err, sizeof(err)), 0);
        assert_int_equal(sf_spec_metadata_add(md, "empty=", err, sizeof(err)), 0);
        assert_json(md, "{\"affinity\":{\"fastdisk\":10},\"empty\":\"\",\"note\":\"a=b\",\"owner\":\"alice\","
                        "\"tags\":[\"a\",\"b\"]}");

        assert_int_equal(sf_spec_metadata_add(md, "owner", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Unable to parse metadata, correct format is \"key=value\"");
        assert_int_equal(sf_spec_metadata_add(md, "tags=[1,", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Reserved metadata keys (tags, affinity) must contain valid JSON: [1,");
        assert_int_equal(sf_spec_metadata_add(md, "tags=[1] x", err, sizeof(err)), -EINVAL);
        assert_int_equal(sf_spec_metadata_add(md, "affinity='a'", err, sizeof(err)), -EINVAL);
        assert_int_equal(sf_spec_metadata_add(md, "tags=", err, sizeof(err)), -EINVAL);
        /* refusals leave md as it was */
        assert_json(md, "{\"affinity\":{\"fastdisk\":10},\"empty\":\"\",\"note\":\"a=b\",\"owner\":\"alice\","
                        "\"tags\":[\"a\",\"b\"]}");
        json_object_put(md);
}

static void test_json_parse(void **state) {
        json_object *o = (json_object *)1;
        (void)state;

        assert_int_equal(sf_spec_json_parse("5", &o), 0);
        assert_int_equal(json_object_get_int(o), 5);
        json_object_put(o);
        assert_int_equal(sf_spec_json_parse(" [1, 2] \n", &o), 0);
        assert_int_equal(json_object_array_length(o), 2);
        json_object_put(o);
        assert_int_equal(sf_spec_json_parse("null", &o), 0);
        assert_null(o);
        o = (json_object *)1;
        assert_int_equal(sf_spec_json_parse("", &o), -EINVAL);
        assert_int_equal(sf_spec_json_parse("{\"a\": 1}{", &o), -EINVAL);
        assert_int_equal(sf_spec_json_parse("[1,]", &o), -EINVAL);
        assert_int_equal(sf_spec_json_parse("{'a': 1}", &o), -EINVAL);
        assert_ptr_equal(o, (json_object *)1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pyint),       cmocka_unit_test(test_disk_short), cmocka_unit_test(test_disk_detailed),
                cmocka_unit_test(test_network),     cmocka_unit_test(test_video),      cmocka_unit_test(test_metadata),
                cmocka_unit_test(test_json_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
