/* cs_dlog.c - calsweepd's logging helpers (cs_dlog.h). */
#include "cs_dlog.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <nng/nng.h>

#include "cs_log.h"
#include "cs_time.h"

bool cs_ratelog_ok(cs_ratelog *r, const char *what)
{
    int64_t now = cs_time_mono_ms();
    if (now - r->window >= 1000) {
        if (r->suppressed > 0) {
            cs_log(CS_LOG_WARN, "%u more %s messages suppressed", r->suppressed, what);
        }
        r->window = now;
        r->n = 0;
        r->suppressed = 0;
    }
    if (r->n < CS_DLOG_PER_SEC) {
        r->n++;
        return true;
    }
    r->suppressed++;
    return false;
}

void cs_peer_name(uint32_t pipe_id, char *buf, size_t n)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    nng_sockaddr sa;
    p.id = pipe_id;
    snprintf(buf, n, "pipe %u", (unsigned)pipe_id);
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        return;
    }
    if (sa.s_family == NNG_AF_INET) {
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof ip);
        snprintf(buf, n, "%s:%u (pipe %u)", ip, (unsigned)ntohs(sa.s_in.sa_port),
                 (unsigned)pipe_id);
    } else if (sa.s_family == NNG_AF_INET6) {
        char ip[INET6_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof ip);
        snprintf(buf, n, "[%s]:%u (pipe %u)", ip, (unsigned)ntohs(sa.s_in6.sa_port),
                 (unsigned)pipe_id);
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(buf, n, "ipc peer (pipe %u)", (unsigned)pipe_id);
    }
}

void cs_printable(char *dst, size_t n, const char *src, const char *also)
{
    size_t k = 0;
    for (const char *p = src; p != NULL && *p != '\0' && k + 1 < n; p++) {
        bool ok = *p >= ' ' && *p < 0x7f && (also == NULL || strchr(also, *p) == NULL);
        dst[k++] = ok ? *p : '?';
    }
    dst[k] = '\0';
}
