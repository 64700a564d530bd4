/*
 * fuzz_reqlog.c - libFuzzer target for heartbeat/reqlog.c, the request log of
 * `warren-heartbeat expose`.
 *
 * The input is a sequence of chunks, each a control byte then its bytes: bit 7
 * set sends the chunk to the service ("up"), clear from it ("down"); bits 0-5
 * + 1 are its length; bit 6 advances the clock by a second (else by 1 ms).
 * The stream then ends.
 *
 * Checks, beyond memory safety: every record is HTTP or TCP; an HTTP record
 * has a method and a target of visible ASCII within the cap, a status of 0 or
 * 100-999 and a duration within the time fed; a TCP record comes once, at
 * the end, with exactly the bytes fed; nothing comes after the end; each
 * formatted line fits HB_REQLOG_LINE_MAX. Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reqlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct st {
  uint64_t up, down, elapsed;
  int ended, tcp;
};

static void on_rec(void *ud, const struct hb_reqlog_rec *r) {
  struct st *s = ud;
  char line[HB_REQLOG_LINE_MAX];
  size_t i, n;

  if (s->ended || s->tcp)
    abort();
  if (r->duration_us > s->elapsed)
    abort();
  if (r->kind == HB_REQLOG_TCP) {
    if (r->up != s->up || r->down != s->down)
      abort();
    s->tcp = 1;
  } else if (r->kind == HB_REQLOG_HTTP) {
    if (r->method == NULL || r->target == NULL || r->method[0] == '\0' || r->target[0] == '\0')
      abort();
    n = strlen(r->target);
    if (n > HB_REQLOG_TARGET_MAX)
      abort();
    for (i = 0; i < n; i++)
      if (r->target[i] < 0x21 || r->target[i] > 0x7e)
        abort();
    if (r->status != 0 && (r->status < 100 || r->status > 999))
      abort();
  } else {
    abort();
  }
  n = hb_reqlog_format(r, line, sizeof(line));
  if (n >= sizeof(line) - 1 || strlen(line) != n)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct st s;
  hb_reqlog *l;
  uint64_t now = 1;
  size_t i = 0;

  memset(&s, 0, sizeof(s));
  l = hb_reqlog_new(on_rec, &s);
  if (l == NULL)
    return 0;
  while (i < size) {
    uint8_t ctl = data[i++];
    size_t len = (size_t)(ctl & 0x3f) + 1;

    if (len > size - i)
      len = size - i;
    now += ctl & 0x40 ? 1000000 : 1000;
    s.elapsed = now - 1;
    if (ctl & 0x80) {
      s.up += len;
      hb_reqlog_up(l, data + i, len, now);
    } else {
      s.down += len;
      hb_reqlog_down(l, data + i, len, now);
    }
    i += len;
  }
  now += 1000;
  s.elapsed = now - 1;
  hb_reqlog_end(l, now);
  s.ended = 1;
  hb_reqlog_up(l, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, now);
  hb_reqlog_end(l, now);
  hb_reqlog_free(l);
  return 0;
}
