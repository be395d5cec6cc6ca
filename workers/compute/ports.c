#include "ports.h"

#include "log.h"
#include "sflimits.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* KEYS[1] port key, ARGV[1] owner: 1 if the key is (now) the owner's, 0 if another's.
 * A SET NX re-sent after a lost reply finds its own value: still ours. */
static const char CLAIM_LUA[] = "if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end "
                                "if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end return 0";
/* CLAIM_LUA for each of KEYS, ARGV[1] owner: a list of 1 (owner's) or 0 (another's). */
static const char CLAIM_MANY_LUA[] = "local out = {} for i = 1, #KEYS do "
                                     "if redis.call('SET', KEYS[i], ARGV[1], 'NX') or "
                                     "redis.call('GET', KEYS[i]) == ARGV[1] then out[i] = 1 else out[i] = 0 end "
                                     "end return out";
/* KEYS[1] port key, ARGV[1] owner: delete only the owner's claim. */
static const char RELEASE_LUA[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end return 0";

static int port_script(sf_store_t *st, const char *script, const char *node, const char *owner, int port,
                       long long *ret) {
        char key[160];
        _cleanup_reply_ redisReply *r = NULL;

        snprintf(key, sizeof(key), SF_KEY_PORT, node, port);
        r = sf_store_cmd(st, "EVAL %s 1 %s %s", script, key, owner);
        if (!r || r->type != REDIS_REPLY_INTEGER)
                return -EIO;
        *ret = r->integer;
        return 0;
}

int sf_ports_claim(sf_store_t *st, const char *node, const char *owner, int port) {
        long long v;
        int r = port_script(st, CLAIM_LUA, node, owner, port, &v);

        if (r < 0)
                return r;
        return v == 1 ? 0 : -EADDRINUSE;
}

int sf_ports_claim_many(sf_store_t *st, const char *node, const char *owner, const int *ports, size_t n,
                        bool *ret_taken) {
        char keys[SF_PORTS_CLAIM_MAX][160], nkeys[8];
        const char *argv[4 + SF_PORTS_CLAIM_MAX] = {"EVAL", CLAIM_MANY_LUA, nkeys};
        _cleanup_reply_ redisReply *r = NULL;
        int argc = 3;

        if (n == 0)
                return 0;
        if (n > SF_PORTS_CLAIM_MAX)
                return -EINVAL;
        snprintf(nkeys, sizeof(nkeys), "%zu", n);
        for (size_t i = 0; i < n; i++) {
                snprintf(keys[i], sizeof(keys[i]), SF_KEY_PORT, node, ports[i]);
                argv[argc++] = keys[i];
        }
        argv[argc++] = owner;
        /* Idempotent (a claim re-sent finds its own value), so it may be sent again. */
        r = sf_store_cmdargv(st, argc, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n)
                return -EIO;
        for (size_t i = 0; i < n; i++)
                if (r->element[i]->type != REDIS_REPLY_INTEGER)
                        return -EIO;
        for (size_t i = 0; i < n; i++)
                ret_taken[i] = r->element[i]->integer != 1;
        return 0;
}

int sf_ports_release(sf_store_t *st, const char *node, const char *owner, int port) {
        long long v;

        return port_script(st, RELEASE_LUA, node, owner, port, &v);
}

/* Whether something on this host already listens on addr:port.  SO_REUSEADDR as qemu
 * sets it, so a TIME_WAIT left by an old guest does not count. */
bool sf_ports_bindable(const char *addr, int port) {
        struct sockaddr_storage ss = {0};
        socklen_t len;
        int fd, one = 1;
        bool ok;

        if (strchr(addr, ':')) {
                struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, addr, &a6->sin6_addr) != 1)
                        return false;
                len = sizeof(*a6);
        } else {
                struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
                a4->sin_family = AF_INET;
                a4->sin_port = htons((uint16_t)port);
                if (inet_pton(AF_INET, addr, &a4->sin_addr) != 1)
                        return false;
                len = sizeof(*a4);
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
        close(fd);
        return ok;
}

int sf_ports_pick(const char *addr, const int *avoid, int navoid, int *ret_port) {
        for (int attempt = 0; attempt < 200; attempt++) {
                uint32_t rnd;
                int port;
                bool taken = false;

                sf_random_bytes(&rnd, sizeof(rnd));
                port = SF_PORT_MIN + (int)(rnd % (SF_PORT_MAX - SF_PORT_MIN));
                for (int i = 0; i < navoid; i++)
                        taken |= avoid[i] == port;
                if (taken || !sf_ports_bindable(addr, port))
                        continue;
                *ret_port = port;
                return 0;
        }
        log_err("ports: no free port in %d-%d on %s", SF_PORT_MIN, SF_PORT_MAX, addr);
        return -EADDRNOTAVAIL;
}

int sf_ports_release_instance(sf_store_t *st, const char *node, json_object *inst) {
        static const char *const fields[] = {"console_port", "vdi_port", "vdi_tls_port"};
        const char *uuid = sf_json_str(inst, "uuid");

        if (!uuid)
                return 0;
        for (size_t i = 0; i < SF_ARRAY_SIZE(fields); i++) {
                int port = (int)sf_json_int(inst, fields[i], 0);
                if (port > 0 && sf_ports_release(st, node, uuid, port) < 0)
                        return -EIO;
        }
        return 0;
}
