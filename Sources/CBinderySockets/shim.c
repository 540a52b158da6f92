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

#include <string.h>
#include <stddef.h>
#include <sys/un.h>

int bindery_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

long bindery_send_with_fds(int fd, const char *path, const void *data, size_t length, const int *fds, int count) {
    if (count < 0 || count > 253) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)data, .iov_len = length };
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (path) {
        size_t name = strlen(path);
        if (name == 0 || name >= sizeof address.sun_path) { errno = ENAMETOOLONG; return -1; }
        memcpy(address.sun_path, path, name);
        if (path[0] == '@') address.sun_path[0] = 0;
        message.msg_name = &address;
        message.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name + (path[0] == '@' ? 0 : 1));
    }
    union { char buffer[CMSG_SPACE(sizeof(int) * 253)]; struct cmsghdr align; } control;
    if (count > 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
    }
    ssize_t sent;
    do { sent = sendmsg(fd, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent;
}

long bindery_receive_with_fds(int fd, void *data, size_t capacity, int *fds, int max_fds, int *received, int *truncated) {
    struct iovec iov = { .iov_base = data, .iov_len = capacity };
    union { char buffer[CMSG_SPACE(sizeof(int) * 253)]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    *received = 0;
    *truncated = 0;
    ssize_t count;
    do { count = recvmsg(fd, &message, MSG_CMSG_CLOEXEC); } while (count < 0 && errno == EINTR);
    if (count < 0) return -1;
    if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) *truncated = 1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *incoming = (int *)CMSG_DATA(header);
        for (int i = 0; i < n; i++) {
            if (*received < max_fds) fds[(*received)++] = incoming[i];
            else { close(incoming[i]); *truncated = 1; }
        }
    }
    return count;
}

int bindery_accept_local(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }
