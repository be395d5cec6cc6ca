build-asan/obj/bus/bus.o: bus/bus.c bus/bus.h
bus/bus.h:
