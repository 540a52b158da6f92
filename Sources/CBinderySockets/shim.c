#define _GNU_SOURCE
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "CBinderySockets.h"

int bindery_accept(int fd, struct sockaddr *address, socklen_t *length) {
    int client = accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client >= 0) {
        int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return client;
}
