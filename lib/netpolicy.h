/* Where this node may connect on a tenant's behalf (image downloads): a destination
 * address + port is classified against fixed deny ranges, the node's own service ports
 * and the floating range, with an operator allow list (SF_DOWNLOAD_ALLOW) that wins.
 *
 * Denied unless allowed: loopback (127/8, ::1), unspecified (0/8, ::), link-local
 * (169.254/16 with the metadata services, fe80::/10), multicast (224/4, ff00::/8),
 * broadcast and reserved (240/4), the floating range (SF_FLOATING_NETWORK).
 * Always denied unless an allow entry names that exact port: the node's Redis, NATS and
 * API ports on loopback or any address of this node, and the configured Redis/NATS
 * endpoints.  Private LAN ranges (10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed:
 * home labs serve images there.  IPv4-mapped IPv6 addresses are judged as IPv4. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"

typedef struct sf_netpolicy_rule {
        int family;             /* AF_INET or AF_INET6 */
        unsigned char addr[16]; /* network byte order; 4 bytes used for AF_INET */
        int prefix;             /* 0..32 or 0..128 */
        int port;               /* 0: any port */
} sf_netpolicy_rule_t;

#define SF_NETPOLICY_MAX_RULES 32

typedef struct sf_netpolicy {
        sf_netpolicy_rule_t allow[SF_NETPOLICY_MAX_RULES];
        size_t nallow;
        sf_netpolicy_rule_t deny[SF_NETPOLICY_MAX_RULES]; /* floating range, service endpoints */
        size_t ndeny;
        int service_ports[4]; /* denied on every address of this node */
        size_t nports;
} sf_netpolicy_t;

/* Parse one allow/deny entry: "10.0.0.0/8", "127.0.0.1:13080", "[::1]:80", "fd00::/8",
 * "[fe80::/10]:8080" (CIDR, optional :port; IPv6 with a port in brackets). */
int sf_netpolicy_rule_parse(const char *s, sf_netpolicy_rule_t *ret);

/* Build the policy from the configuration (SF_DOWNLOAD_ALLOW, SF_FLOATING_NETWORK,
 * the Redis/NATS/API ports).  -EINVAL (logged) for a malformed allow list. */
int sf_netpolicy_init(sf_netpolicy_t *p, const sf_config_t *cfg);

/* Append a comma-separated allow list.  -EINVAL on a bad entry, -E2BIG if too many. */
int sf_netpolicy_allow(sf_netpolicy_t *p, const char *list);

/* 0 if connecting to sa (AF_INET/AF_INET6, with its port) is allowed, else -EACCES with
 * the reason in why ("destination 127.0.0.1:6379 is not allowed (loopback)"). */
int sf_netpolicy_check(const sf_netpolicy_t *p, const struct sockaddr *sa, char *why, size_t whylen);

/* For a URL whose host is a literal address (also 127.1, 0x7f.1, [::1]): the same check
 * with the URL's port (default 80/443).  0 for a host name (judged at connect time) or an
 * allowed address; -EACCES with why for a denied one; -EINVAL for an unparseable URL. */
int sf_netpolicy_check_url_literal(const sf_netpolicy_t *p, const char *url, char *why, size_t whylen);

/* The API's check of a disk base URL: the policy from cfg, then the literal check.  0 or
 * -EACCES/-EINVAL with why set ("destination 169.254.169.254:80 is not allowed (link-local)"). */
int sf_netpolicy_check_base_url(const sf_config_t *cfg, const char *url, char *why, size_t whylen);
