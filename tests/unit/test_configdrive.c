/* Unit tests for workers/compute/configdrive.c: JSON content and a real ISO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../workers/compute/configdrive.h"
#include "exec.h"
#include "util.h"

#define UUID "0f6a5b7e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
#define NET1 "11111111-2222-3333-4444-555555555555"
#define NET2 "66666666-7777-8888-9999-000000000000"

static sf_cd_iface_t ifaces[3];

static void make_cd(sf_configdrive_t *cd) {
        memset(cd, 0, sizeof(*cd));
        memset(ifaces, 0, sizeof(ifaces));
        snprintf(cd->uuid, sizeof(cd->uuid), UUID);
        snprintf(cd->name, sizeof(cd->name), "web-1");
        snprintf(cd->zone, sizeof(cd->zone), "shakenfist");
        snprintf(cd->dns_server, sizeof(cd->dns_server), "8.8.8.8");
        cd->mtu = 1450;
        /* Given out of order on purpose: eth1 first in the array. */
        snprintf(ifaces[0].uuid, 37, "aaaaaaaa-0000-0000-0000-000000000001");
        snprintf(ifaces[0].mac, 18, "02:00:00:00:00:02");
        snprintf(ifaces[0].ipv4, 16, "10.1.0.5");
        snprintf(ifaces[0].netmask, 16, "255.255.255.0");
        snprintf(ifaces[0].network_uuid, 37, NET2);
        snprintf(ifaces[0].gateway, 16, "10.1.0.1");
        ifaces[0].order = 1;
        snprintf(ifaces[1].uuid, 37, "aaaaaaaa-0000-0000-0000-000000000000");
        snprintf(ifaces[1].mac, 18, "02:00:00:00:00:01");
        snprintf(ifaces[1].ipv4, 16, "10.0.0.5");
        snprintf(ifaces[1].netmask, 16, "255.255.255.0");
        snprintf(ifaces[1].network_uuid, 37, NET1);
        snprintf(ifaces[1].gateway, 16, "10.0.0.1");
        ifaces[1].order = 0;
        /* No address: left out of network_data. */
        snprintf(ifaces[2].uuid, 37, "aaaaaaaa-0000-0000-0000-000000000002");
        snprintf(ifaces[2].mac, 18, "02:00:00:00:00:03");
        snprintf(ifaces[2].network_uuid, 37, NET1);
        ifaces[2].order = 2;
        cd->ifaces = ifaces;
        cd->nifaces = 3;
}

static const char *sget(json_object *o, const char *key) {
        json_object *v = NULL;
        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_string(v);
}

static void test_meta(void **state) {
        sf_configdrive_t cd;
        char *meta = NULL, *net = NULL;
        json_object *m, *v, *keys;

        (void)state;
        make_cd(&cd);
        cd.ssh_key = "ssh-ed25519 AAAA/x+y test@host";
        assert_int_equal(sf_configdrive_json(&cd, &meta, &net), 0);
        m = json_tokener_parse(meta);
        assert_non_null(m);
        assert_int_equal(json_object_object_length(m), 9);
        assert_string_equal(sget(m, "uuid"), UUID);
        assert_string_equal(sget(m, "availability_zone"), "shakenfist");
        assert_string_equal(sget(m, "hostname"), "web-1.local");
        assert_string_equal(sget(m, "name"), "web-1");
        assert_true(json_object_object_get_ex(m, "launch_index", &v));
        assert_true(json_object_is_type(v, json_type_int));
        assert_int_equal(json_object_get_int(v), 0);
        assert_true(json_object_object_get_ex(m, "devices", &v));
        assert_true(json_object_is_type(v, json_type_array));
        assert_int_equal(json_object_array_length(v), 0);
        assert_true(json_object_object_get_ex(m, "project_id", &v));
        assert_null(v);
        /* 512 random bytes, base64: 684 characters. */
        assert_int_equal(strlen(sget(m, "random_seed")), 684);
        assert_true(json_object_object_get_ex(m, "public_keys", &keys));
        assert_string_equal(sget(keys, "mykey"), "ssh-ed25519 AAAA/x+y test@host");
        assert_null(strstr(meta, "\\/")); /* no needless slash escaping */
        json_object_put(m);
        free(meta);
        free(net);

        cd.ssh_key = NULL;
        assert_int_equal(sf_configdrive_json(&cd, &meta, &net), 0);
        m = json_tokener_parse(meta);
        assert_true(json_object_object_get_ex(m, "public_keys", &keys));
        assert_true(json_object_object_get_ex(keys, "mykey", &v));
        assert_null(v);
        json_object_put(m);
        free(meta);
        free(net);
}

static void test_network(void **state) {
        sf_configdrive_t cd;
        char *meta = NULL, *net = NULL;
        json_object *n, *links, *nets, *svcs, *l, *x, *routes, *rt;

        (void)state;
        make_cd(&cd);
        assert_int_equal(sf_configdrive_json(&cd, &meta, &net), 0);
        n = json_tokener_parse(net);
        assert_non_null(n);
        assert_true(json_object_object_get_ex(n, "links", &links));
        assert_true(json_object_object_get_ex(n, "networks", &nets));
        assert_true(json_object_object_get_ex(n, "services", &svcs));
        assert_int_equal(json_object_array_length(links), 2);
        assert_int_equal(json_object_array_length(nets), 2);

        l = json_object_array_get_idx(links, 0);
        assert_string_equal(sget(l, "ethernet_mac_address"), "02:00:00:00:00:01");
        assert_string_equal(sget(l, "id"), "eth0");
        assert_string_equal(sget(l, "name"), "eth0");
        assert_string_equal(sget(l, "type"), "vif");
        assert_string_equal(sget(l, "vif_id"), "aaaaaaaa-0000-0000-0000-000000000000");
        assert_true(json_object_object_get_ex(l, "mtu", &x));
        assert_int_equal(json_object_get_int(x), 1450);
        assert_string_equal(sget(json_object_array_get_idx(links, 1), "id"), "eth1");

        x = json_object_array_get_idx(nets, 0);
        assert_string_equal(sget(x, "id"), NET1 "-0");
        assert_string_equal(sget(x, "link"), "eth0");
        assert_string_equal(sget(x, "type"), "ipv4");
        assert_string_equal(sget(x, "network_id"), NET1);
        assert_string_equal(sget(x, "ip_address"), "10.0.0.5");
        assert_string_equal(sget(x, "netmask"), "255.255.255.0");
        assert_true(json_object_object_get_ex(x, "routes", &routes));
        assert_int_equal(json_object_array_length(routes), 1);
        rt = json_object_array_get_idx(routes, 0);
        assert_string_equal(sget(rt, "network"), "0.0.0.0");
        assert_string_equal(sget(rt, "netmask"), "0.0.0.0");
        assert_string_equal(sget(rt, "gateway"), "10.0.0.1");
        x = json_object_array_get_idx(nets, 1);
        assert_string_equal(sget(x, "id"), NET2 "-1");
        assert_false(json_object_object_get_ex(x, "routes", NULL));

        assert_int_equal(json_object_array_length(svcs), 1);
        assert_string_equal(sget(json_object_array_get_idx(svcs, 0), "address"), "8.8.8.8");
        assert_string_equal(sget(json_object_array_get_idx(svcs, 0), "type"), "dns");
        json_object_put(n);
        free(meta);
        free(net);
}

/* network_data.json has no random part: it must match the golden file byte for byte. */
static void test_network_golden(void **state) {
        sf_configdrive_t cd;
        char *meta = NULL, *net = NULL, *golden = NULL;
        size_t len = 0;
        FILE *f;

        (void)state;
        make_cd(&cd);
        assert_int_equal(sf_configdrive_json(&cd, &meta, &net), 0);
        if (getenv("SF_UPDATE_GOLDEN")) {
                f = fopen("tests/golden/network_data.json", "w");
                assert_non_null(f);
                fputs(net, f);
                fclose(f);
        }
        assert_int_equal(sf_file_read("tests/golden/network_data.json", &golden, &len), 0);
        if (strcmp(golden, net) != 0) {
                f = fopen("/tmp/network_data.actual.json", "w");
                if (f) {
                        fputs(net, f);
                        fclose(f);
                }
        }
        assert_string_equal(net, golden);
        free(meta);
        free(net);
        free(golden);
}

static void test_iso(void **state) {
        char dir[] = "/tmp/sfcdXXXXXX", iso[256], ud[512];
        sf_configdrive_t cd;
        char *out = NULL;
        struct stat st;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(iso, sizeof(iso), "%s/config.iso", dir);
        make_cd(&cd);
        cd.ssh_key = "ssh-ed25519 AAAA test@host";

        cd.user_data_b64 = "not base64!";
        assert_int_equal(sf_configdrive_build(&cd, iso), -EINVAL);
        assert_int_equal(stat(iso, &st), -1);

        cd.user_data_b64 = "I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogd2ViLTEK"; /* "#cloud-config\nhostname: web-1\n" */
        assert_int_equal(sf_configdrive_build(&cd, iso), 0);
        assert_int_equal(stat(iso, &st), 0);

        char *info[] = {"isoinfo", "-d", "-i", iso, NULL};
        assert_int_equal(sf_exec(info, &out, NULL), 0);
        assert_non_null(strstr(out, "Volume id: config-2"));
        free(out);

        char *list[] = {"isoinfo", "-R", "-f", "-i", iso, NULL};
        assert_int_equal(sf_exec(list, &out, NULL), 0);
        assert_non_null(strstr(out, "/openstack/latest/meta_data.json\n"));
        assert_non_null(strstr(out, "/openstack/latest/network_data.json\n"));
        assert_non_null(strstr(out, "/openstack/latest/vendor_data.json\n"));
        assert_non_null(strstr(out, "/openstack/latest/vendor_data2.json\n"));
        assert_non_null(strstr(out, "/openstack/latest/user_data\n"));
        assert_non_null(strstr(out, "/openstack/2017-02-22/meta_data.json\n"));
        assert_non_null(strstr(out, "/openstack/2017-02-22/user_data\n"));
        free(out);

        /* user_data is the decoded bytes. */
        char *cat[] = {"isoinfo", "-R", "-i", iso, "-x", "/openstack/latest/user_data", NULL};
        assert_int_equal(sf_exec(cat, &out, NULL), 0);
        assert_string_equal(out, "#cloud-config\nhostname: web-1\n");
        free(out);

        /* Joliet names are right too (v0.7.2 got these wrong). */
        char *jlist[] = {"isoinfo", "-J", "-f", "-i", iso, NULL};
        assert_int_equal(sf_exec(jlist, &out, NULL), 0);
        assert_non_null(strstr(out, "/openstack/latest/network_data.json\n"));
        assert_non_null(strstr(out, "/openstack/latest/user_data\n"));
        free(out);

        /* Without user_data there is no file; staging dirs and .tmp are gone. */
        cd.user_data_b64 = NULL;
        assert_int_equal(sf_configdrive_build(&cd, iso), 0);
        assert_int_equal(sf_exec(list, &out, NULL), 0);
        assert_null(strstr(out, "user_data"));
        free(out);
        char *ls[] = {"ls", "-A", dir, NULL};
        assert_int_equal(sf_exec(ls, &out, NULL), 0);
        assert_string_equal(out, "config.iso\n");
        free(out);

        snprintf(ud, sizeof(ud), "%s", dir);
        assert_int_equal(sf_rm_rf(ud), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_meta),
                cmocka_unit_test(test_network),
                cmocka_unit_test(test_network_golden),
                cmocka_unit_test(test_iso),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
