build-asan/obj/build-asan/gen/sf.pb-c.o: build-asan/gen/sf.pb-c.c \
 build-asan/gen/sf.pb-c.h
build-asan/gen/sf.pb-c.h:
