build-asan/obj/workers/compute/handlers.o: workers/compute/handlers.c \
 workers/compute/handlers.h lib/worker.h lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h \
 workers/compute/configdrive.h workers/compute/disk.h \
 workers/compute/domain.h lib/event.h lib/exec.h lib/ipam.h lib/lock.h \
 lib/log.h lib/object.h lib/state.h workers/compute/virt.h
workers/compute/handlers.h:
lib/worker.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
workers/compute/configdrive.h:
workers/compute/disk.h:
workers/compute/domain.h:
lib/event.h:
lib/exec.h:
lib/ipam.h:
lib/lock.h:
lib/log.h:
lib/object.h:
lib/state.h:
workers/compute/virt.h:
