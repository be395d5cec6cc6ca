build-asan/obj/workers/compute/virt.o: workers/compute/virt.c \
 workers/compute/virt.h workers/compute/domain.h lib/log.h lib/util.h
workers/compute/virt.h:
workers/compute/domain.h:
lib/log.h:
lib/util.h:
