/* IPv4 address management: CIDR math and per-network reservations in Redis
 * (hash sf:ipam:<network uuid>: address -> owner).  Network and broadcast addresses
 * and the router (index 1) are reserved when the network is created (api.md §7.3). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct sf_cidr {
        uint32_t net; /* host order, host bits zero */
        int prefix;
} sf_cidr_t;

/* "a.b.c.d/n".  -EINVAL for garbage, a missing prefix, host bits set, prefix > 29
 * (upstream: "network is below minimum size of /29") or prefix < 8 ("network is above
 * maximum size of /8"): *ret_error says which. */
int sf_cidr_parse(const char *s, sf_cidr_t *ret, const char **ret_error);
uint32_t sf_cidr_size(const sf_cidr_t *c);
/* Address at index i (0 = network address) as text. */
void sf_cidr_addr(const sf_cidr_t *c, uint32_t i, char out[16]);
void sf_cidr_netmask(const sf_cidr_t *c, char out[16]);
int sf_ip_parse(const char *s, uint32_t *ret);
bool sf_cidr_contains(const sf_cidr_t *c, uint32_t ip);
/* Do two blocks share any address? */
bool sf_cidr_overlaps(const sf_cidr_t *a, const sf_cidr_t *b);

/* Reserve: a specific address (-EADDRINUSE if taken by another owner, -ERANGE if outside
 * the usable range) or, with want NULL, a random free one (5 random tries, then a scan;
 * -ENOSPC when full).  Re-reserving for the same owner succeeds (idempotent): a random
 * reservation returns the address the owner already holds on this network. */
int sf_ipam_reserve(sf_store_t *s, const char *netuuid, const sf_cidr_t *c, const char *want,
                    const char *owner, char ret_ip[16]);
/* Release only if held by owner (so a late release cannot free a re-used address). */
int sf_ipam_release(sf_store_t *s, const char *netuuid, const char *ip, const char *owner);
/* Release whatever address owner holds on the network (none is fine). */
int sf_ipam_release_owner(sf_store_t *s, const char *netuuid, const char *owner);
/* Reserve network, broadcast and router addresses of a new network. */
int sf_ipam_init(sf_store_t *s, const char *netuuid, const sf_cidr_t *c);
int sf_ipam_drop(sf_store_t *s, const char *netuuid);
