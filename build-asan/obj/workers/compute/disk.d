build-asan/obj/workers/compute/disk.o: workers/compute/disk.c \
 workers/compute/disk.h lib/exec.h lib/log.h lib/util.h
workers/compute/disk.h:
lib/exec.h:
lib/log.h:
lib/util.h:
