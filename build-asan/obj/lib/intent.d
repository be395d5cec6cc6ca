build-asan/obj/lib/intent.o: lib/intent.c lib/intent.h lib/ctx.h \
 bus/bus.h lib/config.h lib/store.h build-asan/gen/sf.pb-c.h lib/util.h \
 lib/log.h
lib/intent.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/log.h:
