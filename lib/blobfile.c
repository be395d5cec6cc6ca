/* See blobfile.h. */
#include "blobfile.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sf_blobfile_path(const char *storage, const char *uuid, char *out, size_t len) {
        char u[SF_UUID_LEN];

        if (!storage || !uuid || !sf_uuid_parse(uuid, u))
                return -EINVAL;
        if ((size_t)snprintf(out, len, "%s/blobs/%.2s/%s", storage, u, u) >= len)
                return -ENAMETOOLONG;
        return 0;
}

static void md_ctx_freep(EVP_MD_CTX **p) { EVP_MD_CTX_free(*p); }

int sf_blobfile_sha512(const char *path, char ret[SF_SHA512_HEX_LEN]) {
        __attribute__((cleanup(md_ctx_freep))) EVP_MD_CTX *md = EVP_MD_CTX_new();
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        unsigned char buf[64 * 1024], dg[EVP_MAX_MD_SIZE];
        unsigned int dglen = 0;
        ssize_t n;

        if (fd < 0)
                return -errno;
        if (!md || EVP_DigestInit_ex(md, EVP_sha512(), NULL) != 1)
                return -EIO;
        while ((n = read(fd, buf, sizeof(buf))) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
                        return -EIO;
        }
        if (EVP_DigestFinal_ex(md, dg, &dglen) != 1 || dglen != 64)
                return -EIO;
        for (unsigned int i = 0; i < dglen; i++)
                snprintf(ret + 2 * i, 3, "%02x", dg[i]);
        return 0;
}
