build-asan/obj/lib/lock.o: lib/lock.c lib/lock.h lib/store.h lib/log.h \
 lib/util.h
lib/lock.h:
lib/store.h:
lib/log.h:
lib/util.h:
