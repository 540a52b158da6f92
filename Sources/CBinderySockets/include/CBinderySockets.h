// Socket calls Swift's Glibc module does not export on Linux: epoll, accept4, eventfd.
#ifndef BINDERY_CBINDERYSOCKETS_H
#define BINDERY_CBINDERYSOCKETS_H


#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/// epoll_create1(EPOLL_CLOEXEC).
static inline int bindery_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

/// epoll_ctl with the event mask and a 64-bit token.
static inline int bindery_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event = { .events = events, .data = { .u64 = token } };
    return epoll_ctl(epfd, op, fd, &event);
}

/// epoll_wait filling parallel arrays of masks and tokens (struct epoll_event is packed on x86-64).
static inline int bindery_epoll_wait(int epfd, uint32_t *masks, uint64_t *tokens, int capacity, int timeout_ms) {
    struct epoll_event events[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epfd, events, capacity, timeout_ms);
    for (int i = 0; i < count; i++) { masks[i] = events[i].events; tokens[i] = events[i].data.u64; }
    return count;
}

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, and TCP_NODELAY on the new socket (in shim.c:
/// accept4 needs _GNU_SOURCE, which a header shared with Swift's Glibc module must not set).
int bindery_accept(int fd, struct sockaddr *address, socklen_t *length);

/// Installs, synchronously, a handler for `signo` that writes the signal number (one byte)
/// to `fd`: async-signal-safe, and armed before the call returns. Returns 0 or -1 (errno).
int bindery_signal_to_fd(int signo, int fd);

/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC).
static inline int bindery_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static const uint32_t BINDERY_EPOLLIN = EPOLLIN;
static const uint32_t BINDERY_EPOLLOUT = EPOLLOUT;
static const uint32_t BINDERY_EPOLLERR = EPOLLERR;
static const uint32_t BINDERY_EPOLLHUP = EPOLLHUP;
static const uint32_t BINDERY_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t BINDERY_EPOLLET = EPOLLET;

/// accept4 with SOCK_CLOEXEC only (blocking), for local sockets.
int bindery_accept_local(int fd);

/// SO_PEERCRED of a connected Unix socket: the peer's pid, uid and gid. 0 or -1 (errno).
int bindery_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

/// sendmsg of `length` bytes with `count` descriptors (at most 253) as SCM_RIGHTS, to
/// `path` when not NULL (a datagram; a leading '@' names the abstract namespace), else on
/// the connected `fd`. MSG_NOSIGNAL. Returns the bytes sent or -1 (errno).
long bindery_send_with_fds(int fd, const char *path, const void *data, size_t length, const int *fds, int count);

/// recvmsg of one message into `data` (at most `capacity` bytes) and up to `max_fds`
/// descriptors (received close-on-exec); `*received` is their count and `*truncated` is 1
/// when the data or the descriptors did not fit (the descriptors that came are still closed
/// by the caller). Returns the bytes received, 0 at end of stream, or -1 (errno).
long bindery_receive_with_fds(int fd, void *data, size_t capacity, int *fds, int max_fds, int *received, int *truncated);

#endif
