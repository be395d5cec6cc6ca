build-asan/obj/lib/ipam.o: lib/ipam.c lib/ipam.h lib/store.h lib/util.h
lib/ipam.h:
lib/store.h:
lib/util.h:
