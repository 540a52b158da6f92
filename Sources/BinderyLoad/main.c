// bindery-load: an HTTPS/1.1 load generator that presents a client certificate (wrk cannot),
// so Bindery and nginx can be measured with mutual TLS by the same client.
//
//   bindery-load keepalive PORT CA CERT KEY CONNECTIONS SECONDS [PATH [METHOD [BODY]]]   requests/s, p50/p99 latency
//   bindery-load handshake PORT CA CERT KEY CONNECTIONS SECONDS [PATH [METHOD [BODY]]]   full handshakes/s (no resumption)
//   bindery-load idle      PORT CA CERT KEY CONNECTIONS SECONDS [PATH [METHOD [BODY]]]   open, one request each, hold
//
// PATH (default /) is what every request asks for, with METHOD (default GET). With a BODY
// (METHOD POST, PUT or PATCH), each request sends it as application/json with every `{n}` in it
// replaced by a counter unique within the process, e.g. '{"name":"bench-{n}"}' for distinct
// names. A 2xx status counts as a success, anything else as an error. Keep-alive connections
// take responses up to 1 MiB (an audit page), the others 4 KiB.
// One thread, epoll, non-blocking OpenSSL. Prints one JSON object.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { KEEPALIVE, HANDSHAKE, IDLE };
enum state { CONNECTING, HANDSHAKING, WRITING, READING, HELD };

struct conn {
    int fd;
    SSL *ssl;
    enum state state;
    char *request;   // the request being written: the shared one, or this connection's own (with a BODY)
    size_t request_length;
    size_t written;
    char *buffer;
    size_t capacity;
    size_t have;
    double started;
};

static enum mode mode;
static SSL_CTX *ctx;
static int epfd, port;
static char request_keepalive[4096];
static char request_close[4096];
static const char *method = "GET", *path = "/", *body;  // body: NULL unless a BODY was given
static size_t request_capacity;  // for a request with a BODY: the header and the body, every {n} at its widest
static unsigned long counter;    // the next {n}
static double *latencies;
static size_t latency_count, latency_capacity;
static long completed, errors, handshakes, held;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/// Makes the request the connection writes next: the shared GET, or the header and BODY with
/// each {n} replaced by the next counter value.
static void prepare(struct conn *c) {
    c->written = 0;
    if (!body) {
        c->request = mode == HANDSHAKE ? request_close : request_keepalive;
        c->request_length = strlen(c->request);
        return;
    }
    char *content = c->request + request_capacity / 2;  // the body, built in the second half first
    size_t length = 0;
    for (const char *b = body; *b;) {
        if (b[0] == '{' && b[1] == 'n' && b[2] == '}') {
            length += (size_t)sprintf(content + length, "%lu", counter++);
            b += 3;
        } else {
            content[length++] = *b++;
        }
    }
    int header = snprintf(c->request, request_capacity / 2,
                          "%s %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                          method, path, mode == HANDSHAKE ? "Connection: close\r\n" : "", length);
    memmove(c->request + header, content, length);
    c->request_length = (size_t)header + length;
}

static void watch(struct conn *c, uint32_t events, int op) {
    struct epoll_event e = { .events = events, .data = { .ptr = c } };
    epoll_ctl(epfd, op, c->fd, &e);
}

static void start(struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(c->fd, (struct sockaddr *)&a, sizeof a);
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    c->state = HANDSHAKING;
    c->have = 0;
    c->written = 0;
    watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
}

static void stop(struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    SSL_free(c->ssl);
    close(c->fd);
}

static void restart(struct conn *c, int failed) {
    if (failed) errors++;
    stop(c);
    start(c);
}

static void record(double seconds) {
    if (latency_count == latency_capacity) {
        latency_capacity = latency_capacity ? latency_capacity * 2 : 1 << 20;
        latencies = realloc(latencies, latency_capacity * sizeof *latencies);
    }
    latencies[latency_count++] = seconds;
}

/// Returns 1 when a whole response (Content-Length framed) is in the buffer.
static int response_complete(struct conn *c) {
    c->buffer[c->have < c->capacity ? c->have : c->capacity - 1] = 0;
    char *end = strstr(c->buffer, "\r\n\r\n");
    if (!end) return 0;
    char *length = strcasestr(c->buffer, "content-length:");
    size_t body = length ? strtoul(length + 15, NULL, 10) : 0;
    return c->have >= (size_t)(end + 4 - c->buffer) + body;
}

static void step(struct conn *c) {
    for (;;) {
        int r;
        switch (c->state) {
        case CONNECTING:
        case HANDSHAKING:
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                handshakes++;
                c->state = WRITING;
                prepare(c);
                c->started = now();
                continue;
            }
            goto wait;
        case WRITING: {
            size_t n = 0;
            r = SSL_write_ex(c->ssl, c->request + c->written, c->request_length - c->written, &n);
            if (r != 1) goto wait;
            c->written += n;
            if (c->written == c->request_length) { c->state = READING; c->have = 0; }
            continue;
        }
        case READING: {
            size_t n = 0;
            if (c->have + 1 >= c->capacity) { restart(c, 1); return; }  // larger than the buffer: an error
            r = SSL_read_ex(c->ssl, c->buffer + c->have, c->capacity - 1 - c->have, &n);
            if (r != 1) goto wait;
            c->have += n;
            if (!response_complete(c)) continue;
            if (strncmp(c->buffer, "HTTP/1.1 2", 10) != 0) errors++; else completed++;
            record(now() - c->started);
            if (mode == IDLE) { c->state = HELD; held++; watch(c, EPOLLIN, EPOLL_CTL_MOD); return; }
            if (mode == HANDSHAKE) { restart(c, 0); return; }
            c->state = WRITING;
            prepare(c);
            c->started = now();
            continue;
        }
        case HELD: {
            char scratch[256];
            size_t n;
            if (SSL_read_ex(c->ssl, scratch, sizeof scratch, &n) != 1 &&
                SSL_get_error(c->ssl, 0) != SSL_ERROR_WANT_READ) { held--; errors++; c->state = CONNECTING; restart(c, 0); }
            return;
        }
        }
    wait:
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ: watch(c, EPOLLIN, EPOLL_CTL_MOD); return;
        case SSL_ERROR_WANT_WRITE: watch(c, EPOLLOUT, EPOLL_CTL_MOD); return;
        default: ERR_clear_error(); restart(c, 1); return;
        }
    }
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 8 || argc > 11) {
        fprintf(stderr, "usage: bindery-load keepalive|handshake|idle PORT CA CERT KEY CONNECTIONS SECONDS [PATH [METHOD [BODY]]]\n");
        return 2;
    }
    if (argc > 8) path = argv[8];
    if (argc > 9) method = argv[9];
    if (argc > 10) body = argv[10];
    if (strlen(path) > 3000 || path[0] != '/') { fprintf(stderr, "PATH must start with / and be under 3000 bytes\n"); return 2; }
    if (strlen(method) < 1 || strlen(method) > 16 || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method)) {
        fprintf(stderr, "METHOD must be 1 to 16 capital letters\n");
        return 2;
    }
    snprintf(request_keepalive, sizeof request_keepalive, "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method, path);
    snprintf(request_close, sizeof request_close, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", method, path);
    if (body) {  // each half holds a whole request: the header (path, method, length) and the widest body
        size_t counters = 0;
        for (const char *b = strstr(body, "{n}"); b; b = strstr(b + 3, "{n}")) counters++;
        request_capacity = 2 * (strlen(body) + counters * 20 + 4096);
    }
    mode = !strcmp(argv[1], "handshake") ? HANDSHAKE : !strcmp(argv[1], "idle") ? IDLE : KEEPALIVE;
    port = atoi(argv[2]);
    int connections = atoi(argv[6]);
    double seconds = atof(argv[7]);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // handshake mode: full handshakes only
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1 || SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    epfd = epoll_create1(0);
    struct conn *all = calloc((size_t)connections, sizeof *all);
    for (int i = 0; i < connections; i++) {
        all[i].capacity = mode == KEEPALIVE ? 1 << 20 : 4096;
        all[i].buffer = malloc(all[i].capacity);
        if (body) all[i].request = malloc(request_capacity);
    }
    double begin = now();
    for (int i = 0; i < connections; i++) {
        start(&all[i]);
        if (mode == IDLE) {  // pace the handshakes so the listen backlog never overflows
            struct epoll_event events[256];
            int n = epoll_wait(epfd, events, 256, 0);
            for (int j = 0; j < n; j++) step(events[j].data.ptr);
        }
    }
    struct epoll_event events[256];
    double deadline = begin + seconds;
    while (now() < deadline) {
        int n = epoll_wait(epfd, events, 256, 100);
        for (int i = 0; i < n; i++) step(events[i].data.ptr);
        if (mode == IDLE && held == connections) {
            printf("{\"held\":%ld,\"errors\":%ld,\"seconds\":%.2f}\n", held, errors, now() - begin);
            fflush(stdout);
            // Hold until killed or the deadline passes.
            while (now() < deadline) { n = epoll_wait(epfd, events, 256, 500); for (int i = 0; i < n; i++) step(events[i].data.ptr); }
            return 0;
        }
    }
    double elapsed = now() - begin;
    qsort(latencies, latency_count, sizeof *latencies, compare);
    double p50 = latency_count ? latencies[latency_count / 2] : 0, p99 = latency_count ? latencies[latency_count * 99 / 100] : 0;
    printf("{\"mode\":\"%s\",\"requests\":%ld,\"errors\":%ld,\"handshakes\":%ld,\"seconds\":%.3f,\"rps\":%.1f,"
           "\"handshakes_per_second\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"held\":%ld}\n",
           argv[1], completed, errors, handshakes, elapsed, completed / elapsed, handshakes / elapsed, p50 * 1e6, p99 * 1e6, held);
    return 0;
}
