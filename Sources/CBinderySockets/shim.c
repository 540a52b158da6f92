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

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile int signal_fds[65];

static void write_signal_number(int signo) {
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    if (signo > 0 && signo < 65 && signal_fds[signo] >= 0) { ssize_t ignored = write(signal_fds[signo], &byte, 1); (void)ignored; }
    errno = saved;
}

int bindery_signal_to_fd(int signo, int fd) {
    if (signo <= 0 || signo >= 65) { errno = EINVAL; return -1; }
    signal_fds[signo] = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = write_signal_number;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(signo, &action, NULL);
}
