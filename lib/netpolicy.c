#include "netpolicy.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A normalised destination: IPv4-mapped IPv6 becomes IPv4. */
typedef struct dest {
        int family;
        unsigned char addr[16];
        int port;
} dest_t;

static const struct {
        const char *cidr;
        const char *why;
} deny_ranges[] = {
        {"127.0.0.0/8", "loopback"},
        {"::1/128", "loopback"},
        {"0.0.0.0/8", "unspecified"},
        {"::/128", "unspecified"},
        {"169.254.0.0/16", "link-local"},
        {"fe80::/10", "link-local"},
        {"224.0.0.0/4", "multicast"},
        {"ff00::/8", "multicast"},
        {"240.0.0.0/4", "broadcast or reserved"},
};

static int parse_port(const char *s, int *ret) {
        char *end;
        long n;

        errno = 0;
        n = strtol(s, &end, 10);
        if (errno || *end || end == s || n < 1 || n > 65535)
                return -EINVAL;
        *ret = (int)n;
        return 0;
}

/* "addr[/prefix]" into rule (port untouched). */
static int parse_cidr(const char *s, sf_netpolicy_rule_t *rule) {
        char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
        int max;
        long n;

        if (strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (slash)
                *slash++ = 0;
        if (inet_pton(AF_INET, buf, rule->addr) == 1) {
                rule->family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, buf, rule->addr) == 1) {
                rule->family = AF_INET6;
                max = 128;
        } else {
                return -EINVAL;
        }
        rule->prefix = max;
        if (slash) {
                errno = 0;
                n = strtol(slash, &end, 10);
                if (errno || *end || end == slash || n < 0 || n > max)
                        return -EINVAL;
                rule->prefix = (int)n;
        }
        return 0;
}

int sf_netpolicy_rule_parse(const char *s, sf_netpolicy_rule_t *ret) {
        sf_netpolicy_rule_t rule = {0};
        char buf[INET6_ADDRSTRLEN + 16], *colon;
        int r;

        while (*s == ' ')
                s++;
        if (strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        for (size_t n = strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
                buf[n - 1] = 0;
        if (buf[0] == '[') {
                /* [v6[/n]][:port] */
                char *close = strchr(buf, ']');
                if (!close)
                        return -EINVAL;
                *close = 0;
                if (close[1] == ':') {
                        if (parse_port(close + 2, &rule.port) < 0)
                                return -EINVAL;
                } else if (close[1]) {
                        return -EINVAL;
                }
                r = parse_cidr(buf + 1, &rule);
                if (r < 0 || rule.family != AF_INET6)
                        return -EINVAL;
        } else if ((colon = strchr(buf, ':')) && !strchr(colon + 1, ':')) {
                /* exactly one colon: v4[/n]:port */
                *colon = 0;
                if (parse_port(colon + 1, &rule.port) < 0)
                        return -EINVAL;
                r = parse_cidr(buf, &rule);
                if (r < 0 || rule.family != AF_INET)
                        return -EINVAL;
        } else {
                r = parse_cidr(buf, &rule);
                if (r < 0)
                        return r;
        }
        *ret = rule;
        return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *net, int prefix) {
        int bytes = prefix / 8, bits = prefix % 8;

        if (memcmp(a, net, (size_t)bytes) != 0)
                return false;
        if (bits == 0)
                return true;
        unsigned char mask = (unsigned char)(0xff << (8 - bits));
        return (a[bytes] & mask) == (net[bytes] & mask);
}

static bool rule_match(const sf_netpolicy_rule_t *rule, const dest_t *d, bool need_port) {
        if (rule->family != d->family)
                return false;
        if (rule->port ? rule->port != d->port : need_port)
                return false;
        return prefix_match(d->addr, rule->addr, rule->prefix);
}

static bool allowed(const sf_netpolicy_t *p, const dest_t *d, bool need_port) {
        for (size_t i = 0; i < p->nallow; i++)
                if (rule_match(&p->allow[i], d, need_port))
                        return true;
        return false;
}

int sf_netpolicy_allow(sf_netpolicy_t *p, const char *list) {
        _cleanup_free_ char *copy = strdup(list ? list : "");
        char *save = NULL, *tok;

        if (!copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (strspn(tok, " ") == strlen(tok))
                        continue;
                if (p->nallow >= SF_NETPOLICY_MAX_RULES)
                        return -E2BIG;
                if (sf_netpolicy_rule_parse(tok, &p->allow[p->nallow]) < 0)
                        return -EINVAL;
                p->nallow++;
        }
        return 0;
}

static void add_deny(sf_netpolicy_t *p, const char *entry) {
        if (p->ndeny < SF_NETPOLICY_MAX_RULES && sf_netpolicy_rule_parse(entry, &p->deny[p->ndeny]) == 0)
                p->ndeny++;
}

/* The port of a "nats://host:port" URL (4222 when none). */
static int nats_port(const char *url, char *host, size_t hostlen) {
        const char *h = strstr(url, "://"), *colon;
        int port = 4222;

        h = h ? h + 3 : url;
        colon = strrchr(h, ':');
        snprintf(host, hostlen, "%.*s", (int)(colon ? (size_t)(colon - h) : strcspn(h, "/")), h);
        if (colon)
                parse_port(colon + 1, &port);
        return port;
}

int sf_netpolicy_init(sf_netpolicy_t *p, const sf_config_t *cfg) {
        char host[128], entry[192];
        int np, r;

        memset(p, 0, sizeof(*p));
        np = nats_port(cfg->nats_url, host, sizeof(host));
        p->service_ports[p->nports++] = cfg->redis_port;
        p->service_ports[p->nports++] = np;
        p->service_ports[p->nports++] = cfg->api_port;
        /* Redis / NATS may live on another machine: their endpoints are denied too. */
        snprintf(entry, sizeof(entry), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, np);
        add_deny(p, entry);
        snprintf(entry, sizeof(entry), strchr(cfg->redis_host, ':') ? "[%s]:%d" : "%s:%d",
                 cfg->redis_host, cfg->redis_port);
        add_deny(p, entry);
        if (cfg->floating_network[0])
                add_deny(p, cfg->floating_network);
        r = sf_netpolicy_allow(p, cfg->download_allow);
        if (r < 0)
                log_err("config: SF_DOWNLOAD_ALLOW=%s: %s", cfg->download_allow,
                        r == -E2BIG ? "too many entries" : "bad entry (want CIDR[:port], IPv6 as [addr/n]:port)");
        return r < 0 ? -EINVAL : 0;
}

static bool is_local(const dest_t *d) {
        struct ifaddrs *ifs = NULL;
        bool found = false;

        if (getifaddrs(&ifs) < 0)
                return true; /* don't know: treat as ours (the check is on a service port only) */
        for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != d->family)
                        continue;
                if (d->family == AF_INET)
                        found = memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr, d->addr, 4) == 0;
                else
                        found = memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, d->addr, 16) == 0;
        }
        freeifaddrs(ifs);
        return found;
}

static bool in_range(const dest_t *d, const char *cidr) {
        sf_netpolicy_rule_t rule;

        return sf_netpolicy_rule_parse(cidr, &rule) == 0 && rule_match(&rule, d, false);
}

static int deny(const dest_t *d, const char *reason, char *why, size_t whylen) {
        char a[INET6_ADDRSTRLEN] = "?";

        inet_ntop(d->family, d->addr, a, sizeof(a));
        if (why)
                snprintf(why, whylen, d->family == AF_INET6 ? "destination [%s]:%d is not allowed (%s)"
                                                            : "destination %s:%d is not allowed (%s)",
                         a, d->port, reason);
        return -EACCES;
}

static int check_dest(const sf_netpolicy_t *p, const dest_t *d, char *why, size_t whylen) {
        for (size_t i = 0; i < p->nports; i++) {
                if (p->service_ports[i] != d->port)
                        continue;
                if ((in_range(d, "127.0.0.0/8") || in_range(d, "::1/128") || in_range(d, "0.0.0.0/8") ||
                     in_range(d, "::/128") || is_local(d)) &&
                    !allowed(p, d, true))
                        return deny(d, "a service port of this node", why, whylen);
        }
        for (size_t i = 0; i < p->ndeny; i++)
                if (rule_match(&p->deny[i], d, false) && !allowed(p, d, p->deny[i].port != 0))
                        return deny(d, p->deny[i].port ? "a service of this cloud" : "the floating range",
                                    why, whylen);
        for (size_t i = 0; i < SF_ARRAY_SIZE(deny_ranges); i++)
                if (in_range(d, deny_ranges[i].cidr) && !allowed(p, d, false))
                        return deny(d, deny_ranges[i].why, why, whylen);
        return 0;
}

int sf_netpolicy_check(const sf_netpolicy_t *p, const struct sockaddr *sa, char *why, size_t whylen) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        dest_t d = {0};

        if (!sa)
                return -EINVAL;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                d.family = AF_INET;
                memcpy(d.addr, &in->sin_addr, 4);
                d.port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                d.port = ntohs(in6->sin6_port);
                if (memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0) {
                        d.family = AF_INET;
                        memcpy(d.addr, in6->sin6_addr.s6_addr + 12, 4);
                } else {
                        d.family = AF_INET6;
                        memcpy(d.addr, in6->sin6_addr.s6_addr, 16);
                }
        } else {
                if (why)
                        snprintf(why, whylen, "destination address family %d is not allowed", sa->sa_family);
                return -EACCES;
        }
        return check_dest(p, &d, why, whylen);
}

int sf_netpolicy_check_url_literal(const sf_netpolicy_t *p, const char *url, char *why, size_t whylen) {
        CURLU *u = curl_url();
        char *host = NULL, *port = NULL, *scheme = NULL;
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } a = {0};
        int r = -EINVAL, pn = 0;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
            parse_port(port, &pn) < 0)
                goto cleanup;
        if (host[0] == '[') {
                host[strcspn(host, "]%")] = 0;
                if (inet_pton(AF_INET6, host + 1, &a.in6.sin6_addr) != 1)
                        goto cleanup;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons((uint16_t)pn);
        } else if (inet_aton(host, &a.in.sin_addr)) {
                /* inet_aton also reads the short forms (127.1, 0x7f000001) curl accepts */
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons((uint16_t)pn);
        } else {
                r = 0; /* a name: judged on the address actually connected to */
                goto cleanup;
        }
        r = sf_netpolicy_check(p, &a.sa, why, whylen);
cleanup:
        curl_free(host);
        curl_free(port);
        curl_free(scheme);
        curl_url_cleanup(u);
        return r;
}

int sf_netpolicy_check_base_url(const sf_config_t *cfg, const char *url, char *why, size_t whylen) {
        sf_netpolicy_t p;
        int r;

        if (sf_netpolicy_init(&p, cfg) < 0) {
                snprintf(why, whylen, "SF_DOWNLOAD_ALLOW is malformed");
                return -EINVAL;
        }
        r = sf_netpolicy_check_url_literal(&p, url, why, whylen);
        if (r == -EINVAL)
                snprintf(why, whylen, "not a valid URL");
        return r;
}
