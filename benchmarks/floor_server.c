/* The small path's native floor (benchmarks/bench_small_floor.py): a Kafka-framed server that
 * does no broker work. One thread, epoll (level-triggered), non-blocking sockets, TCP_NODELAY.
 * It reads length-prefixed frames; a Produce (api key 0) moves a one-record "log end" and is
 * answered at once with a canned answer (its correlation id and base offset written in); a
 * Fetch (api key 1) whose offset is below the log end is answered at once with a canned answer
 * (the record batch), otherwise it is held (one per connection) until a Produce moves the log
 * end past it. No timer: a held Fetch is never answered empty (the bench's rounds never wait
 * out a max wait). What is left is what any server pays for the pattern on this machine: the
 * syscalls, the wake-ups and the scheduler.
 *
 * usage: floor_server PORT PRODUCE_ANSWER FETCH_ANSWER BASE_POS OFFSET_FROM_END [LOG]
 *   PRODUCE_ANSWER, FETCH_ANSWER: files holding a response without its size prefix, the
 *   correlation id first; BASE_POS: where the Produce answer's base offset (int64) is in it;
 *   OFFSET_FROM_END: where a Fetch request's fetch offset (int64) is, counted from its end;
 *   LOG: a file each Produce request is appended to (one write(2), no fsync) before its answer:
 *   the floor with the one syscall a broker's log append cannot avoid. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 256
#define IN_SIZE 65536

struct conn {
    int fd;
    size_t start, end;
    int parked;          /* a Fetch is held */
    int32_t parked_cid;  /* its correlation id (network order) */
    int64_t parked_offset;
    unsigned char in[IN_SIZE];
};

static struct conn *conns[MAX_CONNS];
static unsigned char *produce_answer, *fetch_answer;
static size_t produce_len, fetch_len, base_pos, offset_from_end;
static int64_t log_end;
static int log_fd = -1;

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(4 + (size_t)n); /* the size prefix, then the answer */
    if (!buf || fread(buf + 4, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
    fclose(f);
    uint32_t size = htonl((uint32_t)n);
    memcpy(buf, &size, 4);
    *len = 4 + (size_t)n;
    return buf;
}

static uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}

/* Write a whole answer; a short write (never seen with answers this small) waits for POLLOUT. */
static int send_all(int fd, const unsigned char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) { buf += n; len -= (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, 5000) <= 0) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

static void answer_fetch(struct conn *c, int32_t cid) {
    memcpy(fetch_answer + 4, &cid, 4);
    send_all(c->fd, fetch_answer, fetch_len);
}

static void close_conn(int ep, int i) {
    epoll_ctl(ep, EPOLL_CTL_DEL, conns[i]->fd, NULL);
    close(conns[i]->fd);
    free(conns[i]);
    conns[i] = NULL;
}

/* One frame (without its size prefix); -1 closes the connection. */
static int handle(struct conn *c, const unsigned char *frame, size_t size) {
    if (size < 8) return -1;
    int api_key = (frame[0] << 8) | frame[1];
    int32_t cid;
    memcpy(&cid, frame + 4, 4);
    if (api_key == 0) { /* Produce of one record: answered, then the Fetches it satisfies */
        memcpy(produce_answer + 4, &cid, 4);
        put_be64(produce_answer + 4 + base_pos, (uint64_t)log_end);
        log_end += 1;
        if (log_fd >= 0 && write(log_fd, frame, size) != (ssize_t)size) { perror("log"); exit(1); }
        if (send_all(c->fd, produce_answer, produce_len) < 0) return -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *o = conns[i];
            if (o && o->parked && o->parked_offset < log_end) {
                o->parked = 0;
                answer_fetch(o, o->parked_cid);
            }
        }
        return 0;
    }
    if (api_key == 1 && size >= offset_from_end && !c->parked) {
        int64_t offset = (int64_t)be64(frame + size - offset_from_end);
        if (offset < log_end) {
            answer_fetch(c, cid);
        } else {
            c->parked = 1;
            c->parked_cid = cid;
            c->parked_offset = offset;
        }
        return 0;
    }
    return -1; /* anything else: not served */
}

/* Read what the socket has, handle the whole frames; -1 closes the connection. */
static int on_readable(struct conn *c) {
    if (c->start == c->end) c->start = c->end = 0;
    if (IN_SIZE - c->end < 4096) { /* move a partial frame to the front */
        memmove(c->in, c->in + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    ssize_t n = read(c->fd, c->in + c->end, IN_SIZE - c->end);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return -1;
    if (n < 0) return 0;
    c->end += (size_t)n;
    while (c->end - c->start >= 4) {
        uint32_t size;
        memcpy(&size, c->in + c->start, 4);
        size = ntohl(size);
        if (size > IN_SIZE - 4) return -1;
        if (c->end - c->start - 4 < size) break;
        if (handle(c, c->in + c->start + 4, size) < 0) return -1;
        c->start += 4 + size;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s PORT PRODUCE FETCH BASE_POS OFFSET_FROM_END [LOG]\n", argv[0]);
        return 2;
    }
    if (argc == 7 && (log_fd = open(argv[6], O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0) { perror(argv[6]); return 1; }
    produce_answer = read_file(argv[2], &produce_len);
    fetch_answer = read_file(argv[3], &fetch_len);
    base_pos = (size_t)atol(argv[4]);
    offset_from_end = (size_t)atol(argv[5]);
    if (base_pos + 8 > produce_len - 4) { fprintf(stderr, "bad BASE_POS\n"); return 2; }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 128) < 0) { perror("bind"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = MAX_CONNS};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { perror("epoll_wait"); return 1; }
        for (int k = 0; k < n; k++) {
            uint32_t i = events[k].data.u32;
            if (i == MAX_CONNS) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0) continue;
                int slot = 0;
                while (slot < MAX_CONNS && conns[slot]) slot++;
                if (slot == MAX_CONNS) { close(fd); continue; }
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conns[slot] = calloc(1, sizeof(struct conn));
                conns[slot]->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN, .data.u32 = (uint32_t)slot};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
            } else if (conns[i] && on_readable(conns[i]) < 0) {
                close_conn(ep, (int)i);
            }
        }
    }
}
