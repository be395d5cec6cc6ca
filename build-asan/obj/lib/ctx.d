build-asan/obj/lib/ctx.o: lib/ctx.c lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/log.h lib/util.h
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/log.h:
lib/util.h:
