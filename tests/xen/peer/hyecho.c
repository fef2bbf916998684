/*
 * hyecho: the network services of hykernel, for a Linux guest, so that the same client in
 * dom0 can measure both: echo on UDP and TCP port 7 (RFC 862), discard on TCP port 9
 * (RFC 863), a character source on TCP port 19 (chargen's, RFC 864: from each connection's
 * start it writes byte i = ' ' + i % 95 as fast as the socket takes it, until the peer
 * closes; the reference is proto/src/netctl.rs, source_byte), and the control port 7070 answering QUIT (exit), STATS (a line),
 * START/STOP <benchmark> (OK; see below) and anything else with ERR. One process,
 * poll(2), non-blocking sockets; no threads. Built statically by the harness
 * (gcc -static) and put into the Linux peer's initramfs.
 *
 * START and STOP mark the benchmark in the Xen host's trace, so its VM exits can be
 * counted per packet as they are for hykernel: a CPUID of leaf 0x4ffff100 + id opens the
 * phase, 0x4ffff200 + id closes it with eth0's frames (received + sent, from sysfs,
 * as hykernel counts its NIC's frames) in the subleaf
 * (ids 0 udp_rr, 1 tcp_rr, 2 tcp_stream, 16 tcp_maerts; tests/src/xentrace/ reads them). Xen answers
 * these leaves with zeros; the exit is the marker. The leaves, ids and names here are copies:
 * the reference is xen-iface/src/trace.rs (CPUID_MARK_BEGIN, CPUID_MARK_END,
 * CPUID_MARK_NAMES, decode_cpuid_marker); change them there first.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXCONN 32
#define BUF 65536

#define LISTENERS 5
#define PERIOD 95

enum kind { UDP_ECHO, TCP_ECHO_LISTEN, DISCARD_LISTEN, SOURCE_LISTEN, CTL_LISTEN, TCP_ECHO, DISCARD, SOURCE, CTL };

static struct pollfd fds[LISTENERS + MAXCONN];
static enum kind kinds[LISTENERS + MAXCONN];
/* A source connection's stream offset, modulo PERIOD. */
static unsigned offsets[LISTENERS + MAXCONN];
static int nfds;
static char buf[BUF];
/* The source's pattern, PERIOD bytes longer than one write, so that any offset starts a write. */
static char pattern[BUF + PERIOD];
static unsigned long long rx_packets, rx_bytes, tx_packets, packets_at_start;
/* The benchmarks the control port marks, with their CPUID marker ids. */
static const struct { const char *name; unsigned id; } benchmarks[] = {
    { "udp_rr", 0 }, { "tcp_rr", 1 }, { "tcp_stream", 2 }, { "tcp_maerts", 16 },
};
#define NBENCH (int)(sizeof benchmarks / sizeof benchmarks[0])

/* eth0's frames received + sent (0 if sysfs does not say). */
static unsigned long long nic_frames(void)
{
    unsigned long long total = 0;
    const char *files[] = { "/sys/class/net/eth0/statistics/rx_packets", "/sys/class/net/eth0/statistics/tx_packets" };
    for (int i = 0; i < 2; i++) {
        unsigned long long v = 0;
        FILE *f = fopen(files[i], "r");
        if (f) {
            if (fscanf(f, "%llu", &v) != 1) v = 0;
            fclose(f);
        }
        total += v;
    }
    return total;
}

static void cpuid_mark(unsigned leaf, unsigned subleaf)
{
    unsigned a = leaf, b, c = subleaf, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}

/* The marker id of the benchmark `name` starts with, or -1. */
static int benchmark_id(const char *name)
{
    for (int i = 0; i < NBENCH; i++)
        if (!strncmp(name, benchmarks[i].name, strlen(benchmarks[i].name))) return (int)benchmarks[i].id;
    return -1;
}

static int listener(int type, int port)
{
    int one = 1, fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY };
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return -1; }
    if (type == SOCK_STREAM && listen(fd, 16) < 0) { perror("listen"); return -1; }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void add(int fd, enum kind k)
{
    if (nfds >= LISTENERS + MAXCONN) { close(fd); return; }
    /* A source waits for room to write (and for the peer's close). */
    fds[nfds] = (struct pollfd){ .fd = fd, .events = k == SOURCE ? POLLIN | POLLOUT : POLLIN };
    offsets[nfds] = 0;
    kinds[nfds++] = k;
}

static void drop(int i)
{
    close(fds[i].fd);
    fds[i] = fds[nfds - 1];
    kinds[i] = kinds[nfds - 1];
    offsets[i] = offsets[nfds - 1];
    nfds--;
}

/* One turn of a source connection: drain what the peer sent (its close ends the
 * connection), then write as much of the stream as the socket takes. */
static void source(int i)
{
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = read(fds[i].fd, buf, BUF);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) { drop(i); return; }
    }
    if (!(fds[i].revents & POLLOUT)) return;
    for (;;) {
        ssize_t w = write(fds[i].fd, pattern + offsets[i], BUF);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) drop(i);
            return;
        }
        tx_packets++;
        offsets[i] = (unsigned)((offsets[i] + (size_t)w) % PERIOD);
        if (w < BUF) return;
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) { struct pollfd o = { fd, POLLOUT, 0 }; poll(&o, 1, 1000); continue; }
            return -1;
        }
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* Returns 1 to quit. */
static int control(int i)
{
    char line[256];
    ssize_t n = read(fds[i].fd, line, sizeof line - 1);
    if (n <= 0) { drop(i); return 0; }
    line[n] = 0;
    if (!strncmp(line, "QUIT", 4)) { write_all(fds[i].fd, "BYE\n", 4); return 1; }
    if (!strncmp(line, "STATS", 5)) {
        char out[128];
        int m = snprintf(out, sizeof out, "STATS rx=%llu tx=%llu bytes=%llu\n", rx_packets, tx_packets, rx_bytes);
        write_all(fds[i].fd, out, (size_t)m);
    } else if (!strncmp(line, "START ", 6) && benchmark_id(line + 6) >= 0) {
        packets_at_start = nic_frames();
        cpuid_mark(0x4ffff100u + (unsigned)benchmark_id(line + 6), 0);
        write_all(fds[i].fd, "OK\n", 3);
    } else if (!strncmp(line, "STOP ", 5) && benchmark_id(line + 5) >= 0) {
        cpuid_mark(0x4ffff200u + (unsigned)benchmark_id(line + 5), (unsigned)(nic_frames() - packets_at_start));
        write_all(fds[i].fd, "OK\n", 3);
    } else {
        write_all(fds[i].fd, "ERR not measured here\n", 22);
    }
    return 0;
}

int main(void)
{
    int one = 1;
    /* A peer that closes first (the maerts client closes with the stream still coming)
     * makes the next write fail with EPIPE; that must drop the connection, not kill the
     * server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    add(listener(SOCK_DGRAM, 7), UDP_ECHO);
    add(listener(SOCK_STREAM, 7), TCP_ECHO_LISTEN);
    add(listener(SOCK_STREAM, 9), DISCARD_LISTEN);
    add(listener(SOCK_STREAM, 19), SOURCE_LISTEN);
    add(listener(SOCK_STREAM, 7070), CTL_LISTEN);
    for (int i = 0; i < LISTENERS; i++) if (fds[i].fd < 0) return 1;
    for (int i = 0; i < BUF + PERIOD; i++) pattern[i] = (char)(' ' + i % PERIOD);
    printf("hyecho: echo 7/udp 7/tcp, discard 9/tcp, source 19/tcp, control 7070/tcp\n");
    fflush(stdout);
    for (;;) {
        if (poll(fds, (nfds_t)nfds, -1) < 0) { if (errno == EINTR) continue; return 1; }
        for (int i = nfds - 1; i >= 0; i--) {
            if (!(fds[i].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) continue;
            switch (kinds[i]) {
            case UDP_ECHO: {
                struct sockaddr_in from; socklen_t fl = sizeof from;
                ssize_t n;
                while ((n = recvfrom(fds[i].fd, buf, BUF, 0, (struct sockaddr *)&from, &fl)) >= 0) {
                    rx_packets++; rx_bytes += (size_t)n;
                    if (sendto(fds[i].fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) >= 0) tx_packets++;
                    fl = sizeof from;
                }
                break;
            }
            case TCP_ECHO_LISTEN: case DISCARD_LISTEN: case SOURCE_LISTEN: case CTL_LISTEN: {
                int c = accept(fds[i].fd, NULL, NULL);
                if (c < 0) break;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (kinds[i] == SOURCE_LISTEN) fcntl(c, F_SETFL, O_NONBLOCK);
                add(c, kinds[i] == TCP_ECHO_LISTEN ? TCP_ECHO : kinds[i] == DISCARD_LISTEN ? DISCARD
                       : kinds[i] == SOURCE_LISTEN ? SOURCE : CTL);
                break;
            }
            case SOURCE:
                source(i);
                break;
            case TCP_ECHO: {
                ssize_t n = read(fds[i].fd, buf, BUF);
                if (n <= 0 || write_all(fds[i].fd, buf, (size_t)n) < 0) drop(i);
                else { rx_packets++; tx_packets++; rx_bytes += (size_t)n; }
                break;
            }
            case DISCARD: {
                ssize_t n = read(fds[i].fd, buf, BUF);
                if (n <= 0) drop(i); else { rx_packets++; rx_bytes += (size_t)n; }
                break;
            }
            case CTL:
                if (control(i)) return 0;
                break;
            }
        }
    }
}
