build-asan/obj/tests/integration/test_worker.o: \
 tests/integration/test_worker.c lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/exec.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h \
 lib/log.h lib/worker.h
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/exec.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/log.h:
lib/worker.h:
