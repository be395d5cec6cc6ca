/* Plumbing of one virtual network on one node (api.md §7.3): VXLAN + bridge in the
 * calling process's namespace ("root"), a network namespace named by the network uuid
 * holding the router address, optional NAT egress and dnsmasq DHCP.
 *
 * Every function is idempotent and safe to re-run after a crash at any point: it looks
 * at what exists, creates what is missing and replaces what is wrong.  Destroy succeeds
 * on any partial state (and on no state at all).  Needs CAP_NET_ADMIN / root. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_NETPLUMB_EGRESS_BRIDGE "egr-br-sf"

typedef struct sf_netplumb {
        char uuid[37];             /* network uuid: the netns name */
        uint32_t vxid;             /* 1..16777215; names use 6 hex digits */
        char netblock[32];         /* e.g. "10.250.42.0/24" */
        char router[16];           /* netblock index 1, e.g. "10.250.42.1" */
        int prefix;                /* 24 */
        bool provide_dhcp, provide_nat;
        char mesh_dev[32];         /* underlay device for the VXLAN ("lo" on a single node) */
        char mesh_ip[16];          /* local underlay address */
        int mtu;                   /* guest MTU, e.g. 1450 */
        char dhcp_dir[4096];       /* STORAGE/dhcp/<uuid>: must be absolute and end in /<uuid> */
        char zone[64];             /* DHCP domain */
        char dns_server[16];       /* offered only when provide_nat */
        /* NAT egress (only used when provide_nat): */
        char floating_gateway[16]; /* this network's address on the egress link */
        char egress_gateway[16];   /* address of the egress bridge, e.g. 192.168.20.1 */
        int egress_prefix;         /* e.g. 24 */
        char egress_bridge[16];    /* shared egress bridge; "" means SF_NETPLUMB_EGRESS_BRIDGE */
} sf_netplumb_t;

typedef struct sf_dhcp_host {
        char mac[18];
        char ip[16];
        char hostname[64];
} sf_dhcp_host_t;

/* Create or repair everything for the network (hypervisor side and network-node side),
 * including the root namespace's INPUT rules (iptables) that drop new connections from
 * guest bridges and from the egress bridge to the host itself. */
int sf_netplumb_ensure(const sf_netplumb_t *n);

/* Replace the DHCP hosts file atomically (lines "mac,ip,hostname") and SIGHUP dnsmasq,
 * starting it if it is not running.  No-op when !provide_dhcp. */
int sf_netplumb_hosts(const sf_netplumb_t *n, const sf_dhcp_host_t *hosts, size_t nhosts);

/* Stop dnsmasq, delete the links, the netns (and with it its iptables rules) and the
 * DHCP directory.  The shared egress bridge is left alone; the host INPUT rules go when
 * no guest bridge (resp. no port on the egress bridge) is left. */
int sf_netplumb_destroy(const sf_netplumb_t *n);

/* *ret = netns, bridge, dnsmasq (if DHCP) and the host INPUT rules all present. */
int sf_netplumb_exists(const sf_netplumb_t *n, bool *ret);

/* The same without the firewall rules (each check execs iptables): for the paths a
 * create waits on; the reconciler's sf_netplumb_exists repairs a lost rule. */
int sf_netplumb_links_exist(const sf_netplumb_t *n, bool *ret);

/* The link names for vxid (each buffer at least 16 bytes). */
void sf_netplumb_names(uint32_t vxid, char vxlan[16], char bridge[16], char veth_o[16],
                       char veth_i[16], char egr_o[16], char egr_i[16]);
