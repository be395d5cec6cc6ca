/* Integration: workers/network/netplumb.c on this machine.  Needs root (netns, links,
 * iptables in a netns, dnsmasq).  Everything it makes has a per-run random name and is
 * removed by the group teardown, whether the tests pass or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec.h"
#include "log.h"
#include "util.h"
#include "../../workers/network/netplumb.h"

typedef struct fixture {
        sf_netplumb_t n;
        char tmp[64];           /* mkdtemp dir, 0755 */
        char script[128];       /* udhcpc script */
        char client_ns[32];     /* sfnt-c-<rand> */
        char client_if[16];     /* root-side end of the client veth */
        char up_ns[32];         /* sfnt-u-<rand>: "the outside", on the egress bridge */
        char up_if[16];         /* root-side end of its veth */
        char up_ip[16];         /* its address on the egress network */
        char mac[18], host_ip[16];
        char vxlan[16], bridge[16], veth_o[16], veth_i[16], egr_o[16], egr_i[16];
        pid_t dnsmasq;
} fixture_t;

static fixture_t F;

static int sh(char *const argv[], char **out) {
        return sf_exec(argv, out, NULL);
}

static void rm_link(const char *name) {
        if (name[0] && if_nametoindex(name) > 0) {
                char *argv[] = {"ip", "link", "del", (char *)name, NULL};
                (void)sh(argv, NULL);
        }
}

static void rm_netns(const char *name) {
        char path[128];

        snprintf(path, sizeof(path), "/run/netns/%s", name);
        if (name[0] && access(path, F_OK) == 0) {
                char *argv[] = {"ip", "netns", "del", (char *)name, NULL};
                (void)sh(argv, NULL);
        }
}

static void no_ipv6(const char *ifname) {
        char path[128];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
        f = fopen(path, "w");
        if (f) {
                fputs("1", f);
                fclose(f);
        }
}

/* Live process (not a zombie) whose argv[0] ends in "dnsmasq". */
static bool dnsmasq_alive(pid_t pid) {
        _cleanup_free_ char *cmd = NULL;
        char path[64];
        size_t len = 0;

        if (pid <= 1)
                return false;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        if (sf_file_read(path, &cmd, &len) < 0 || len == 0)
                return false;
        return strstr(cmd, "dnsmasq") != NULL;
}

static pid_t dnsmasq_pid(void) {
        _cleanup_free_ char *buf = NULL;
        char path[sizeof(F.n.dhcp_dir) + 8];

        snprintf(path, sizeof(path), "%s/pid", F.n.dhcp_dir);
        if (sf_file_read(path, &buf, NULL) < 0)
                return 0;
        return (pid_t)strtol(buf, NULL, 10);
}

static bool master_is(const char *link, const char *bridge) {
        char path[128], target[256];
        ssize_t len;
        const char *base;

        snprintf(path, sizeof(path), "/sys/class/net/%s/master", link);
        len = readlink(path, target, sizeof(target) - 1);
        if (len < 0)
                return false;
        target[len] = 0;
        base = strrchr(target, '/');
        return base && strcmp(base + 1, bridge) == 0;
}

static bool link_up(const char *link) {
        _cleanup_free_ char *buf = NULL;
        char path[128];

        snprintf(path, sizeof(path), "/sys/class/net/%s/flags", link);
        if (sf_file_read(path, &buf, NULL) < 0)
                return false;
        return strtoul(buf, NULL, 16) & IFF_UP;
}

static int count_masquerade(void) {
        _cleanup_free_ char *out = NULL;
        int count = 0;
        char *argv[] = {"iptables", "-w", "-t", "nat", "-S", "POSTROUTING", NULL};

        if (sf_exec_netns(F.n.uuid, argv, &out, NULL) < 0 || !out)
                return -1;
        for (char *p = out; (p = strstr(p, "-j MASQUERADE")); p++)
                count++;
        return count;
}

static long masquerade_packets(void) {
        _cleanup_free_ char *out = NULL;
        char *save = NULL;
        char *argv[] = {"iptables", "-w", "-t", "nat", "-L", "POSTROUTING", "-v", "-n", "-x", NULL};

        if (sf_exec_netns(F.n.uuid, argv, &out, NULL) < 0 || !out)
                return -1;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strstr(line, "MASQUERADE"))
                        return strtol(line, NULL, 10);
        return -1;
}

static double ensure_timed(void) {
        int64_t t0 = sf_mono_ms();

        assert_int_equal(sf_netplumb_ensure(&F.n), 0);
        return (double)(sf_mono_ms() - t0) / 1000.0;
}

/* udhcpc in the client netns; returns its "LEASE ..." line. */
static void dhcp_client(char *lease, size_t len) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {"busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "5", "-T", "1",
                        "-O", "mtu", "-s", F.script, NULL};
        char *p, *nl;
        int r = sf_exec_netns(F.client_ns, argv, &out, NULL);

        if (r < 0 || !out || !(p = strstr(out, "LEASE "))) {
                fprintf(stderr, "udhcpc: %d: %s\n", r, out ? out : "");
                fail();
        }
        nl = strchr(p, '\n');
        if (nl)
                *nl = 0;
        snprintf(lease, len, "%s", p);
}

static int ping_from_client(const char *ip) {
        char *argv[] = {"busybox", "ping", "-c", "1", "-W", "2", (char *)ip, NULL};
        _cleanup_free_ char *out = NULL;
        int r = sf_exec_netns(F.client_ns, argv, &out, NULL);

        if (r < 0)
                fprintf(stderr, "ping %s: %s\n", ip, out ? out : "");
        return r;
}

/* The host firewall rule on in_if, as netplumb.c writes it; how many copies INPUT has. */
#define FW_COMMENT "sf: guests may not reach the host"
static int fw_rule_count(const char *in_if) {
        _cleanup_free_ char *out = NULL;
        char want[64];
        int count = 0;
        char *argv[] = {"iptables", "-w", "-S", "INPUT", NULL};

        if (sh(argv, &out) < 0 || !out)
                return -1;
        snprintf(want, sizeof(want), "-i %s ", in_if);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
                if (strstr(line, want) && strstr(line, FW_COMMENT) && strstr(line, "-j DROP"))
                        count++;
        return count;
}

static void fw_rule_delete(const char *in_if) {
        char *argv[] = {"iptables", "-w", "-D", "INPUT", "-i", (char *)in_if, "-m", "conntrack",
                        "!", "--ctstate", "ESTABLISHED,RELATED", "-m", "comment", "--comment",
                        FW_COMMENT, "-j", "DROP", NULL};
        while (in_if[0] && fw_rule_count(in_if) > 0 && sh(argv, NULL) == 0)
                ;
}

/* A TCP connect from netns ns ("" = this one) within 2 s: 0 when it was accepted. */
static int tcp_connect_from(const char *ns, const char *ip, int port) {
        static const char script[] =
                "import socket, sys\n"
                "s = socket.socket(); s.settimeout(2)\n"
                "try:\n    s.connect((sys.argv[1], int(sys.argv[2])))\n"
                "except OSError as e:\n    print(e); sys.exit(1)\n";
        char portstr[16];
        char *argv[] = {"python3", "-c", (char *)script, (char *)ip, portstr, NULL};

        snprintf(portstr, sizeof(portstr), "%d", port);
        return ns[0] ? sf_exec_netns(ns, argv, NULL, NULL) : sf_exec(argv, NULL, NULL);
}

static int udp_send_from(const char *ns, const char *ip, int port) {
        static const char script[] =
                "import socket, sys\n"
                "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'guest', (sys.argv[1], "
                "int(sys.argv[2])))\n";
        char portstr[16];
        char *argv[] = {"python3", "-c", (char *)script, (char *)ip, portstr, NULL};

        snprintf(portstr, sizeof(portstr), "%d", port);
        return sf_exec_netns(ns, argv, NULL, NULL);
}

/* A socket of type on 0.0.0.0 (every host address), listening if TCP; *ret_port. */
static int host_socket(int type, int *ret_port) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        if (type == SOCK_STREAM)
                assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

/* True if a datagram arrives on fd within ms. */
static bool udp_received(int fd, int ms) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[64];

        if (poll(&p, 1, ms) != 1)
                return false;
        return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

/* An IPv4 address of this host on another link than ours and lo ("" if none). */
static void other_host_address(char out[16]) {
        struct ifaddrs *ifa = NULL;

        out[0] = 0;
        if (getifaddrs(&ifa) < 0)
                return;
        for (struct ifaddrs *i = ifa; i && !out[0]; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
                    strcmp(i->ifa_name, F.n.egress_bridge) == 0 || strcmp(i->ifa_name, "lo") == 0)
                        continue;
                inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, 16);
        }
        freeifaddrs(ifa);
}

/* "The outside": a netns on the egress bridge, where guest traffic goes after NAT. */
static void upstream_ensure(void) {
        char addr[32];

        if (if_nametoindex(F.up_if) > 0)
                return;
        snprintf(addr, sizeof(addr), "%s/24", F.up_ip);
        char *ns_add[] = {"ip", "netns", "add", F.up_ns, NULL};
        char *veth[] = {"ip", "link", "add", F.up_if, "type", "veth", "peer", "name", "eth0",
                        "netns", F.up_ns, NULL};
        char *master[] = {"ip", "link", "set", F.up_if, "master", F.n.egress_bridge, "up", NULL};
        char *ip[] = {"ip", "-n", F.up_ns, "addr", "add", addr, "dev", "eth0", NULL};
        char *up[] = {"ip", "-n", F.up_ns, "link", "set", "eth0", "up", NULL};
        assert_int_equal(sh(ns_add, NULL), 0);
        assert_int_equal(sh(veth, NULL), 0);
        no_ipv6(F.up_if);
        assert_int_equal(sh(master, NULL), 0);
        assert_int_equal(sh(ip, NULL), 0);
        assert_int_equal(sh(up, NULL), 0);
}

static int group_setup(void **state) {
        uint8_t rnd[8];
        char tag[7];
        FILE *f;

        (void)state;
        sf_log_init("test_netplumb");
        memset(&F, 0, sizeof(F));
        if (sf_random_bytes(rnd, sizeof(rnd)) < 0)
                return -1;
        sf_uuid_new(F.n.uuid);
        F.n.vxid = ((uint32_t)rnd[0] << 16 | (uint32_t)rnd[1] << 8 | rnd[2]) % 0xfffffe + 1;
        snprintf(F.n.netblock, sizeof(F.n.netblock), "10.250.%u.0/24", rnd[3]);
        snprintf(F.n.router, sizeof(F.n.router), "10.250.%u.1", rnd[3]);
        snprintf(F.host_ip, sizeof(F.host_ip), "10.250.%u.5", rnd[3]);
        snprintf(F.mac, sizeof(F.mac), "52:54:00:%02x:%02x:%02x", rnd[4], rnd[5], rnd[6]);
        F.n.prefix = 24;
        F.n.provide_dhcp = true;
        F.n.provide_nat = true;
        snprintf(F.n.mesh_dev, sizeof(F.n.mesh_dev), "lo");
        snprintf(F.n.mesh_ip, sizeof(F.n.mesh_ip), "127.0.0.1");
        F.n.mtu = 1450;
        snprintf(F.n.zone, sizeof(F.n.zone), "sftest");
        snprintf(F.n.dns_server, sizeof(F.n.dns_server), "8.8.8.8");
        unsigned egr = 200 + rnd[7] % 51;
        snprintf(F.n.floating_gateway, sizeof(F.n.floating_gateway), "192.168.%u.5", egr);
        snprintf(F.n.egress_gateway, sizeof(F.n.egress_gateway), "192.168.%u.1", egr);
        F.n.egress_prefix = 24;

        sf_random_alnum(tag, 6);
        for (char *p = tag; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        snprintf(F.n.egress_bridge, sizeof(F.n.egress_bridge), "sfnt-eb-%s", tag);
        snprintf(F.client_ns, sizeof(F.client_ns), "sfnt-c-%s", tag);
        snprintf(F.client_if, sizeof(F.client_if), "sfntc%s", tag);
        snprintf(F.up_ns, sizeof(F.up_ns), "sfnt-u-%s", tag);
        snprintf(F.up_if, sizeof(F.up_if), "sfntu%s", tag);
        snprintf(F.up_ip, sizeof(F.up_ip), "192.168.%u.200", egr);
        sf_netplumb_names(F.n.vxid, F.vxlan, F.bridge, F.veth_o, F.veth_i, F.egr_o, F.egr_i);

        snprintf(F.tmp, sizeof(F.tmp), "/tmp/sfnt-XXXXXX");
        if (!mkdtemp(F.tmp) || chmod(F.tmp, 0755) < 0)
                return -1;
        snprintf(F.n.dhcp_dir, sizeof(F.n.dhcp_dir), "%s/%s", F.tmp, F.n.uuid);
        snprintf(F.script, sizeof(F.script), "%s/udhcpc.sh", F.tmp);
        f = fopen(F.script, "w");
        if (!f)
                return -1;
        fputs("#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE ip=$ip router=$router mask=$mask "
              "mtu=$mtu\"\nexit 0\n",
              f);
        fclose(f);
        chmod(F.script, 0755);
        fprintf(stderr, "test_netplumb: uuid %s vxid %06x netblock %s egress %s\n", F.n.uuid,
                F.n.vxid, F.n.netblock, F.n.egress_bridge);
        return 0;
}

static int group_teardown(void **state) {
        pid_t pid = dnsmasq_pid();

        (void)state;
        if (F.tmp[0] == 0)
                return 0;
        (void)sf_netplumb_destroy(&F.n);
        /* Belt and braces, in case destroy itself is what failed. */
        if (dnsmasq_alive(pid))
                kill(pid, SIGKILL);
        if (dnsmasq_alive(F.dnsmasq))
                kill(F.dnsmasq, SIGKILL);
        rm_netns(F.client_ns);
        rm_link(F.client_if);
        rm_netns(F.up_ns);
        rm_link(F.up_if);
        fw_rule_delete(F.n.egress_bridge);
        rm_link(F.veth_o);
        rm_link(F.egr_o);
        rm_link(F.vxlan);
        rm_link(F.bridge);
        rm_link(F.n.egress_bridge);
        rm_netns(F.n.uuid);
        sf_rm_rf(F.tmp);
        return 0;
}

static void test_names(void **state) {
        char a[16], b[16], c[16], d[16], e[16], f[16];

        (void)state;
        sf_netplumb_names(0xabc, a, b, c, d, e, f);
        assert_string_equal(a, "vxlan-000abc");
        assert_string_equal(b, "br-vxlan-000abc");
        assert_string_equal(c, "veth-000abc-o");
        assert_string_equal(d, "veth-000abc-i");
        assert_string_equal(e, "egr-000abc-o");
        assert_string_equal(f, "egr-000abc-i");
        sf_netplumb_names(0xffffff, a, b, NULL, NULL, NULL, NULL);
        assert_string_equal(b, "br-vxlan-ffffff");
}

static void test_invalid(void **state) {
        sf_netplumb_t bad = F.n;

        (void)state;
        snprintf(bad.dhcp_dir, sizeof(bad.dhcp_dir), "%s", F.tmp); /* not .../<uuid> */
        assert_int_equal(sf_netplumb_destroy(&bad), -EINVAL);
        bad = F.n;
        bad.vxid = 0x1000000;
        assert_int_equal(sf_netplumb_ensure(&bad), -EINVAL);
        bad = F.n;
        snprintf(bad.router, sizeof(bad.router), "10.251.0.1");
        assert_int_equal(sf_netplumb_ensure(&bad), -EINVAL);
}

static void test_ensure_creates(void **state) {
        _cleanup_free_ char *out = NULL;
        char path[128], want[32];
        bool exists = true;

        (void)state;
        assert_int_equal(sf_netplumb_exists(&F.n, &exists), 0);
        assert_false(exists);
        exists = true;
        assert_int_equal(sf_netplumb_links_exist(&F.n, &exists), 0);
        assert_false(exists);
        fprintf(stderr, "test_netplumb: first ensure %.3f s\n", ensure_timed());
        assert_int_equal(sf_netplumb_exists(&F.n, &exists), 0);
        assert_true(exists);

        snprintf(path, sizeof(path), "/run/netns/%s", F.n.uuid);
        assert_int_equal(access(path, F_OK), 0);
        assert_true(link_up(F.bridge));
        assert_true(link_up(F.vxlan));
        assert_true(link_up(F.veth_o));
        assert_true(master_is(F.vxlan, F.bridge));
        assert_true(master_is(F.veth_o, F.bridge));
        assert_true(master_is(F.egr_o, F.n.egress_bridge));
        assert_int_equal(if_nametoindex(F.veth_i), 0); /* inside the netns, not here */

        char *addr[] = {"ip", "-n", F.n.uuid, "-4", "-o", "addr", "show", "dev", F.veth_i, NULL};
        assert_int_equal(sh(addr, &out), 0);
        snprintf(want, sizeof(want), "inet %s/24", F.n.router);
        assert_non_null(strstr(out, want));

        F.dnsmasq = dnsmasq_pid();
        assert_true(dnsmasq_alive(F.dnsmasq));
        assert_int_equal(count_masquerade(), 1);
        assert_int_equal(fw_rule_count(F.n.egress_bridge), 1);
        assert_int_equal(fw_rule_count("br-vxlan-+"), 1);
}

static void test_ensure_idempotent(void **state) {
        (void)state;
        fprintf(stderr, "test_netplumb: second ensure %.3f s\n", ensure_timed());
        fprintf(stderr, "test_netplumb: third ensure %.3f s\n", ensure_timed());
        assert_int_equal(count_masquerade(), 1);
        assert_int_equal(fw_rule_count(F.n.egress_bridge), 1);
        assert_int_equal(fw_rule_count("br-vxlan-+"), 1);
        assert_int_equal(dnsmasq_pid(), F.dnsmasq); /* not restarted */
        assert_true(dnsmasq_alive(F.dnsmasq));
}

static void test_dhcp_and_router(void **state) {
        sf_dhcp_host_t host = {0};
        char lease[256], want[128], addr[32];

        (void)state;
        snprintf(host.mac, sizeof(host.mac), "%s", F.mac);
        snprintf(host.ip, sizeof(host.ip), "%s", F.host_ip);
        snprintf(host.hostname, sizeof(host.hostname), "client-1");
        assert_int_equal(sf_netplumb_hosts(&F.n, &host, 1), 0);
        assert_int_equal(dnsmasq_pid(), F.dnsmasq); /* SIGHUP, not a restart */

        char *ns_add[] = {"ip", "netns", "add", F.client_ns, NULL};
        char *veth[] = {"ip", "link", "add", F.client_if, "mtu", "1450", "type", "veth", "peer",
                        "name", "eth0", "mtu", "1450", "netns", F.client_ns, NULL};
        char *master[] = {"ip", "link", "set", F.client_if, "master", F.bridge, "up", NULL};
        char *mac[] = {"ip", "-n", F.client_ns, "link", "set", "eth0", "address", F.mac, "up",
                       NULL};
        char *lo[] = {"ip", "-n", F.client_ns, "link", "set", "lo", "up", NULL};
        assert_int_equal(sh(ns_add, NULL), 0);
        assert_int_equal(sh(veth, NULL), 0);
        no_ipv6(F.client_if);
        assert_int_equal(sh(master, NULL), 0);
        assert_int_equal(sh(mac, NULL), 0);
        assert_int_equal(sh(lo, NULL), 0);

        int64_t t0 = sf_mono_ms();
        dhcp_client(lease, sizeof(lease));
        fprintf(stderr, "test_netplumb: DHCP lease in %.3f s: %s\n",
                (double)(sf_mono_ms() - t0) / 1000.0, lease);
        snprintf(want, sizeof(want), "LEASE ip=%s router=%s mask=24 mtu=1450", F.host_ip,
                 F.n.router);
        assert_string_equal(lease, want);

        snprintf(addr, sizeof(addr), "%s/24", F.host_ip);
        char *ip[] = {"ip", "-n", F.client_ns, "addr", "add", addr, "dev", "eth0", NULL};
        char *route[] = {"ip", "-n", F.client_ns, "route", "add", "default", "via", F.n.router,
                         NULL};
        assert_int_equal(sh(ip, NULL), 0);
        assert_int_equal(sh(route, NULL), 0);
        assert_int_equal(ping_from_client(F.n.router), 0);
}

static void test_nat(void **state) {
        (void)state;
        upstream_ensure();
        assert_int_equal(ping_from_client(F.up_ip), 0);
        long pkts = masquerade_packets();
        fprintf(stderr, "test_netplumb: MASQUERADE packets %ld\n", pkts);
        assert_true(pkts > 0);
}

/* Guests reach the outside, never the host: not its egress-bridge address, not its other
 * addresses, not through the router (NAT) nor straight over the guest bridge. */
static void test_guest_cannot_reach_host(void **state) {
        char other[16], route[32];
        int tport, uport;
        int tfd = host_socket(SOCK_STREAM, &tport);
        int ufd = host_socket(SOCK_DGRAM, &uport);

        (void)state;
        /* The listener is there: the host itself and the outside (NAT path) work. */
        assert_int_equal(tcp_connect_from("", F.n.egress_gateway, tport), 0);
        upstream_ensure();
        assert_int_equal(ping_from_client(F.up_ip), 0);

        assert_int_not_equal(tcp_connect_from(F.client_ns, F.n.egress_gateway, tport), 0);
        assert_int_not_equal(tcp_connect_from(F.n.uuid, F.n.egress_gateway, tport), 0);
        assert_int_not_equal(ping_from_client(F.n.egress_gateway), 0);
        other_host_address(other);
        if (other[0]) {
                fprintf(stderr, "test_netplumb: other host address %s\n", other);
                assert_int_not_equal(tcp_connect_from(F.client_ns, other, tport), 0);
        }
        assert_int_equal(udp_send_from(F.client_ns, F.n.egress_gateway, uport), 0);
        assert_false(udp_received(ufd, 1000));

        /* Straight over the guest bridge: the host answers ARP there for all its
         * addresses, so without the rule a datagram would be delivered. */
        snprintf(route, sizeof(route), "%s/32", F.n.egress_gateway);
        char *add[] = {"ip", "-n", F.client_ns, "route", "add", route, "dev", "eth0", NULL};
        char *del[] = {"ip", "-n", F.client_ns, "route", "del", route, "dev", "eth0", NULL};
        assert_int_equal(sh(add, NULL), 0);
        assert_int_equal(udp_send_from(F.client_ns, F.n.egress_gateway, uport), 0);
        bool got = udp_received(ufd, 1000);
        (void)sh(del, NULL);
        assert_false(got);

        /* Replies to what the host opens still come back through the egress bridge. */
        char *ping[] = {"busybox", "ping", "-c", "1", "-W", "2", F.n.floating_gateway, NULL};
        assert_int_equal(sh(ping, NULL), 0);
        close(tfd);
        close(ufd);
}

/* A lost rule is lost plumbing: exists says so and ensure puts it back. */
static void test_firewall_repair(void **state) {
        bool exists = false;

        (void)state;
        fw_rule_delete(F.n.egress_bridge);
        assert_int_equal(fw_rule_count(F.n.egress_bridge), 0);
        assert_int_equal(sf_netplumb_exists(&F.n, &exists), 0);
        assert_false(exists);
        /* The links alone are still there (an attach does not wait for the repair). */
        assert_int_equal(sf_netplumb_links_exist(&F.n, &exists), 0);
        assert_true(exists);
        assert_int_equal(sf_netplumb_ensure(&F.n), 0);
        assert_int_equal(fw_rule_count(F.n.egress_bridge), 1);
        assert_int_equal(sf_netplumb_exists(&F.n, &exists), 0);
        assert_true(exists);
}

static void test_crash_recovery(void **state) {
        char lease[256], want[128];

        (void)state;
        assert_true(dnsmasq_alive(F.dnsmasq));
        assert_int_equal(kill(F.dnsmasq, SIGKILL), 0);
        for (int i = 0; i < 200 && dnsmasq_alive(F.dnsmasq); i++)
                usleep(10000);
        assert_false(dnsmasq_alive(F.dnsmasq));
        rm_link(F.veth_o);
        assert_int_equal(if_nametoindex(F.veth_o), 0);

        fprintf(stderr, "test_netplumb: repairing ensure %.3f s\n", ensure_timed());
        assert_true(master_is(F.veth_o, F.bridge));
        assert_true(link_up(F.veth_o));
        pid_t pid = dnsmasq_pid();
        assert_true(pid != F.dnsmasq);
        assert_true(dnsmasq_alive(pid));
        F.dnsmasq = pid;
        assert_int_equal(count_masquerade(), 1);

        /* The repaired network serves again: the same fixed address, the router answers. */
        dhcp_client(lease, sizeof(lease));
        snprintf(want, sizeof(want), "LEASE ip=%s router=%s mask=24 mtu=1450", F.host_ip,
                 F.n.router);
        assert_string_equal(lease, want);
        assert_int_equal(ping_from_client(F.n.router), 0);
        assert_int_equal(ping_from_client(F.up_ip), 0);
}

/* Number of dnsmasq processes inside the network's netns. */
static int dnsmasq_in_netns(void) {
        _cleanup_free_ char *out = NULL;
        char *save = NULL;
        int count = 0;
        char *argv[] = {"ip", "netns", "pids", F.n.uuid, NULL};

        if (sh(argv, &out) < 0 || !out)
                return -1;
        for (char *t = strtok_r(out, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
                if (dnsmasq_alive((pid_t)strtol(t, NULL, 10)))
                        count++;
        return count;
}

/* Run fn(&F.n) in a child and SIGKILL it after delay_ms: a worker dying mid-operation. */
static void killed_after(int (*fn)(const sf_netplumb_t *), int delay_ms) {
        pid_t child = fork();

        assert_true(child >= 0);
        if (child == 0)
                _exit(fn(&F.n) == 0 ? 0 : 1);
        usleep((useconds_t)delay_ms * 1000);
        kill(child, SIGKILL);
        assert_int_equal(waitpid(child, NULL, 0), child);
}

static void test_kill9_ensure(void **state) {
        static const int delays[] = {1, 5, 15, 30, 60, 90, 120, 160, 200};

        (void)state;
        for (size_t i = 0; i < SF_ARRAY_SIZE(delays); i++) {
                /* Start from a partly broken network too: no veth, no dnsmasq. */
                if (i % 2) {
                        pid_t pid = dnsmasq_pid();
                        if (dnsmasq_alive(pid))
                                kill(pid, SIGKILL);
                        rm_link(F.egr_o);
                }
                killed_after(sf_netplumb_ensure, delays[i]);
                assert_int_equal(sf_netplumb_ensure(&F.n), 0);
                assert_true(master_is(F.veth_o, F.bridge));
                assert_true(master_is(F.vxlan, F.bridge));
                assert_true(master_is(F.egr_o, F.n.egress_bridge));
                assert_int_equal(count_masquerade(), 1);
                assert_true(dnsmasq_alive(dnsmasq_pid()));
                assert_int_equal(dnsmasq_in_netns(), 1);
        }
        F.dnsmasq = dnsmasq_pid();
        assert_int_equal(ping_from_client(F.n.router), 0);
        assert_int_equal(ping_from_client(F.up_ip), 0);
}

static void test_kill9_destroy(void **state) {
        static const int delays[] = {1, 10, 30, 60};
        char path[128];

        (void)state;
        snprintf(path, sizeof(path), "/run/netns/%s", F.n.uuid);
        for (size_t i = 0; i < SF_ARRAY_SIZE(delays); i++) {
                assert_int_equal(sf_netplumb_ensure(&F.n), 0);
                pid_t pid = dnsmasq_pid();
                killed_after(sf_netplumb_destroy, delays[i]);
                assert_int_equal(sf_netplumb_destroy(&F.n), 0);
                assert_false(dnsmasq_alive(pid));
                assert_int_not_equal(access(path, F_OK), 0);
                assert_int_equal(if_nametoindex(F.veth_o), 0);
                assert_int_equal(if_nametoindex(F.bridge), 0);
                assert_int_equal(if_nametoindex(F.vxlan), 0);
                assert_int_equal(if_nametoindex(F.egr_o), 0);
                assert_int_not_equal(access(F.n.dhcp_dir, F_OK), 0);
        }
}

static void test_destroy(void **state) {
        char path[128];
        struct stat st;
        bool exists = true;

        (void)state;
        int64_t t0 = sf_mono_ms();
        assert_int_equal(sf_netplumb_destroy(&F.n), 0);
        fprintf(stderr, "test_netplumb: destroy %.3f s\n", (double)(sf_mono_ms() - t0) / 1000.0);

        snprintf(path, sizeof(path), "/run/netns/%s", F.n.uuid);
        assert_int_not_equal(access(path, F_OK), 0);
        assert_int_equal(if_nametoindex(F.vxlan), 0);
        assert_int_equal(if_nametoindex(F.bridge), 0);
        assert_int_equal(if_nametoindex(F.veth_o), 0);
        assert_int_equal(if_nametoindex(F.egr_o), 0);
        assert_false(dnsmasq_alive(F.dnsmasq));
        assert_int_not_equal(stat(F.n.dhcp_dir, &st), 0);
        assert_int_equal(sf_netplumb_exists(&F.n, &exists), 0);
        assert_false(exists);
        /* The shared egress bridge stays; its firewall rule goes with its last port. */
        assert_true(if_nametoindex(F.n.egress_bridge) > 0);
        rm_link(F.up_if);
        assert_int_equal(sf_netplumb_destroy(&F.n), 0);
        assert_int_equal(fw_rule_count(F.n.egress_bridge), 0);

        assert_int_equal(sf_netplumb_destroy(&F.n), 0);
}

/* A half-made network (netns only, bridge only) is both repairable and destroyable. */
static void test_partial_state(void **state) {
        char *ns_add[] = {"ip", "netns", "add", F.n.uuid, NULL};
        char *br_add[] = {"ip", "link", "add", F.bridge, "type", "bridge", NULL};

        (void)state;
        assert_int_equal(sh(ns_add, NULL), 0);
        assert_int_equal(sf_netplumb_destroy(&F.n), 0);
        assert_int_equal(sh(br_add, NULL), 0);
        no_ipv6(F.bridge);
        assert_int_equal(sf_netplumb_destroy(&F.n), 0);
        assert_int_equal(if_nametoindex(F.bridge), 0);

        /* Wrong vxlan parameters (another id under our name) are replaced. */
        char *vx_add[] = {"ip", "link", "add", F.vxlan, "type", "vxlan", "id", "7", "dstport",
                          "4789", "dev", "lo", NULL};
        assert_int_equal(sh(vx_add, NULL), 0);
        no_ipv6(F.vxlan);
        assert_int_equal(sh(ns_add, NULL), 0);
        fprintf(stderr, "test_netplumb: ensure from partial state %.3f s\n", ensure_timed());
        _cleanup_free_ char *out = NULL;
        char *show[] = {"ip", "-d", "link", "show", F.vxlan, NULL};
        char want[32];
        assert_int_equal(sh(show, &out), 0);
        snprintf(want, sizeof(want), "vxlan id %u ", F.n.vxid);
        assert_non_null(strstr(out, want));
        assert_true(master_is(F.vxlan, F.bridge));
        assert_int_equal(sf_netplumb_destroy(&F.n), 0);
        assert_int_equal(if_nametoindex(F.vxlan), 0);
}

int main(void) {
        if (geteuid() != 0) {
                fprintf(stderr, "test_netplumb: SKIPPED: needs root (network namespaces, "
                                "links, iptables, dnsmasq)\n");
                return 0;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_ensure_creates),
                cmocka_unit_test(test_ensure_idempotent),
                cmocka_unit_test(test_dhcp_and_router),
                cmocka_unit_test(test_nat),
                cmocka_unit_test(test_guest_cannot_reach_host),
                cmocka_unit_test(test_firewall_repair),
                cmocka_unit_test(test_crash_recovery),
                cmocka_unit_test(test_kill9_ensure),
                cmocka_unit_test(test_destroy),
                cmocka_unit_test(test_partial_state),
                cmocka_unit_test(test_kill9_destroy),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
