/* Idempotent, crash-safe plumbing of one virtual network on one node.
 *
 * Root-namespace links go through libnl-route; configuration inside the network
 * namespace goes through `ip -n`, `sysctl` and `iptables` via sf_exec (argv only), as
 * do the root namespace's INPUT rules that keep guests off the host itself.
 * Every step checks the current state first, so a re-run after kill -9 converges. */
#include "netplumb.h"

#include "exec.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>

#define NETNS_RUN_DIR "/run/netns"
#define VXLAN_PORT    4789
/* dhcp_dir plus a leaf name */
#define DPATH_MAX     (4096 + 32)

typedef struct names {
        char vxlan[16], bridge[16], veth_o[16], veth_i[16], egr_o[16], egr_i[16], egr_br[16];
} names_t;

static void nlsockp(struct nl_sock **sk) {
        if (*sk)
                nl_socket_free(*sk);
}
static void linkp(struct rtnl_link **l) {
        if (*l)
                rtnl_link_put(*l);
}
static void addrp(struct nl_addr **a) {
        if (*a)
                nl_addr_put(*a);
}
static void rtaddrp(struct rtnl_addr **a) {
        if (*a)
                rtnl_addr_put(*a);
}
static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define _cleanup_nlsock_ __attribute__((cleanup(nlsockp)))
#define _cleanup_link_   __attribute__((cleanup(linkp)))
#define _cleanup_addr_   __attribute__((cleanup(addrp)))
#define _cleanup_rtaddr_ __attribute__((cleanup(rtaddrp)))
#define _cleanup_closedir_ __attribute__((cleanup(closedirp)))

void sf_netplumb_names(uint32_t vxid, char vxlan[16], char bridge[16], char veth_o[16],
                       char veth_i[16], char egr_o[16], char egr_i[16]) {
        unsigned v = vxid & 0xffffffu; /* 6 hex digits keep every name within IFNAMSIZ */

        if (vxlan)
                snprintf(vxlan, 16, "vxlan-%06x", v);
        if (bridge)
                snprintf(bridge, 16, "br-vxlan-%06x", v);
        if (veth_o)
                snprintf(veth_o, 16, "veth-%06x-o", v);
        if (veth_i)
                snprintf(veth_i, 16, "veth-%06x-i", v);
        if (egr_o)
                snprintf(egr_o, 16, "egr-%06x-o", v);
        if (egr_i)
                snprintf(egr_i, 16, "egr-%06x-i", v);
}

static void names_fill(const sf_netplumb_t *n, names_t *nm) {
        sf_netplumb_names(n->vxid, nm->vxlan, nm->bridge, nm->veth_o, nm->veth_i, nm->egr_o,
                          nm->egr_i);
        snprintf(nm->egr_br, sizeof(nm->egr_br), "%s",
                 n->egress_bridge[0] ? n->egress_bridge : SF_NETPLUMB_EGRESS_BRIDGE);
}

/* ---- validation: everything below lands in argv, config files or rm -rf ---------- */

static bool ip4_parse(const char *s, uint32_t *ret) {
        struct in_addr a;

        if (!s || inet_pton(AF_INET, s, &a) != 1)
                return false;
        if (ret)
                *ret = ntohl(a.s_addr);
        return true;
}

static void ip4_format(uint32_t v, char out[16]) {
        struct in_addr a = {.s_addr = htonl(v)};

        inet_ntop(AF_INET, &a, out, 16);
}

static uint32_t prefix_mask(int prefix) {
        return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static bool ifname_valid(const char *s) {
        size_t len = strnlen(s, IFNAMSIZ);

        if (len == 0 || len >= IFNAMSIZ)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
                        return false;
        return true;
}

/* Paths go into a dnsmasq config file and into rm -rf: keep them boring. */
static bool path_chars_valid(const char *s) {
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("/._-", *p))
                        return false;
        return true;
}

/* Enough to name things and to destroy safely. */
static int validate_min(const sf_netplumb_t *n) {
        size_t dlen, ulen;

        if (!n || !sf_uuid_parse(n->uuid, NULL) || strlen(n->uuid) != 36)
                return -EINVAL;
        if (n->vxid < 1 || n->vxid > 0xffffff)
                return -EINVAL;
        /* dhcp_dir is removed recursively by destroy: insist on .../<uuid>. */
        dlen = strnlen(n->dhcp_dir, sizeof(n->dhcp_dir));
        ulen = strlen(n->uuid);
        if (dlen >= sizeof(n->dhcp_dir) || n->dhcp_dir[0] != '/' || dlen < ulen + 2 ||
            n->dhcp_dir[dlen - ulen - 1] != '/' || strcmp(n->dhcp_dir + dlen - ulen, n->uuid) ||
            strstr(n->dhcp_dir, "/../") || !path_chars_valid(n->dhcp_dir))
                return -EINVAL;
        if (n->egress_bridge[0] && !ifname_valid(n->egress_bridge))
                return -EINVAL;
        return 0;
}

typedef struct netinfo {
        uint32_t network, router;
        char netmask[16], dhcp_start[16];
} netinfo_t;

static int validate(const sf_netplumb_t *n, netinfo_t *ret) {
        char block[32], *slash, *end;
        uint32_t addr, mask;
        long prefix;
        int r;

        r = validate_min(n);
        if (r < 0)
                return r;
        if (n->prefix < 1 || n->prefix > 30 || n->mtu < 68 || n->mtu > 65535)
                return -EINVAL;
        snprintf(block, sizeof(block), "%s", n->netblock);
        slash = strchr(block, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;
        errno = 0;
        prefix = strtol(slash + 1, &end, 10);
        if (errno || *end || prefix != n->prefix || !ip4_parse(block, &addr))
                return -EINVAL;
        mask = prefix_mask(n->prefix);
        ret->network = addr & mask;
        if (!ip4_parse(n->router, &ret->router) || (ret->router & mask) != ret->network)
                return -EINVAL;
        ip4_format(mask, ret->netmask);
        /* Static-only range: the start address only names the subnet (api.md: index 2). */
        ip4_format(ret->network + 2, ret->dhcp_start);
        if (!ifname_valid(n->mesh_dev) || !ip4_parse(n->mesh_ip, NULL))
                return -EINVAL;
        for (const char *p = n->zone; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr(".-", *p))
                        return -EINVAL;
        if (n->provide_nat) {
                if (!ip4_parse(n->floating_gateway, NULL) || !ip4_parse(n->egress_gateway, NULL) ||
                    n->egress_prefix < 1 || n->egress_prefix > 30)
                        return -EINVAL;
                if (n->dns_server[0] && !ip4_parse(n->dns_server, NULL))
                        return -EINVAL;
        }
        return 0;
}

/* ---- small helpers -------------------------------------------------------------- */

static int nlerr(int e) {
        switch (e < 0 ? -e : e) {
        case 0: return 0;
        case NLE_EXIST: return -EEXIST;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV: return -ENODEV;
        case NLE_PERM: return -EPERM;
        case NLE_NOMEM: return -ENOMEM;
        case NLE_INVAL:
        case NLE_RANGE: return -EINVAL;
        case NLE_OPNOTSUPP: return -EOPNOTSUPP;
        case NLE_BUSY: return -EBUSY;
        case NLE_AGAIN: return -EAGAIN;
        default: return -EIO;
        }
}

static int run(char *const argv[], int *ret_status) {
        _cleanup_free_ char *out = NULL;
        int status = 0, r;

        r = sf_exec(argv, &out, &status);
        if (ret_status)
                *ret_status = status;
        if (r < 0 && !ret_status) {
                char cmd[512] = "";
                size_t len = 0;
                for (size_t i = 0; argv[i] && len < sizeof(cmd) - 1; i++)
                        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%s%s",
                                                i ? " " : "", argv[i]);
                log_warn("netplumb: `%s` failed (status %d): %s", cmd, status, out ? out : "");
        }
        return r;
}

static int file_write_str(const char *path, const char *s) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (write(fd, s, strlen(s)) < 0)
                return -errno;
        return 0;
}

/* Root-ns links are pure layer 2: no link-local addresses, no RA/DAD noise. */
static void disable_ipv6(const char *ifname) {
        char path[128];

        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
        (void)file_write_str(path, "1"); /* ENOENT: kernel without IPv6 */
}

static void sleep_ms(long ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

/* ---- network namespace ---------------------------------------------------------- */

/* True if /run/netns/<uuid> is a mounted namespace (not a leftover of a crashed `ip netns add`). */
static bool netns_present(const char *uuid) {
        char path[128];
        struct statfs sfs;

        snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", uuid);
        return statfs(path, &sfs) == 0 && sfs.f_type == NSFS_MAGIC;
}

static int netns_ensure(const char *uuid, int *ret_fd) {
        char path[128];
        int fd;

        snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", uuid);
        if (!netns_present(uuid)) {
                if (access(path, F_OK) == 0) {
                        /* `ip netns add` died between creating the file and bind-mounting. */
                        char *del[] = {"ip", "netns", "del", (char *)uuid, NULL};
                        (void)run(del, NULL);
                        unlink(path);
                }
                char *add[] = {"ip", "netns", "add", (char *)uuid, NULL};
                int r = run(add, NULL);
                if (r < 0 && !netns_present(uuid))
                        return r;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

/* ---- root-namespace links via libnl ---------------------------------------------- */

static int nl_open(struct nl_sock **ret) {
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return nlerr(r);
        }
        *ret = sk;
        return 0;
}

/* 0 and *ret when present, -ENODEV when absent. */
static int link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret) {
        struct rtnl_link *l = NULL;
        int r = rtnl_link_get_kernel(sk, 0, name, &l);

        if (r < 0)
                return nlerr(r);
        *ret = l;
        return 0;
}

static bool link_is(struct rtnl_link *l, const char *type) {
        const char *t = rtnl_link_get_type(l);

        return t && strcmp(t, type) == 0;
}

/* Delete by name; absent is success. */
static int link_del(struct nl_sock *sk, const char *name) {
        _cleanup_link_ struct rtnl_link *l = rtnl_link_alloc();
        int r;

        if (!l)
                return -ENOMEM;
        rtnl_link_set_name(l, name);
        r = nlerr(rtnl_link_delete(sk, l));
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                log_warn("netplumb: delete link %s: %s", name, strerror(-r));
        return r;
}

/* Bring an existing link to master/mtu (0: leave) and up, in one request if anything differs. */
static int link_fix(struct nl_sock *sk, struct rtnl_link *l, int master, int mtu) {
        _cleanup_link_ struct rtnl_link *chg = rtnl_link_alloc();
        bool dirty = false;
        int r;

        if (!chg)
                return -ENOMEM;
        if (master > 0 && rtnl_link_get_master(l) != master) {
                rtnl_link_set_master(chg, master);
                dirty = true;
        }
        if (mtu > 0 && (int)rtnl_link_get_mtu(l) != mtu) {
                rtnl_link_set_mtu(chg, (unsigned)mtu);
                dirty = true;
        }
        if (!(rtnl_link_get_flags(l) & IFF_UP)) {
                rtnl_link_set_flags(chg, IFF_UP);
                dirty = true;
        }
        if (!dirty)
                return 0;
        r = nlerr(rtnl_link_change(sk, l, chg, 0));
        if (r < 0)
                log_warn("netplumb: change link %s: %s", rtnl_link_get_name(l), strerror(-r));
        return r;
}

static int bridge_ensure(struct nl_sock *sk, const char *name, int mtu, int *ret_ifindex) {
        _cleanup_link_ struct rtnl_link *l = NULL;
        char path[128];
        int r;

        r = link_get(sk, name, &l);
        if (r == 0 && !link_is(l, "bridge")) {
                log_warn("netplumb: %s exists but is not a bridge: replacing it", name);
                rtnl_link_put(l);
                l = NULL;
                r = link_del(sk, name);
                if (r < 0)
                        return r;
                r = -ENODEV;
        }
        if (r == -ENODEV) {
                _cleanup_link_ struct rtnl_link *nl = rtnl_link_bridge_alloc();
                if (!nl)
                        return -ENOMEM;
                rtnl_link_set_name(nl, name);
                if (mtu > 0)
                        rtnl_link_set_mtu(nl, (unsigned)mtu);
                r = nlerr(rtnl_link_add(sk, nl, NLM_F_CREATE | NLM_F_EXCL));
                if (r < 0 && r != -EEXIST) {
                        log_warn("netplumb: add bridge %s: %s", name, strerror(-r));
                        return r;
                }
                r = link_get(sk, name, &l);
        }
        if (r < 0)
                return r;
        disable_ipv6(name);
        /* libnl 3.7 has no setters for these bridge options; sysfs is the plain interface. */
        snprintf(path, sizeof(path), "/sys/class/net/%s/bridge/stp_state", name);
        (void)file_write_str(path, "0");
        snprintf(path, sizeof(path), "/sys/class/net/%s/bridge/forward_delay", name);
        (void)file_write_str(path, "0");
        r = link_fix(sk, l, 0, mtu);
        if (r < 0)
                return r;
        *ret_ifindex = rtnl_link_get_ifindex(l);
        return 0;
}

static bool vxlan_matches(struct rtnl_link *l, uint32_t vxid, int mesh_ifindex,
                          struct nl_addr *local) {
        _cleanup_addr_ struct nl_addr *cur = NULL;
        uint32_t id = 0, link = 0, port = 0;

        if (!link_is(l, "vxlan") || rtnl_link_vxlan_get_id(l, &id) < 0 || id != vxid)
                return false;
        if (rtnl_link_vxlan_get_link(l, &link) < 0 || (int)link != mesh_ifindex)
                return false;
        if (rtnl_link_vxlan_get_port(l, &port) < 0 || port != VXLAN_PORT)
                return false;
        if (rtnl_link_vxlan_get_learning(l) != 0)
                return false;
        if (rtnl_link_vxlan_get_local(l, &cur) < 0 || nl_addr_cmp(cur, local) != 0)
                return false;
        return true;
}

static int vxlan_ensure(struct nl_sock *sk, const sf_netplumb_t *n, const names_t *nm,
                        int br_ifindex) {
        _cleanup_link_ struct rtnl_link *l = NULL;
        _cleanup_addr_ struct nl_addr *local = NULL;
        int mesh_ifindex, r;

        mesh_ifindex = (int)if_nametoindex(n->mesh_dev);
        if (mesh_ifindex == 0) {
                log_warn("netplumb: mesh device %s: %m", n->mesh_dev);
                return -ENODEV;
        }
        r = nlerr(nl_addr_parse(n->mesh_ip, AF_INET, &local));
        if (r < 0)
                return r;
        nl_addr_set_prefixlen(local, 32);
        r = link_get(sk, nm->vxlan, &l);
        if (r == 0 && !vxlan_matches(l, n->vxid, mesh_ifindex, local)) {
                /* VXLAN parameters cannot be changed in place. */
                log_warn("netplumb: %s has the wrong parameters: recreating it", nm->vxlan);
                rtnl_link_put(l);
                l = NULL;
                r = link_del(sk, nm->vxlan);
                if (r < 0)
                        return r;
                r = -ENODEV;
        }
        if (r == -ENODEV) {
                _cleanup_link_ struct rtnl_link *nl = rtnl_link_vxlan_alloc();
                if (!nl)
                        return -ENOMEM;
                rtnl_link_set_name(nl, nm->vxlan);
                rtnl_link_set_mtu(nl, (unsigned)n->mtu);
                rtnl_link_vxlan_set_id(nl, n->vxid);
                rtnl_link_vxlan_set_link(nl, (uint32_t)mesh_ifindex);
                rtnl_link_vxlan_set_local(nl, local);
                rtnl_link_vxlan_set_port(nl, VXLAN_PORT);
                rtnl_link_vxlan_set_learning(nl, 0);
                r = nlerr(rtnl_link_add(sk, nl, NLM_F_CREATE | NLM_F_EXCL));
                if (r < 0 && r != -EEXIST) {
                        log_warn("netplumb: add vxlan %s: %s", nm->vxlan, strerror(-r));
                        return r;
                }
                r = link_get(sk, nm->vxlan, &l);
        }
        if (r < 0)
                return r;
        disable_ipv6(nm->vxlan);
        return link_fix(sk, l, br_ifindex, n->mtu);
}

/* Inner veth MACs derive from the vxid: a re-created link keeps its MAC, so neighbours'
 * ARP caches (guests, the egress bridge) stay right across a repair.  02: = locally
 * administered; 73:66 router side, 73:67 egress side. */
static void inner_mac(uint32_t vxid, bool egress, char out[18]) {
        snprintf(out, 18, "02:73:%02x:%02x:%02x:%02x", egress ? 0x67 : 0x66,
                 (vxid >> 16) & 0xff, (vxid >> 8) & 0xff, vxid & 0xff);
}

/* A veth pair `out` (here, enslaved to master) / `in` (inside netns, MAC in_mac), both up.
 * Anything half-made or misplaced is deleted and made again. */
static int veth_ensure(struct nl_sock *sk, const char *netns, int ns_fd, const char *out,
                       const char *in, const char *in_mac, int master, int mtu) {
        char mtu_s[16];
        int r;

        snprintf(mtu_s, sizeof(mtu_s), "%d", mtu > 0 ? mtu : 1500);
        /* The inner end in our namespace means an earlier run never moved it. */
        if (if_nametoindex(in) > 0) {
                r = link_del(sk, in);
                if (r < 0)
                        return r;
        }
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_link_ struct rtnl_link *l = NULL;
                bool created = false;

                r = link_get(sk, out, &l);
                if (r == 0 && !link_is(l, "veth")) {
                        rtnl_link_put(l);
                        l = NULL;
                        r = link_del(sk, out);
                        if (r < 0)
                                return r;
                        r = -ENODEV;
                }
                if (r == -ENODEV) {
                        /* Create the peer directly inside the netns: no intermediate state. */
                        _cleanup_link_ struct rtnl_link *v = rtnl_link_veth_alloc();
                        struct rtnl_link *peer;
                        if (!v)
                                return -ENOMEM;
                        peer = rtnl_link_veth_get_peer(v);
                        rtnl_link_set_name(v, out);
                        rtnl_link_set_name(peer, in);
                        rtnl_link_set_ns_fd(peer, ns_fd);
                        if (mtu > 0) {
                                rtnl_link_set_mtu(v, (unsigned)mtu);
                                rtnl_link_set_mtu(peer, (unsigned)mtu);
                        }
                        rtnl_link_put(peer); /* get_peer took a reference */
                        r = nlerr(rtnl_link_add(sk, v, NLM_F_CREATE | NLM_F_EXCL));
                        if (r < 0) {
                                log_warn("netplumb: add veth %s/%s: %s", out, in, strerror(-r));
                                return r;
                        }
                        created = true;
                        r = link_get(sk, out, &l);
                }
                if (r < 0)
                        return r;
                disable_ipv6(out);
                r = link_fix(sk, l, master, mtu);
                if (r < 0)
                        return r;
                /* Fails when the peer is not in this netns (e.g. stranded in an old one). */
                char *up[] = {"ip", "-n", (char *)netns, "link", "set", "dev", (char *)in,
                              "address", (char *)in_mac, "mtu", mtu_s, "up", NULL};
                int status = 0;
                r = run(up, created ? NULL : &status);
                if (r == 0 || created)
                        return r;
                log_warn("netplumb: %s has no peer %s in netns %s: recreating", out, in, netns);
                r = link_del(sk, out);
                if (r < 0)
                        return r;
        }
        return -EIO;
}

/* ---- host firewall: guests never reach the host itself --------------------------- */

/* Frames from a guest bridge or the egress bridge that are addressed to the host itself
 * (to any of its addresses: the host answers ARP for all of them on every link) reach the
 * root namespace's INPUT chain; everything but replies to connections the host opened is
 * dropped there.  Guest egress is routed in the network's netns and bridged through the
 * egress bridge (FORWARD), DHCP is served in the netns: neither passes INPUT. */
#define GUEST_BRIDGES "br-vxlan-+" /* iptables wildcard for every sf_netplumb_names bridge */
#define FW_COMMENT    "sf: guests may not reach the host"

/* iptables <op> INPUT for the rule on in_if; *ret_status gets iptables' exit status. */
static int fw_rule(const char *op, const char *in_if, int *ret_status) {
        char *argv[] = {"iptables", "-w", (char *)op, "INPUT", "-i", (char *)in_if, "-m",
                        "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED", "-m", "comment",
                        "--comment", FW_COMMENT, "-j", "DROP", NULL};
        return run(argv, ret_status);
}

/* *ret = the rule is in place.  iptables -C exits 1 for "no such rule", 2+ on errors. */
static int fw_present(const char *in_if, bool *ret) {
        int status = 0, r;

        r = fw_rule("-C", in_if, &status);
        if (r < 0 && status != 1) {
                log_warn("netplumb: iptables -C INPUT -i %s failed with status %d", in_if, status);
                return r;
        }
        *ret = r == 0;
        return 0;
}

/* Inserted first in INPUT (before any ACCEPT), exactly once however often we run. */
static int fw_ensure(const char *in_if) {
        bool present = false;
        int r;

        r = fw_present(in_if, &present);
        if (r < 0 || present)
                return r;
        return fw_rule("-I", in_if, NULL);
}

/* Delete every copy of the rule; absent is success. */
static int fw_remove(const char *in_if) {
        int status = 0, r;

        for (int i = 0; i < 16; i++) {
                r = fw_rule("-D", in_if, &status);
                if (r < 0)
                        return status == 1 ? 0 : r;
        }
        return 0;
}

/* *ret = some link in this namespace is a guest bridge (any network's, not only ours). */
static int guest_bridges_left(bool *ret) {
        _cleanup_closedir_ DIR *d = opendir("/sys/class/net");
        struct dirent *de;

        if (!d)
                return -errno;
        *ret = false;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "br-vxlan-", 9) == 0)
                        *ret = true;
        return 0;
}

/* *ret = the egress bridge still has ports (other networks' egress links) or it is unknown. */
static int egress_ports_left(const char *egr_br, bool *ret) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        char path[64];

        snprintf(path, sizeof(path), "/sys/class/net/%s/brif", egr_br);
        d = opendir(path);
        if (!d) {
                if (errno != ENOENT)
                        return -errno;
                *ret = false; /* no bridge, no ports */
                return 0;
        }
        *ret = false;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        *ret = true;
        return 0;
}

/* After a destroy: the rules go with the last network that needs them.  When in doubt
 * (sysfs unreadable) they stay: a drop rule without a bridge harms nobody. */
static int fw_release(const names_t *nm) {
        bool left = true;
        int r, first = 0;

        r = guest_bridges_left(&left);
        if (r == 0 && !left)
                r = fw_remove(GUEST_BRIDGES);
        first = first ?: r;
        left = true;
        r = egress_ports_left(nm->egr_br, &left);
        if (r == 0 && !left)
                r = fw_remove(nm->egr_br);
        first = first ?: r;
        return first;
}

/* ---- NAT egress ----------------------------------------------------------------- */

static int addr_ensure(struct nl_sock *sk, int ifindex, const char *ip, int prefix) {
        _cleanup_rtaddr_ struct rtnl_addr *a = rtnl_addr_alloc();
        _cleanup_addr_ struct nl_addr *local = NULL;
        int r;

        if (!a)
                return -ENOMEM;
        r = nlerr(nl_addr_parse(ip, AF_INET, &local));
        if (r < 0)
                return r;
        nl_addr_set_prefixlen(local, prefix);
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_local(a, local);
        r = nlerr(rtnl_addr_add(sk, a, 0));
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                log_warn("netplumb: add address %s/%d: %s", ip, prefix, strerror(-r));
        return r;
}

static int nat_ensure(struct nl_sock *sk, const sf_netplumb_t *n, const names_t *nm, int ns_fd) {
        char floating[32], mac[18];
        int egr_br, r, status = 0;

        r = bridge_ensure(sk, nm->egr_br, 0, &egr_br);
        if (r < 0)
                return r;
        /* Before the host has an address there. */
        r = fw_ensure(nm->egr_br);
        if (r < 0)
                return r;
        r = addr_ensure(sk, egr_br, n->egress_gateway, n->egress_prefix);
        if (r < 0)
                return r;
        inner_mac(n->vxid, true, mac);
        r = veth_ensure(sk, n->uuid, ns_fd, nm->egr_o, nm->egr_i, mac, egr_br, 0);
        if (r < 0)
                return r;

        snprintf(floating, sizeof(floating), "%s/%d", n->floating_gateway, n->egress_prefix);
        char *addr[] = {"ip", "-n", (char *)n->uuid, "addr", "replace", floating, "dev",
                        (char *)nm->egr_i, NULL};
        r = run(addr, NULL);
        if (r < 0)
                return r;
        char *route[] = {"ip", "-n", (char *)n->uuid, "route", "replace", "default", "via",
                         (char *)n->egress_gateway, "dev", (char *)nm->egr_i, NULL};
        r = run(route, NULL);
        if (r < 0)
                return r;
        char *fwd[] = {"sysctl", "-q", "-w", "net.ipv4.ip_forward=1", NULL};
        r = sf_exec_netns(n->uuid, fwd, NULL, NULL);
        if (r < 0) {
                log_warn("netplumb: ip_forward in %s: %s", n->uuid, strerror(-r));
                return r;
        }
        /* -C first: the rule must exist exactly once however often we run. */
        char *check[] = {"ip", "netns", "exec", (char *)n->uuid, "iptables", "-w", "-t", "nat",
                         "-C", "POSTROUTING", "-s", (char *)n->netblock, "-o", (char *)nm->egr_i,
                         "-j", "MASQUERADE", NULL};
        r = run(check, &status);
        if (r == 0)
                return 0;
        if (status != 1) {
                log_warn("netplumb: iptables -C in %s failed with status %d", n->uuid, status);
                return r;
        }
        check[8] = "-A";
        return run(check, NULL);
}

/* ---- dnsmasq ---------------------------------------------------------------------- */

static void dhcp_path(const sf_netplumb_t *n, const char *leaf, char out[DPATH_MAX]) {
        snprintf(out, DPATH_MAX, "%s/%s", n->dhcp_dir, leaf);
}

/* True if pid is a live dnsmasq; with conf, only one started with --conf-file=<conf>. */
static bool dnsmasq_is(pid_t pid, const char *conf) {
        _cleanup_free_ char *cmd = NULL;
        char path[64], want[DPATH_MAX + 16];
        const char *base;
        size_t len = 0;

        if (pid <= 1)
                return false;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        if (sf_file_read(path, &cmd, &len) < 0 || len == 0) /* zombies have no cmdline */
                return false;
        base = strrchr(cmd, '/');
        base = base ? base + 1 : cmd;
        if (strcmp(base, "dnsmasq") != 0)
                return false;
        if (!conf)
                return true;
        snprintf(want, sizeof(want), "--conf-file=%s", conf);
        for (size_t off = strlen(cmd) + 1; off < len; off += strlen(cmd + off) + 1)
                if (strcmp(cmd + off, want) == 0)
                        return true;
        return false;
}

/* The pid from our pid file if it is our live dnsmasq, else 0. */
static pid_t dnsmasq_pid(const sf_netplumb_t *n) {
        _cleanup_free_ char *buf = NULL;
        char pidfile[DPATH_MAX], conf[DPATH_MAX];
        long pid;

        dhcp_path(n, "pid", pidfile);
        dhcp_path(n, "config", conf);
        if (sf_file_read(pidfile, &buf, NULL) < 0)
                return 0;
        pid = strtol(buf, NULL, 10);
        if (pid <= 1 || pid > INT_MAX || !dnsmasq_is((pid_t)pid, conf))
                return 0;
        return (pid_t)pid;
}

static int stop_pid(pid_t pid) {
        if (kill(pid, SIGTERM) < 0)
                return errno == ESRCH ? 0 : -errno;
        for (int i = 0; i < 300; i++) {
                if (!dnsmasq_is(pid, NULL))
                        return 0;
                if (i == 200) /* 2 s of SIGTERM is plenty */
                        kill(pid, SIGKILL);
                sleep_ms(10);
        }
        log_warn("netplumb: dnsmasq %d does not die", (int)pid);
        return -ETIMEDOUT;
}

/* Every dnsmasq inside the netns (a lost pid file must not leave one holding the netns). */
static int stop_strays(const char *uuid) {
        _cleanup_free_ char *out = NULL;
        char *save = NULL;
        int r = 0;

        if (!netns_present(uuid))
                return 0;
        char *pids[] = {"ip", "netns", "pids", (char *)uuid, NULL};
        if (sf_exec(pids, &out, NULL) < 0 || !out)
                return 0;
        for (char *tok = strtok_r(out, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
                pid_t pid = (pid_t)strtol(tok, NULL, 10);
                if (dnsmasq_is(pid, NULL)) {
                        log_info("netplumb: stopping dnsmasq %d in netns %s", (int)pid, uuid);
                        int s = stop_pid(pid);
                        if (s < 0 && r == 0)
                                r = s;
                }
        }
        return r;
}

/* dnsmasq drops to user dnsmasq; it re-reads the hosts file on SIGHUP as that user, so
 * every directory above dhcp_dir must be searchable by others.  Otherwise stay root. */
static const char *dnsmasq_user(const char *dir) {
        char path[PATH_MAX];
        struct stat st;
        char *slash;

        if (!getpwnam("dnsmasq"))
                return "root";
        snprintf(path, sizeof(path), "%s", dir);
        while ((slash = strrchr(path, '/')) && slash != path) {
                *slash = 0;
                if (stat(path, &st) < 0 || !(st.st_mode & S_IXOTH)) {
                        log_info("netplumb: %s is not searchable by dnsmasq: running it as root",
                                 path);
                        return "root";
                }
        }
        return "dnsmasq";
}

static char *dnsmasq_config(const sf_netplumb_t *n, const names_t *nm, const netinfo_t *ni) {
        char dns[64] = "", domain[96] = "";

        if (n->provide_nat && n->dns_server[0])
                snprintf(dns, sizeof(dns), "dhcp-option=option:dns-server,%s\n", n->dns_server);
        if (n->zone[0])
                snprintf(domain, sizeof(domain), "dhcp-option=option:domain-name,%s\n", n->zone);
        return sf_strdupf("# sf-network: network %s\n"
                          "port=0\n"
                          "no-resolv\n"
                          "no-hosts\n"
                          "interface=%s\n"
                          "except-interface=lo\n"
                          "bind-interfaces\n"
                          "dhcp-authoritative\n"
                          "dhcp-range=%s,static,%s,1h\n"
                          "dhcp-hostsfile=%s/hosts\n"
                          "dhcp-leasefile=%s/leases\n"
                          "pid-file=%s/pid\n"
                          "log-facility=%s/dnsmasq.log\n"
                          "log-dhcp\n"
                          "user=%s\n"
                          "dhcp-option=option:router,%s\n"
                          "dhcp-option=option:netmask,%s\n"
                          "dhcp-option=option:mtu,%d\n"
                          "%s%s",
                          n->uuid, nm->veth_i, ni->dhcp_start, ni->netmask, n->dhcp_dir,
                          n->dhcp_dir, n->dhcp_dir, n->dhcp_dir, dnsmasq_user(n->dhcp_dir),
                          n->router, ni->netmask, n->mtu, domain, dns);
}

/* Config written, dnsmasq running with it.  *ret_started: a fresh dnsmasq (no HUP needed). */
static int dhcp_ensure(const sf_netplumb_t *n, const names_t *nm, const netinfo_t *ni,
                       bool *ret_started) {
        _cleanup_free_ char *cfg = NULL, *old = NULL, *out = NULL;
        char conf[DPATH_MAX], hosts[DPATH_MAX], pidfile[DPATH_MAX], conf_arg[DPATH_MAX + 16];
        bool changed;
        pid_t pid;
        int r;

        r = sf_mkdir_p(n->dhcp_dir, 0755);
        if (r < 0)
                return r;
        if (chmod(n->dhcp_dir, 0755) < 0)
                return -errno;
        dhcp_path(n, "config", conf);
        dhcp_path(n, "hosts", hosts);
        dhcp_path(n, "pid", pidfile);
        if (access(hosts, F_OK) < 0) {
                r = sf_file_write_atomic(hosts, "", 0, 0644);
                if (r < 0)
                        return r;
        }
        cfg = dnsmasq_config(n, nm, ni);
        if (!cfg)
                return -ENOMEM;
        changed = sf_file_read(conf, &old, NULL) < 0 || strcmp(old, cfg) != 0;
        if (changed) {
                r = sf_file_write_atomic(conf, cfg, strlen(cfg), 0644);
                if (r < 0)
                        return r;
        }
        pid = dnsmasq_pid(n);
        if (pid > 0 && !changed) {
                *ret_started = false;
                return 0;
        }
        if (pid > 0) {
                log_info("netplumb: dnsmasq config of %s changed: restarting", n->uuid);
                (void)stop_pid(pid);
        }
        r = stop_strays(n->uuid);
        if (r < 0)
                return r;
        unlink(pidfile);
        /* dnsmasq daemonizes: it outlives us, and its parent exits once it is serving. */
        snprintf(conf_arg, sizeof(conf_arg), "--conf-file=%s", conf);
        char *argv[] = {"dnsmasq", conf_arg, NULL};
        r = sf_exec_netns(n->uuid, argv, &out, NULL);
        if (r < 0) {
                log_warn("netplumb: dnsmasq for %s: %s", n->uuid, out ? out : strerror(-r));
                return r;
        }
        for (int i = 0; i < 100 && (pid = dnsmasq_pid(n)) == 0; i++)
                sleep_ms(10);
        if (pid == 0) {
                log_warn("netplumb: dnsmasq for %s started but wrote no usable pid file", n->uuid);
                return -EIO;
        }
        log_info("netplumb: dnsmasq %d serving network %s", (int)pid, n->uuid);
        *ret_started = true;
        return 0;
}

static int dhcp_stop(const sf_netplumb_t *n) {
        char pidfile[DPATH_MAX];
        pid_t pid = dnsmasq_pid(n);
        int r = 0;

        if (pid > 0)
                r = stop_pid(pid);
        dhcp_path(n, "pid", pidfile);
        if (r == 0)
                unlink(pidfile);
        return r;
}

/* ---- public --------------------------------------------------------------------- */

int sf_netplumb_ensure(const sf_netplumb_t *n) {
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        _cleanup_close_ int ns_fd = -1;
        char router[32], mac[18];
        netinfo_t ni;
        names_t nm;
        int br, r;

        r = validate(n, &ni);
        if (r < 0) {
                log_warn("netplumb: invalid network description");
                return r;
        }
        names_fill(n, &nm);
        r = netns_ensure(n->uuid, &ns_fd);
        if (r < 0)
                goto cleanup;
        r = nl_open(&sk);
        if (r < 0)
                goto cleanup;

        /* Hypervisor side: bridge + VXLAN, closed to the host before a guest can join. */
        r = bridge_ensure(sk, nm.bridge, n->mtu, &br);
        if (r < 0)
                goto cleanup;
        r = fw_ensure(GUEST_BRIDGES);
        if (r < 0)
                goto cleanup;
        r = vxlan_ensure(sk, n, &nm, br);
        if (r < 0)
                goto cleanup;

        /* Network-node side: router address inside the netns. */
        inner_mac(n->vxid, false, mac);
        r = veth_ensure(sk, n->uuid, ns_fd, nm.veth_o, nm.veth_i, mac, br, n->mtu);
        if (r < 0)
                goto cleanup;
        char *lo[] = {"ip", "-n", (char *)n->uuid, "link", "set", "dev", "lo", "up", NULL};
        r = run(lo, NULL);
        if (r < 0)
                goto cleanup;
        snprintf(router, sizeof(router), "%s/%d", n->router, n->prefix);
        char *addr[] = {"ip", "-n", (char *)n->uuid, "addr", "replace", router, "dev",
                        nm.veth_i, NULL};
        r = run(addr, NULL);
        if (r < 0)
                goto cleanup;

        if (n->provide_nat)
                r = nat_ensure(sk, n, &nm, ns_fd);
        else
                r = link_del(sk, nm.egr_o); /* NAT switched off: its link goes */
        if (r < 0)
                goto cleanup;

        if (n->provide_dhcp) {
                bool started;
                r = dhcp_ensure(n, &nm, &ni, &started);
        } else {
                r = dhcp_stop(n);
        }
cleanup:
        if (r < 0)
                log_warn("netplumb: ensure network %s (vxid %u): %s", n->uuid, n->vxid,
                         strerror(-r));
        return r;
}

static bool mac_valid(const char *s) {
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 17; i++)
                if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
                        return false;
        return true;
}

int sf_netplumb_hosts(const sf_netplumb_t *n, const sf_dhcp_host_t *hosts, size_t nhosts) {
        _cleanup_free_ char *buf = NULL;
        char path[DPATH_MAX];
        bool started = false;
        size_t len = 0;
        netinfo_t ni;
        names_t nm;
        pid_t pid;
        int r;

        r = validate(n, &ni);
        if (r < 0)
                return r;
        if (!n->provide_dhcp)
                return 0;
        if ((nhosts && !hosts) || nhosts > 1000000)
                return -EINVAL;
        /* A line is at most 17 + 1 + 15 + 1 + 63 + 1 bytes. */
        buf = malloc(nhosts * 100 + 1);
        if (!buf)
                return -ENOMEM;
        buf[0] = 0;
        for (size_t i = 0; i < nhosts; i++) {
                const sf_dhcp_host_t *h = &hosts[i];
                if (!mac_valid(h->mac) || !ip4_parse(h->ip, NULL) ||
                    (h->hostname[0] && !sf_name_valid(h->hostname)))
                        return -EINVAL;
                len += (size_t)sprintf(buf + len, "%s,%s%s%s\n", h->mac, h->ip,
                                       h->hostname[0] ? "," : "", h->hostname);
        }
        r = sf_mkdir_p(n->dhcp_dir, 0755);
        if (r < 0)
                return r;
        dhcp_path(n, "hosts", path);
        r = sf_file_write_atomic(path, buf, len, 0644);
        if (r < 0)
                return r;
        names_fill(n, &nm);
        r = dhcp_ensure(n, &nm, &ni, &started);
        if (r < 0 || started)
                return r;
        pid = dnsmasq_pid(n);
        if (pid > 0 && kill(pid, SIGHUP) < 0)
                return -errno;
        return 0;
}

int sf_netplumb_destroy(const sf_netplumb_t *n) {
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        char path[128];
        names_t nm;
        int r, first = 0;

        r = validate_min(n);
        if (r < 0)
                return r;
        names_fill(n, &nm);
        /* dnsmasq first: it pins the netns (and with it veth-i, and so veth-o). */
        r = dhcp_stop(n);
        first = first ?: r;
        r = stop_strays(n->uuid);
        first = first ?: r;

        r = nl_open(&sk);
        if (r < 0)
                return r;
        /* Deleting the outer ends takes the inner ones with them, synchronously. */
        const char *links[] = {nm.veth_o, nm.egr_o, nm.veth_i, nm.egr_i, nm.vxlan, nm.bridge};
        for (size_t i = 0; i < SF_ARRAY_SIZE(links); i++) {
                r = link_del(sk, links[i]);
                first = first ?: r;
        }
        /* The netns's iptables rules, route and sysctls go with it. */
        snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", n->uuid);
        if (access(path, F_OK) == 0) {
                char *del[] = {"ip", "netns", "del", (char *)n->uuid, NULL};
                r = run(del, NULL);
                if (r < 0 && access(path, F_OK) < 0)
                        r = 0;
                first = first ?: r;
        }
        r = sf_rm_rf(n->dhcp_dir);
        first = first ?: r;
        r = fw_release(&nm);
        first = first ?: r;
        if (first < 0)
                log_warn("netplumb: destroy network %s: %s", n->uuid, strerror(-first));
        return first;
}

int sf_netplumb_links_exist(const sf_netplumb_t *n, bool *ret) {
        names_t nm;
        int r;

        r = validate_min(n);
        if (r < 0)
                return r;
        names_fill(n, &nm);
        *ret = netns_present(n->uuid) && if_nametoindex(nm.bridge) > 0 &&
               (!n->provide_dhcp || dnsmasq_pid(n) > 0);
        return 0;
}

int sf_netplumb_exists(const sf_netplumb_t *n, bool *ret) {
        names_t nm;
        int r;

        r = sf_netplumb_links_exist(n, ret);
        if (r < 0)
                return r;
        names_fill(n, &nm);
        /* A lost firewall rule is lost plumbing too: the reconciler re-runs ensure. */
        if (*ret)
                r = fw_present(GUEST_BRIDGES, ret);
        if (r == 0 && *ret && n->provide_nat)
                r = fw_present(nm.egr_br, ret);
        return r;
}
