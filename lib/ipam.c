#include "ipam.h"
#include "keys.h"

#include "sflimits.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int sf_ip_parse(const char *s, uint32_t *ret) {
        struct in_addr a;

        if (!s || inet_pton(AF_INET, s, &a) != 1)
                return -EINVAL;
        *ret = ntohl(a.s_addr);
        return 0;
}

int sf_cidr_parse(const char *s, sf_cidr_t *ret, const char **ret_error) {
        char buf[64], *slash, *end;
        uint32_t ip, mask;
        long prefix;

        if (!s || strlen(s) >= sizeof(buf))
                goto bad;
        snprintf(buf, sizeof(buf), "%s", s);
        slash = strchr(buf, '/');
        if (!slash)
                goto bad;
        *slash = 0;
        prefix = strtol(slash + 1, &end, 10);
        if (*end || slash[1] == 0 || prefix < 0 || prefix > 32 || sf_ip_parse(buf, &ip) < 0)
                goto bad;
        mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
        if (ip & ~mask)
                goto bad;
        if (prefix > SF_MAX_NETBLOCK_PREFIX) {
                if (ret_error)
                        *ret_error = "network is below minimum size of /29";
                return -EINVAL;
        }
        if (prefix < SF_MIN_NETBLOCK_PREFIX) {
                if (ret_error)
                        *ret_error = "network is above maximum size of /8";
                return -EINVAL;
        }
        ret->net = ip;
        ret->prefix = (int)prefix;
        return 0;
bad:
        if (ret_error)
                *ret_error = "cannot parse netblock";
        return -EINVAL;
}

uint32_t sf_cidr_size(const sf_cidr_t *c) {
        return c->prefix == 0 ? 0xffffffffu : 1u << (32 - c->prefix);
}

void sf_cidr_addr(const sf_cidr_t *c, uint32_t i, char out[16]) {
        struct in_addr a = {.s_addr = htonl(c->net + i)};

        inet_ntop(AF_INET, &a, out, 16);
}

void sf_cidr_netmask(const sf_cidr_t *c, char out[16]) {
        struct in_addr a = {.s_addr = htonl(c->prefix == 0 ? 0 : 0xffffffffu << (32 - c->prefix))};

        inet_ntop(AF_INET, &a, out, 16);
}

bool sf_cidr_contains(const sf_cidr_t *c, uint32_t ip) {
        return ip - c->net < sf_cidr_size(c);
}

bool sf_cidr_overlaps(const sf_cidr_t *a, const sf_cidr_t *b) {
        /* Aligned blocks overlap only if one contains the other's first address. */
        return sf_cidr_contains(a, b->net) || sf_cidr_contains(b, a->net);
}

/* 1 if reserved for owner (new or already), 0 if someone else holds it.  The owners
 * hash (owner -> address) lets a release find an address by its owner alone, so a
 * crash between reserving and recording the address leaks nothing. */
static int take(sf_store_t *s, const char *netuuid, const char *ip, const char *owner) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(
                s, "EVAL %s 2 " SF_KEY_IPAM " " SF_KEY_IPAMOWNERS " %s %s",
                "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
                "if not cur then\n"
                "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
                "  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])\n"
                "  return 1 end\n"
                "if cur == ARGV[2] then return 1 end\n"
                "return 0",
                netuuid, netuuid, ip, owner);
        if (!r || r->type != REDIS_REPLY_INTEGER)
                return -EIO;
        return (int)r->integer;
}

int sf_ipam_reserve(sf_store_t *s, const char *netuuid, const sf_cidr_t *c, const char *want,
                    const char *owner, char ret_ip[16]) {
        uint32_t size = sf_cidr_size(c), ip;
        char text[16];
        int r;

        if (want) {
                if (sf_ip_parse(want, &ip) < 0 || !sf_cidr_contains(c, ip) || ip == c->net ||
                    ip == c->net + size - 1)
                        return -ERANGE;
                sf_cidr_addr(c, ip - c->net, text);
                r = take(s, netuuid, text, owner);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EADDRINUSE;
                memcpy(ret_ip, text, 16);
                return 0;
        }
        /* An owner retrying after a crash gets the address it already holds. */
        {
                _cleanup_reply_ redisReply *held = sf_store_cmd(s, "HGET " SF_KEY_IPAMOWNERS " %s", netuuid, owner);
                if (!held)
                        return -EIO;
                if (held->type == REDIS_REPLY_STRING && sf_ip_parse(held->str, &ip) == 0 &&
                    sf_cidr_contains(c, ip)) {
                        snprintf(ret_ip, 16, "%s", held->str);
                        return 0;
                }
        }
        /* Usable range: index 2 .. size-2 (1 is the router). */
        if (size < 4)
                return -ENOSPC;
        for (int attempt = 0; attempt < 5; attempt++) {
                uint32_t rnd;
                sf_random_bytes(&rnd, sizeof(rnd));
                sf_cidr_addr(c, 2 + rnd % (size - 3), text);
                r = take(s, netuuid, text, owner);
                if (r < 0)
                        return r;
                if (r == 1) {
                        memcpy(ret_ip, text, 16);
                        return 0;
                }
        }
        for (uint32_t i = 2; i < size - 1; i++) {
                sf_cidr_addr(c, i, text);
                r = take(s, netuuid, text, owner);
                if (r < 0)
                        return r;
                if (r == 1) {
                        memcpy(ret_ip, text, 16);
                        return 0;
                }
        }
        return -ENOSPC;
}

int sf_ipam_release(sf_store_t *s, const char *netuuid, const char *ip, const char *owner) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(
                s, "EVAL %s 2 " SF_KEY_IPAM " " SF_KEY_IPAMOWNERS " %s %s",
                "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
                "  redis.call('HDEL', KEYS[2], ARGV[2])\n"
                "  return redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
                "return 0",
                netuuid, netuuid, ip, owner);
        return r && r->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
}

int sf_ipam_release_owner(sf_store_t *s, const char *netuuid, const char *owner) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(
                s, "EVAL %s 2 " SF_KEY_IPAM " " SF_KEY_IPAMOWNERS " %s",
                "local ip = redis.call('HGET', KEYS[2], ARGV[1])\n"
                "if not ip then return 0 end\n"
                "redis.call('HDEL', KEYS[2], ARGV[1])\n"
                "if redis.call('HGET', KEYS[1], ip) == ARGV[1] then redis.call('HDEL', KEYS[1], ip) end\n"
                "return 1",
                netuuid, netuuid, owner);
        return r && r->type == REDIS_REPLY_INTEGER ? 0 : -EIO;
}

int sf_ipam_init(sf_store_t *s, const char *netuuid, const sf_cidr_t *c) {
        char a[16];
        int r;

        sf_cidr_addr(c, 0, a);
        if ((r = take(s, netuuid, a, "network")) < 0)
                return r;
        sf_cidr_addr(c, sf_cidr_size(c) - 1, a);
        if ((r = take(s, netuuid, a, "broadcast")) < 0)
                return r;
        sf_cidr_addr(c, 1, a);
        if ((r = take(s, netuuid, a, "gateway")) < 0)
                return r;
        return 0;
}

int sf_ipam_drop(sf_store_t *s, const char *netuuid) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "DEL " SF_KEY_IPAM " " SF_KEY_IPAMOWNERS, netuuid, netuuid);
        return r ? 0 : -EIO;
}
