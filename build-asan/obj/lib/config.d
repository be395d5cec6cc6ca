build-asan/obj/lib/config.o: lib/config.c lib/config.h lib/log.h
lib/config.h:
lib/log.h:
