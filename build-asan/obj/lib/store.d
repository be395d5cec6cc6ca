build-asan/obj/lib/store.o: lib/store.c lib/store.h lib/log.h lib/util.h
lib/store.h:
lib/log.h:
lib/util.h:
