build-asan/obj/lib/state.o: lib/state.c lib/state.h
lib/state.h:
