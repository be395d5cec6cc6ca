/* The image-format detector (lib/imgfmt.c) on the input as a whole image file (a memfd:
 * a regular file, as the downloaded blob is). An accepted qcow2 must start with its magic
 * and name no backing file; a refusal must say why. */
#include "../fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imgfmt.h"

static int fd = -1;

static uint64_t be64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sf_imgfmt_t fmt = SF_IMGFMT_RAW;
        char reason[256];
        bool qcow2 = size >= 4 && memcmp(data, "QFI\xfb", 4) == 0;
        int r;

        if (fd < 0 && (fd = memfd_create("fuzz-image", MFD_CLOEXEC)) < 0)
                abort();
        if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
                abort();
        memset(reason, 0x5a, sizeof(reason));
        r = sf_imgfmt_detect_fd(fd, &fmt, reason, sizeof(reason));
        FUZZ_CHECK(memchr(reason, 0, sizeof(reason)));
        if (r == 0) {
                FUZZ_CHECK(fmt == (qcow2 ? SF_IMGFMT_QCOW2 : SF_IMGFMT_RAW));
                FUZZ_CHECK(!qcow2 || (size >= 72 && be64(data + 8) == 0));
        } else {
                FUZZ_CHECK(r == -EMEDIUMTYPE && reason[0]);
        }
        return 0;
}
